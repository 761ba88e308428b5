"""What happened to a job that did not succeed, written to the database: released (to run
again later), failed (moved to ``failed_jobs``), or stuck (it outlived its hard deadline),
each with its log line and its statistics record.

An :class:`Outcomes` writes through the storage it was built with: the worker loop has one on
its connection, and the lease keeper's deadline another on the background thread's. A write
that meets a database outage is kept and retried by the loop (:meth:`Outcomes.flush_pending`).
(A success is acknowledged through the claims buffer, in batches; see the loop. The loop's
failures go through it in batches too, when it is given a ``batch``: the ``failed`` line is
logged once the batch is written.)
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, Protocol

from ictq import logs, payload, policy
from ictq.config import Settings
from ictq.db import Failure, Reserved, Storage
from ictq.display import Masker
from ictq.errors import DatabaseError, DatabaseUnavailable, JobFailure, JobTimeout, first_line
from ictq.worker.failures import Report
from ictq.worker.history import JobHistory
from ictq.worker.log import WorkerLog
from ictq.worker.running import Running
from ictq.worker.stats import JobStats


class FailureBatch(Protocol):
    """Where batched failures go (the claims buffer, :meth:`ictq.worker.claims.Claims.fail`)."""

    def fail(self, failure: Failure, report: Report) -> None:
        """Write ``failure`` with the next batch; raises DatabaseUnavailable (it is kept)."""


class Outcomes:
    def __init__(self, storage: Storage, settings: Settings, stats: JobStats, log: WorkerLog,
                 clock: Callable[[], float], on_unavailable: Callable[[DatabaseUnavailable], None],
                 batch: FailureBatch | None = None, history: JobHistory | None = None) -> None:
        self.storage = storage
        self.history = history  # the per-minute history (None: not recorded)
        self.batch = batch  # None: each failure is written at once
        self.settings = settings
        self.masker = Masker(settings.secrets)  # the settings' secrets, found once (not per failure)
        self.stats = stats
        self.log = log
        self.clock = clock
        self.on_unavailable = on_unavailable  # the loop's outage report (one log line per outage)
        self.failed = 0
        self._pending: list[tuple[str, Callable[[], Any]]] = []

    def after_exception(self, running: Running, exc: BaseException) -> None:
        """The job raised: retry it, or fail it when its policy says so."""
        exceptions = running.envelope.exceptions + 1
        reason = policy.fails_after_attempt(running.policy, running.job.attempts, exceptions, int(self.clock()))
        if reason is not None:
            self.fail(running.job, exc, running.spec.name, why=reason, started=running.started,
                      uuid=running.envelope.uuid[:64])
        else:
            self.retry(running, None, describe(exc), exception=True, exceptions=exceptions)

    def after_timeout(self, running: Running, exc: JobTimeout) -> None:
        reason = "failOnTimeout is set" if running.policy.fail_on_timeout else policy.fails_after_attempt(
            running.policy, running.job.attempts, running.envelope.exceptions, int(self.clock()))
        if reason is not None:
            self.fail(running.job, exc, running.spec.name, why=reason, started=running.started,
                      uuid=running.envelope.uuid[:64])
        else:
            self.retry(running, None, str(exc), exception=False)

    def retry(self, running: Running, delay: int | None, reason: str, exception: bool,
              exceptions: int | None = None) -> None:
        """Release the job to run again after ``delay`` seconds (None: its backoff)."""
        storage = self.storage
        if delay is None:
            seconds = policy.backoff_delay(running.policy, running.job.attempts)
        else:
            seconds = policy.requested_delay(delay)
        text = running.job.payload
        if exceptions is not None and running.policy.max_exceptions:
            text = running.envelope.with_exceptions(exceptions)
        available_at = int(self.clock()) + seconds
        self._write("release", lambda: storage.release(running.job, available_at, text))
        elapsed = time.monotonic() - running.started
        self.stats.record(running.spec.name, "released", elapsed)
        if self.history is not None:
            job = running.job
            self.history.record(job.queue, running.spec.name, "released", elapsed, self.clock() - elapsed,
                                job.available_at)
        level = logging.WARNING if exception else logging.INFO
        self.log.job(level, "released", running, delay=seconds, reason=reason)

    def release_now(self, running: Running) -> None:
        """The worker was forced to stop during the job: it runs again at once."""
        storage = self.storage
        self._write("release", lambda: storage.release(running.job, int(self.clock()), running.job.payload))
        self.log.job(logging.WARNING, "released", running, delay=0, reason="worker forced to stop")

    def fail(self, job: Reserved, exc: BaseException, name: str, why: str | None = None,
             started: float | None = None, uuid: str | None = None) -> None:
        """Move the job to ``failed_jobs`` (``name``: see :func:`ictq.payload.name_of`), with the
        next batch when there is one. The ``failed`` line is logged once the row has moved
        (after an outage, when the kept write succeeds); a reservation lost meanwhile (another
        worker took the job) is logged as such. ``uuid``: the payload's, when the caller has
        parsed it (else, or when empty, it is read from the payload here, once)."""
        record = logs.redact(failure_text(exc, why), self.masker)
        job_uuid = uuid or payload.uuid_from_text(job.payload)
        failure = Failure(job, self.settings.queue_connection, record,
                          datetime.fromtimestamp(self.clock(), timezone.utc), job_uuid)
        elapsed = time.monotonic() - (started or time.monotonic())
        started_at = self.clock() - elapsed

        def report(moved: bool | DatabaseError) -> None:
            if isinstance(moved, DatabaseError):
                self.log.event(logging.ERROR, "write-failed", operation="fail", error=str(moved))
            elif not moved:
                self.log.event(logging.WARNING, "fail-skipped", job=name, id=job.id, queue=job.queue,
                               attempt=job.attempts, reason="the reservation was lost (another worker has the job)")
            else:
                self.failed += 1
                self.stats.record(name, "failed", elapsed)
                if self.history is not None:
                    self.history.record(job.queue, name, "failed", elapsed, started_at, job.available_at)
                self.log.failed(name, job.id, job_uuid, job.queue, job.attempts, first_line(record))

        if self.batch is None:
            storage = self.storage
            self._write("fail", lambda: report(bool(storage.fail_many([failure]))))
            return
        try:
            self.batch.fail(failure, report)
        except DatabaseUnavailable as exc:  # the failures stay queued; the loop retries them
            self.on_unavailable(exc)

    def stuck(self, running: Running, forced: bool, waiting: list[Reserved], finished: list[Reserved],
              failing: list[Failure]) -> None:
        """The job outlived its hard deadline (the worker exits next): record its timeout (or,
        on a forced stop, release it), hand back the claimed jobs that did not start, delete
        the finished ones and write the failures not written yet."""
        if forced:
            self.release_now(running)
        else:
            self.after_timeout(running, JobTimeout(f"the job ran longer than its timeout of {running.policy.timeout}s "
                                                   "and could not be interrupted; the worker exits"))
        try:
            self.storage.unclaim_many(waiting)
            self.storage.delete_many(finished)
            self.storage.fail_many(failing)
        except DatabaseError:
            pass  # they come back after retry_after

    def _write(self, action: str, operation: Callable[[], Any]) -> None:
        """Run an outcome write; keep it for later if the database is down."""
        try:
            operation()
        except DatabaseUnavailable as exc:
            self._pending.append((action, operation))
            self.on_unavailable(exc)
        except DatabaseError as exc:
            self.log.event(logging.ERROR, "write-failed", operation=action, error=str(exc))

    def flush_pending(self, final: bool = False) -> None:
        """Retry the writes kept during an outage (raises DatabaseUnavailable, unless ``final``:
        then what is left is dropped, and those jobs come back after retry_after)."""
        while self._pending:
            action, operation = self._pending[0]
            try:
                operation()
            except DatabaseUnavailable:
                if final:
                    self.log.event(logging.WARNING, "pending-writes-dropped", count=len(self._pending),
                                   note="the jobs come back after retry_after")
                    return
                raise
            except DatabaseError as exc:
                self.log.event(logging.ERROR, "write-failed", operation=action, error=str(exc))
            self._pending.pop(0)


def describe(exc: BaseException) -> str:
    """``ExceptionClass: message`` on one line."""
    message = " ".join(message_of(exc).split())
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def message_of(exc: BaseException) -> str:
    """``str(exc)``, or what :mod:`traceback` shows when that raises (a job's exception may
    have a broken ``__str__``: that fails the job, never the worker)."""
    try:
        return str(exc)
    except Exception:  # noqa: BLE001 - any error of the job's own __str__
        return "<exception str() failed>"


def failure_text(exc: BaseException, why: str | None = None) -> str:
    """What goes into ``failed_jobs.exception``: a first line, the reason, the traceback."""
    lines = [f"{type(exc).__module__}.{type(exc).__qualname__}: {' '.join(message_of(exc).split())}".rstrip(": ")]
    if why:
        lines.append(f"Failed because {why}.")
    if exc.__traceback__ is not None and not isinstance(exc, JobFailure):
        lines.append("")
        lines.extend(formatted_exception(exc))
    return "\n".join(line.rstrip("\n") for line in lines)


def formatted_exception(exc: BaseException) -> list[str]:
    """:func:`traceback.format_exception`, with the stack part remembered by where the frames
    stood: the jobs of one kind that fail fail alike, and formatting a stack (reading the source
    lines, placing the carets) costs more than the rest of a failure."""
    if exc.__cause__ is not None or exc.__context__ is not None or hasattr(exc, "exceptions"):  # chained, a group
        return traceback.format_exception(type(exc), exc, exc.__traceback__)
    key = []
    tb = exc.__traceback__
    while tb is not None:
        key.append((tb.tb_frame.f_code, tb.tb_lasti, tb.tb_lineno))
        tb = tb.tb_next
    stack = _STACKS.get(tuple(key))
    if stack is None:
        if len(_STACKS) >= _STACKS_MAX:
            _STACKS.clear()
        stack = _STACKS[tuple(key)] = traceback.extract_tb(exc.__traceback__).format()
    return ["Traceback (most recent call last):\n", *stack, *exception_only(exc)]


def exception_only(exc: BaseException) -> list[str]:
    """:func:`traceback.format_exception_only`, remembered by the exception's class and message
    for an exception of the common kind (no notes, not a syntax error, a message that can be
    read): a job's failures repeat the same few."""
    notes = getattr(exc, "__notes__", None)
    if notes is not None or isinstance(exc, SyntaxError):
        return traceback.format_exception_only(type(exc), exc)
    try:
        key = (type(exc), str(exc))
    except Exception:  # noqa: BLE001 - a broken __str__: the standard formatting says so
        return traceback.format_exception_only(type(exc), exc)
    lines = _EXCEPTION_LINES.get(key)
    if lines is None:
        if len(_EXCEPTION_LINES) >= _STACKS_MAX:
            _EXCEPTION_LINES.clear()
        lines = _EXCEPTION_LINES[key] = traceback.format_exception_only(type(exc), exc)
    return lines


_STACKS: dict[tuple[tuple[Any, int, int], ...], list[str]] = {}
_STACKS_MAX = 256
_EXCEPTION_LINES: dict[tuple[type[BaseException], str], list[str]] = {}
