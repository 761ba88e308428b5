"""The worker: claims jobs, runs them, and records what happened.

The loop in :meth:`Worker.run` reads top to bottom; every reason to stop is decided in
:meth:`Worker._stop_reason`. Signals only set flags (TERM/INT/QUIT: stop after the current
job, a second one: stop now; USR2: pause; CONT: resume), except that a second stop signal
during a job interrupts it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from types import FrameType
from typing import Any, Generic, TypeVar

from ictq import jobs, logs, ops, payload, policy, progress
from ictq.claims import MAX_BATCH, Claims
from ictq.config import Settings
from ictq.control import ControlWatcher
from ictq.db import Reserved, Storage, open_storage
from ictq.errors import (
    DatabaseError,
    DatabaseUnavailable,
    InvalidPayload,
    JobFailure,
    JobTimeout,
    MaxAttemptsExceeded,
    UnknownJob,
)
from ictq.heartbeat import BEAT_EVERY, Heartbeat
from ictq.lease import LeaseKeeper
from ictq.stats import JobStats
from ictq.timeouts import TimeLimit
from ictq.wakeup import Waker

T = TypeVar("T")
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_MEMORY = 12
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
OUTAGE_BACKOFF_MAX = 30.0
FORCED_STOP_GRACE = 5.0
PRUNE_EVERY = 3600.0


@dataclass(frozen=True)
class WorkerOptions:
    """``queue:work``'s options, with Laravel's defaults."""

    queues: tuple[str, ...] = ("default",)
    sleep: float = 3.0
    tries: int = 1
    backoff: tuple[int, ...] = (0,)
    timeout: int = 60
    memory: int = 128
    max_jobs: int = 0
    max_time: int = 0
    rest: float = 0.0
    stop_when_empty: bool = False
    once: bool = False
    name: str = "default"
    force: bool = False


@dataclass(frozen=True)
class Stop:
    reason: str
    exit_code: int


class ForcedStop(BaseException):
    """A second stop signal arrived while a job was running."""


class _Running:
    """The job being processed and what the loop learned about it."""

    __slots__ = ("_context", "envelope", "job", "policy", "settings", "spec", "started", "tag")

    def __init__(self, job: Reserved, envelope: payload.Envelope, spec: jobs.JobSpec, policy: policy.Policy,
                 settings: Settings) -> None:
        self.job, self.envelope, self.spec, self.policy, self.settings = job, envelope, spec, policy, settings
        self.started = time.monotonic()
        self.tag = ""  # the job's log fields, formatted once for all of its lines
        self._context: jobs.JobContext | None = None

    def context(self) -> jobs.JobContext:
        """What ``ictq.current_job()`` returns inside this job (made on the first call)."""
        if self._context is None:
            job = self.job
            self._context = jobs.JobContext(job.id, self.envelope.uuid, self.spec.name, job.queue, job.attempts,
                                            self.settings, self.policy.max_tries)
        return self._context


class Worker:
    def __init__(
        self,
        settings: Settings,
        options: WorkerOptions,
        storage: Storage | None = None,
        clock: Callable[[], float] = time.time,
        logger: logging.Logger | None = None,
    ) -> None:
        self.settings = settings
        self.options = options
        self.storage = storage or open_storage(settings, worker=True)
        self.clock = clock
        self.logger = logger or logging.getLogger(logs.LOGGER_NAME)
        lease_every = max(0.5, min(30.0, settings.retry_after / 4))
        self.heartbeat = Heartbeat(options.name, options.queues, int(clock()))
        self.lease = LeaseKeeper(open_storage(settings, worker=True), lease_every, clock, self.logger,
                                 heartbeat=self._beat, heartbeat_every=BEAT_EVERY)
        self.failed = 0
        self.stats = JobStats()
        down = settings.app_dir / "storage" / "framework" / "down"
        self._down_flag = Sampled(down.exists, every=1.0)
        self._pruned_at = float("-inf")
        self.time_limit = TimeLimit()
        self.control = ControlWatcher(self.storage)
        self.claims = Claims(self.storage, self.lease, options.queues, settings.retry_after, clock,
                             max_batch=1 if options.once else MAX_BATCH, holder=self.heartbeat.id)
        self.progress = progress.Progress(None)  # the real one from start-up on (see _start)
        self._policies: dict[tuple[Any, ...], policy.Policy] = {}
        self.processed = 0
        self.iterations = 0
        self._started = time.monotonic()
        self._waker = Waker()
        self._quit = False
        self._paused = False
        self._queue_empty = False
        self._running: _Running | None = None
        self._in_handler = False
        self._forced = False
        self._pending: list[tuple[str, Callable[[], Any]]] = []
        self._outage_since: float | None = None
        self._outage_delay = 0.0
        self._previous_handlers: dict[int, Any] = {}

    # -- the loop -----------------------------------------------------------------------

    def run(self) -> int:
        """Process jobs until a stop reason; return the process exit code."""
        self._start()
        self._event(logging.INFO, "worker-started", pid=os.getpid(), queues=",".join(self.options.queues),
                    connection=self.storage.describe())
        try:
            while True:
                # 1. Stop when any reason says so (signal, memory, limits, --once, empty queue).
                stop = self._stop_reason()
                if stop is not None:
                    self._event(logging.INFO, "worker-stopping", reason=stop.reason, processed=self.processed)
                    return stop.exit_code
                # 2. Paused (USR2) or the application is down for maintenance: hand back what
                #    was claimed, and wait.
                if self._paused or self._app_is_down():
                    self._settle_claims()
                    self._sleep(self.options.sleep)
                    continue
                # 3. Finish writes that waited for the database, read the control flags
                #    (ictq restart / pause), then claim the next job.
                try:
                    self._flush_pending()
                    control = self.control.refresh()
                    if self.control.restart_requested:
                        continue  # step 1 stops the worker
                    job = self.claims.next(control.paused, self._claim_limit())
                except DatabaseUnavailable as exc:
                    self._database_down(exc)
                    continue
                self._database_up()
                self.iterations += 1
                # 4. Nothing to do: wait for work (unless the stop reasons end the loop first).
                if job is None:
                    self._queue_empty = True
                    if not (self.options.stop_when_empty or self.options.once):
                        self._idle()
                    continue
                # 5. Run it, record the outcome, rest if asked to.
                self._queue_empty = False
                self._process(job)
                self.processed += 1
                if self.options.rest > 0:
                    self._sleep(self.options.rest)
        except ForcedStop:
            self._event(logging.WARNING, "worker-stopping", reason="forced", processed=self.processed)
            return EXIT_ERROR
        finally:
            self._settle_claims()
            self._flush_pending(final=True)
            self.lease.stop()
            self._leave()
            self.progress.close()
            self.time_limit.restore()
            self._restore_signal_handlers()
            self.storage.close()
            self._waker.close()

    def _start(self) -> None:
        self._install_signal_handlers()  # first: a TERM during start-up is a clean stop too
        try:
            self._check_database()
        except BaseException:
            self._restore_signal_handlers()
            raise
        self.time_limit.install()
        self.progress = progress.Progress(self.heartbeat.id)
        # Registered before the first claim, so a worker killed by its very first job is reaped
        # like any other (and dead workers' jobs come back before this one looks for work).
        with contextlib.suppress(DatabaseError):  # else the lease thread's beats retry (and log)
            self._beat(self.storage)
            self.lease.beaten()
        self.lease.start()

    def _check_database(self) -> None:
        """Fail at start, in one line, on what no retry can fix (a wrong path, missing tables);
        a database that is merely down is waited for by the loop."""
        with contextlib.suppress(DatabaseUnavailable):
            self.control.refresh(force=True)

    def _stop_reason(self) -> Stop | None:
        """Every reason for the worker to stop, in one place."""
        if self._quit:
            return Stop("signal", EXIT_OK)
        if self.control.restart_requested:
            return Stop("restart requested (ictq restart)", EXIT_OK)
        if self.options.memory > 0 and resident_mb() >= self.options.memory:
            return Stop(f"memory {resident_mb():.0f}MB over --memory={self.options.memory}MB", EXIT_MEMORY)
        if self.options.max_jobs > 0 and self.processed >= self.options.max_jobs:
            return Stop("max-jobs", EXIT_OK)
        if self.options.max_time > 0 and time.monotonic() - self._started >= self.options.max_time:
            return Stop("max-time", EXIT_OK)
        if self.options.once and self.iterations > 0:
            return Stop("once", EXIT_OK)
        if self.options.stop_when_empty and self._queue_empty:
            return Stop("queue empty", EXIT_OK)
        return None

    def _claim_limit(self) -> int:
        """How many jobs the next claim may take at most (0: no limit)."""
        if self.options.once:
            return 1
        return max(1, self.options.max_jobs - self.processed) if self.options.max_jobs > 0 else 0

    def _settle_claims(self) -> None:
        """Hand back claimed, unstarted jobs and delete finished ones, if the database lets us."""
        try:
            returned = self.claims.hand_back()
            self.claims.flush()
        except DatabaseError as exc:
            self._event(logging.WARNING, "claims-not-settled", error=str(exc),
                        note="the jobs come back after retry_after")
            return
        if returned:
            self._event(logging.INFO, "handed-back", jobs=returned)

    # -- one job --------------------------------------------------------------------------

    def _process(self, job: Reserved) -> None:
        if not self._process_one(job):
            self.lease.let_go([job])
        self.progress.set(job.id, job.attempts, progress.FINISHED)

    def _process_one(self, job: Reserved) -> bool:
        """Run one claimed job and record its outcome; True when it succeeded (ack pending)."""
        try:
            running = self._prepare(job)
        except JobFailure as exc:
            self._fail(job, job.payload, exc, name=payload_name(job.payload))
            return False
        exhausted = policy.exhausted_before_run(running.policy, job.attempts, int(self.clock()))
        if exhausted is not None:
            self._fail(job, job.payload, MaxAttemptsExceeded(exhausted), name=running.spec.name)
            return False
        self.progress.set(job.id, job.attempts, progress.RUNNING)  # if the worker dies now, this attempt counts
        self._job_event(logging.INFO, "processing", running)
        try:
            self._execute(running)
        except jobs.Release as release:
            self._retry(running, release.delay, release.reason or "released by the job", exception=False)
        except jobs.Fail as exc:
            self._fail(job, job.payload, exc, name=running.spec.name, why="the job failed itself",
                       started=running.started)
        except JobTimeout as exc:
            self._after_timeout(running, exc, self.storage)
        except ForcedStop:
            self._release_now(running, self.storage)
            raise
        except BaseException as exc:  # noqa: BLE001 - a job's SystemExit or KeyboardInterrupt fails the job, not the worker
            self._after_exception(running, exc)
        else:
            elapsed = time.monotonic() - running.started
            self._acknowledge(job)
            self.stats.record(running.spec.name, "done", elapsed)
            self._job_event(logging.INFO, "done", running, duration_ms=f"{elapsed * 1000:.1f}")
            return True
        return False

    def _acknowledge(self, job: Reserved) -> None:
        try:
            self.claims.done(job)
        except DatabaseUnavailable as exc:  # the acks stay queued; the loop retries them
            self._database_down(exc, sleep=False)

    def _prepare(self, job: Reserved) -> _Running:
        envelope = payload.parse(job.payload)
        if envelope.is_php:
            raise UnknownJob(
                f"{envelope.display_name} is a Laravel (PHP) job; ictq workers do not run PHP jobs "
                "(run it with php artisan queue:work on a queue ictq does not serve)"
            )
        spec = jobs.get(envelope.job)
        if not isinstance(envelope.data, dict):
            raise InvalidPayload(f"payload field 'data' must be a JSON object, got {type(envelope.data).__name__}")
        try:
            jobs.check_arguments(spec, envelope.data)
        except Exception as exc:  # noqa: BLE001 - any mismatch is a bad payload
            raise InvalidPayload(str(exc)) from None
        return _Running(job, envelope, spec, self._policy(envelope, spec), self.settings)

    def _policy(self, envelope: payload.Envelope, spec: jobs.JobSpec) -> policy.Policy:
        """:func:`policy.resolve`, remembered: the jobs of one dispatch share their policy."""
        key = (spec, envelope.max_tries, envelope.max_exceptions, envelope.backoff, envelope.timeout,
               envelope.retry_until, envelope.fail_on_timeout)
        found = self._policies.get(key)
        if found is None:
            if len(self._policies) >= 1024:  # retryUntil differs per dispatch: keep it bounded
                self._policies.clear()
            opts = self.options
            found = self._policies[key] = policy.resolve(envelope, spec, opts.tries, opts.backoff, opts.timeout)
        return found

    def _execute(self, running: _Running) -> None:
        """Run the handler under the lease's hard deadline, the time limit and the job context.

        (Plain arm/disarm pairs rather than context managers: this runs once per job.)"""
        limit = running.policy.timeout
        self._running = running
        if limit > 0:
            grace = min(10.0, max(1.0, limit / 2))
            self.lease.arm(time.monotonic() + limit + grace, lambda storage: self._stuck(running, storage))
        try:
            self.time_limit.arm(limit)
            try:
                token = jobs.enter(running.context)
                try:
                    self._in_handler = True
                    running.spec.handler(**running.envelope.data)
                finally:
                    self._in_handler = False
                    jobs.leave(token)
            finally:
                self.time_limit.disarm()
        finally:
            if limit > 0:
                self.lease.disarm()
            self._running = None

    # -- outcomes ---------------------------------------------------------------------------

    def _after_exception(self, running: _Running, exc: BaseException) -> None:
        exceptions = running.envelope.exceptions + 1
        reason = policy.fails_after_attempt(running.policy, running.job.attempts, exceptions, int(self.clock()))
        if reason is not None:
            self._fail(running.job, running.job.payload, exc, name=running.spec.name, why=reason,
                       started=running.started)
        else:
            self._retry(running, None, describe(exc), exception=True, exceptions=exceptions)

    def _after_timeout(self, running: _Running, exc: JobTimeout, storage: Storage) -> None:
        reason = "failOnTimeout is set" if running.policy.fail_on_timeout else policy.fails_after_attempt(
            running.policy, running.job.attempts, running.envelope.exceptions, int(self.clock()))
        if reason is not None:
            self._fail(running.job, running.job.payload, exc, name=running.spec.name, why=reason, storage=storage,
                       started=running.started)
        else:
            self._retry(running, None, str(exc), exception=False, storage=storage)

    def _retry(self, running: _Running, delay: int | None, reason: str, exception: bool,
               exceptions: int | None = None, storage: Storage | None = None) -> None:
        target = storage or self.storage
        seconds = policy.backoff_delay(running.policy, running.job.attempts) if delay is None else max(0, delay)
        text = running.job.payload
        if exceptions is not None and running.policy.max_exceptions:
            text = running.envelope.with_exceptions(exceptions)
        available_at = int(self.clock()) + seconds
        self._write("release", lambda: target.release(running.job, available_at, text))
        self.stats.record(running.spec.name, "released", time.monotonic() - running.started)
        level = logging.WARNING if exception else logging.INFO
        self._job_event(level, "released", running, delay=seconds, reason=reason)

    def _release_now(self, running: _Running, storage: Storage) -> None:
        self._write("release", lambda: storage.release(running.job, int(self.clock()), running.job.payload))
        self._job_event(logging.WARNING, "released", running, delay=0, reason="worker forced to stop")

    def _fail(self, job: Reserved, text: str, exc: BaseException, name: str | None,
              why: str | None = None, storage: Storage | None = None, started: float | None = None) -> None:
        target = storage or self.storage
        record = logs.redact(failure_text(exc, why), self.settings.secrets)
        failed_at = datetime.fromtimestamp(self.clock(), timezone.utc)
        connection = self.settings.queue_connection
        self._write("fail", lambda: target.fail(job, connection, record, text, failed_at))
        self.failed += 1
        self.stats.record(name or "(unreadable payload)", "failed", time.monotonic() - (started or time.monotonic()))
        self._event(logging.ERROR, "failed", job=name, id=job.id, uuid=payload.uuid_from_text(text),
                    queue=job.queue, attempt=job.attempts, reason=record.splitlines()[0])

    def _stuck(self, running: _Running, storage: Storage) -> None:
        """Called by the lease keeper when a job outlived its hard deadline: record it and exit."""
        if self._forced:
            self._release_now(running, storage)
        else:
            exc = JobTimeout(f"the job ran longer than its timeout of {running.policy.timeout}s "
                             "and could not be interrupted; the worker exits")
            self._after_timeout(running, exc, storage)
        with contextlib.suppress(DatabaseError):
            self.claims.abandon(storage)
        self._event(logging.ERROR, "worker-exiting", reason="job could not be interrupted", pid=os.getpid())
        logging.shutdown()
        os._exit(EXIT_ERROR)

    def _write(self, action: str, operation: Callable[[], Any]) -> None:
        """Run an outcome write; keep it for later if the database is down."""
        try:
            operation()
        except DatabaseUnavailable as exc:
            self._pending.append((action, operation))
            self._database_down(exc, sleep=False)
        except DatabaseError as exc:
            self._event(logging.ERROR, "write-failed", operation=action, error=str(exc))

    def _flush_pending(self, final: bool = False) -> None:
        while self._pending:
            action, operation = self._pending[0]
            try:
                operation()
            except DatabaseUnavailable:
                if final:
                    self._event(logging.WARNING, "pending-writes-dropped", count=len(self._pending),
                                note="the jobs come back after retry_after")
                    return
                raise
            except DatabaseError as exc:
                self._event(logging.ERROR, "write-failed", operation=action, error=str(exc))
            self._pending.pop(0)

    # -- heartbeats (called from the lease thread, with its storage) -----------------------

    def _beat(self, storage: Storage) -> None:
        running = self._running
        job, name = (running.job, running.spec.name) if running is not None else (None, None)
        reaped = self.heartbeat.beat(storage, int(self.clock()), job, name, self.processed, self.failed,
                                     held=self.claims.held())
        self.stats.flush(storage, self.heartbeat.id)
        self._prune_failed_if_due(storage)
        for record in reaped:
            self._event(logging.WARNING, "worker-reaped", dead=record.name, host=record.host, pid=record.pid,
                        released=record.job_id)

    def _prune_failed_if_due(self, storage: Storage) -> None:
        """``ICTQ_PRUNE_FAILED_HOURS``: delete older failed jobs, at most once per PRUNE_EVERY seconds."""
        hours = self.settings.prune_failed_hours
        if hours <= 0 or time.monotonic() - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = time.monotonic()
        cutoff = datetime.fromtimestamp(self.clock(), timezone.utc) - timedelta(hours=hours)
        deleted = ops.prune_failed(storage, cutoff)
        if deleted:
            self._event(logging.INFO, "failed-pruned", deleted=deleted, older_than=f"{hours}h")

    def _leave(self) -> None:
        with contextlib.suppress(DatabaseError):  # else the row goes stale and is reaped as dead
            self.stats.flush(self.storage, self.heartbeat.id)
            self.heartbeat.leave(self.storage)

    # -- database outages ---------------------------------------------------------------

    def _database_down(self, exc: DatabaseUnavailable, sleep: bool = True) -> None:
        """One log line per outage; then capped exponential backoff between attempts."""
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            self._outage_delay = 0.5
            self._event(logging.ERROR, "database-unavailable", error=str(exc),
                        retry=f"backoff up to {OUTAGE_BACKOFF_MAX:.0f}s")
        if sleep:
            self._sleep(self._outage_delay)
            self._outage_delay = min(OUTAGE_BACKOFF_MAX, self._outage_delay * 2)

    def _database_up(self) -> None:
        if self._outage_since is not None:
            seconds = time.monotonic() - self._outage_since
            self._outage_since = None
            self._event(logging.INFO, "database-restored", after=f"{seconds:.1f}s")

    # -- signals, sleeping, environment -------------------------------------------------

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in STOP_SIGNALS:
            self._previous_handlers[signum] = signal.signal(signum, self._on_stop_signal)
        self._previous_handlers[signal.SIGUSR2] = signal.signal(signal.SIGUSR2, self._on_pause)
        self._previous_handlers[signal.SIGCONT] = signal.signal(signal.SIGCONT, self._on_resume)

    def _restore_signal_handlers(self) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers.clear()

    def _on_stop_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._quit and self._in_handler:
            self._forced = True
            self.lease.extend(time.monotonic() + FORCED_STOP_GRACE)
            raise ForcedStop()
        self._quit = True
        self._waker.set()

    def _on_pause(self, signum: int, frame: FrameType | None) -> None:
        self._paused = True
        self._event(logging.INFO, "worker-paused")

    def _on_resume(self, signum: int, frame: FrameType | None) -> None:
        if self._paused:
            self._paused = False
            self._event(logging.INFO, "worker-resumed")
        self._waker.set()

    def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once on a signal."""
        self._waker.wait(seconds)

    def _idle(self) -> None:
        """Wait up to --sleep for new work: NOTIFY on PostgreSQL, a fast cheap probe elsewhere."""
        try:
            self.storage.wait_for_work(self.options.sleep, self._waker, self.options.queues,
                                       lambda: int(self.clock()), self.settings.retry_after)
        except DatabaseUnavailable as exc:
            self._database_down(exc)

    def _app_is_down(self) -> bool:
        """Laravel's maintenance mode (``php artisan down``) holds workers unless --force."""
        return not self.options.force and self._down_flag()

    # -- logging ------------------------------------------------------------------------------

    def _event(self, level: int, action: str, **fields: Any) -> None:
        logs.event(self.logger, level, action, worker=self.options.name, **fields)

    def _job_event(self, level: int, action: str, running: _Running, **fields: Any) -> None:
        """``action worker=.. job=.. id=.. uuid=.. queue=.. attempt=.. fields..``: the job's own
        fields are formatted once, for its first line, and reused for the next."""
        if not self.logger.isEnabledFor(level):
            return
        if not running.tag:
            job, word = running.job, logs.word
            running.tag = (f" worker={word(self.options.name)} job={word(running.spec.name)} id={job.id}"
                           f"{logs.fields_text({'uuid': running.envelope.uuid})}"
                           f" queue={word(job.queue)} attempt={job.attempts}")
        text = action + running.tag
        logs.line(self.logger, level, text + logs.fields_text(fields) if fields else text)


def describe(exc: BaseException) -> str:
    """``ExceptionClass: message`` on one line."""
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def failure_text(exc: BaseException, why: str | None = None) -> str:
    """What goes into ``failed_jobs.exception``: a first line, the reason, the traceback."""
    lines = [f"{type(exc).__module__}.{type(exc).__qualname__}: {' '.join(str(exc).split())}".rstrip(": ")]
    if why:
        lines.append(f"Failed because {why}.")
    if exc.__traceback__ is not None and not isinstance(exc, JobFailure):
        lines.append("")
        lines.extend(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return "\n".join(line.rstrip("\n") for line in lines)


def payload_name(text: str) -> str | None:
    try:
        return payload.parse(text).display_name
    except JobFailure:
        return None


class Sampled(Generic[T]):
    """A reading that is refreshed at most every ``every`` seconds (cheap enough per job)."""

    def __init__(self, read: Callable[[], T], every: float) -> None:
        self._read = read
        self.every = every
        self._at = float("-inf")
        self._value: T | None = None

    def __call__(self) -> T:
        now = time.monotonic()
        if self._value is None or now - self._at >= self.every:
            self._value, self._at = self._read(), now
        return self._value


def resident_mb() -> float:
    """This process's resident memory now, in MB (Linux: one read of /proc/self/statm)."""
    global _statm
    try:
        if _statm is None:
            _statm = os.open("/proc/self/statm", os.O_RDONLY)
        return int(os.pread(_statm, 64, 0).split()[1]) * _PAGE / 1_048_576
    except (OSError, ValueError, IndexError):  # not Linux: the peak instead
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1_048_576 if sys.platform == "darwin" else 1024)


_statm: int | None = None
_PAGE = os.sysconf("SC_PAGE_SIZE")
