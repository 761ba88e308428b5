"""Queue operations for ops: sizes, listings, clearing, and failed-job handling.

Every function takes a :class:`Storage` and returns plain data; the CLI formats it. The rows
come from the table repositories (:mod:`ictq.db.jobs`, :mod:`ictq.db.failed_jobs`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from ictq import payload
from ictq.db import Storage
from ictq.db.failed_jobs import ALL_QUEUES, FailedCounts, FailedJob, FailedJobsRepository
from ictq.db.jobs import JOB_STATES, JobsRepository, QueuedJob
from ictq.display import text_of
from ictq.errors import InvalidPayload, NotFound, RetryRefused, first_line

STATES = JOB_STATES
RETRY_BATCH = 500
PRUNE_CHUNK = 1000
MAX_REASON = 1000  # characters of an exception's first line in listings (``failed``, ``failed --json``)


@dataclass(frozen=True)
class QueueSize:
    queue: str
    pending: int
    delayed: int
    reserved: int
    oldest_pending_age: int | None
    failed: int
    failed_last_hour: int

    @property
    def size(self) -> int:
        return self.pending + self.delayed + self.reserved

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "size": self.size}


@dataclass(frozen=True)
class JobRow:
    id: int
    queue: str
    name: str
    attempts: int
    state: str
    age: int
    available_in: int
    reserved_for: int | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FailedRow:
    id: int
    uuid: str
    connection: str
    queue: str
    name: str
    failed_at: str
    exception: str
    payload: str

    @property
    def reason(self) -> str:
        """The exception's first line, at most :data:`MAX_REASON` characters."""
        head = self.exception[: MAX_REASON * 4]
        reason = first_line(head)
        return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 1] + "…"

    @classmethod
    def of(cls, job: FailedJob) -> FailedRow:
        """The row as text whatever its columns hold (bytes of a SQLite BLOB, undecodable text)."""
        return cls(id=job.id, uuid=text_of(job.uuid), connection=text_of(job.connection), queue=text_of(job.queue),
                   name=payload.name_of(job.payload), failed_at=text_of(job.failed_at),
                   exception=text_of(job.exception), payload=text_of(job.payload))

    def as_dict(self, full: bool = False) -> dict[str, Any]:
        data = asdict(self)
        if not full:
            data.pop("payload")
            data["exception"] = self.reason
        return data


def last_hour(now: int) -> datetime:
    """The start of the hour before ``now``: what "failed in the last hour" counts from."""
    return datetime.fromtimestamp(now, timezone.utc) - timedelta(hours=1)


def sizes(storage: Storage, now: int, queues: Sequence[str] = (),
          failed_counts: Sequence[FailedCounts] | None = None) -> list[QueueSize]:
    """Per queue: pending (available now), delayed, reserved, oldest pending age, failed counts
    (``failed_counts`` when the caller has them, else counted in failed_jobs: see
    :func:`ictq.triage.sizes`, which counts them from the signature tally)."""
    counts = {text_of(row.queue): row for row in JobsRepository(storage).counts(now)}
    if failed_counts is None:
        failed_counts = FailedJobsRepository(storage).counts(last_hour(now))
    failed = {text_of(row.queue): row for row in failed_counts}
    names = list(queues) or sorted(set(counts) | set(failed))
    result = []
    for name in names:
        jobs, fails = counts.get(name), failed.get(name)
        oldest = jobs.oldest_available_at if jobs else None
        result.append(QueueSize(name, jobs.pending if jobs else 0, jobs.delayed if jobs else 0,
                                jobs.reserved if jobs else 0, None if oldest is None else max(0, now - oldest),
                                fails.total if fails else 0, fails.since if fails else 0))
    return result


def total(rows: Sequence[QueueSize]) -> QueueSize:
    ages = [row.oldest_pending_age for row in rows if row.oldest_pending_age is not None]
    return QueueSize("total", sum(r.pending for r in rows), sum(r.delayed for r in rows),
                     sum(r.reserved for r in rows), max(ages) if ages else None,
                     sum(r.failed for r in rows), sum(r.failed_last_hour for r in rows))


def list_jobs(storage: Storage, now: int, queues: Sequence[str], state: str, limit: int) -> list[JobRow]:
    """Queued jobs, oldest first, across ``queues`` (all when empty)."""
    # A queue name the driver cannot send back (undecodable bytes of a SQLite row) is skipped.
    repository = JobsRepository(storage)
    names = list(queues) or [text_of(name) for name in repository.queue_names() if _sendable(text_of(name))]
    found: list[JobRow] = []
    for queue in names:
        found.extend(_job_row(job, now) for job in repository.list_queue(queue, state, now, limit))
    return sorted(found, key=lambda job: job.id)[:limit]


def _sendable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _job_row(job: QueuedJob, now: int) -> JobRow:
    return JobRow(job.id, text_of(job.queue), payload.name_of(job.payload), job.attempts, job.state(now),
                  max(0, now - job.created_at), max(0, job.available_at - now),
                  None if job.reserved_at is None else max(0, now - job.reserved_at))


def clear(storage: Storage, queues: Sequence[str], include_reserved: bool) -> int:
    """Delete the queued jobs of ``queues``; reserved (running) ones only when asked."""
    repository = JobsRepository(storage)
    return sum(repository.clear(queue, include_reserved) for queue in queues)


def failed_recent(storage: Storage, queues: Sequence[str], limit: int) -> list[FailedRow]:
    """The newest failed jobs first."""
    repository = FailedJobsRepository(storage)
    found: list[FailedRow] = []
    for queue in list(queues) or [ALL_QUEUES]:
        found.extend(FailedRow.of(job) for job in repository.recent(limit, queue))
    return sorted(found, key=lambda row: row.id, reverse=True)[:limit]


def failed_find(storage: Storage, ref: str) -> FailedRow:
    """A failed job by id or uuid."""
    ref = ref.strip()
    repository = FailedJobsRepository(storage)
    job = repository.by_id(int(ref)) if ref.isdigit() else repository.by_uuid(ref)
    if job is None:
        raise NotFound(f"no failed job with {'id' if ref.isdigit() else 'uuid'} {ref}")
    return FailedRow.of(job)


def failed_all(storage: Storage, queue: str = ALL_QUEUES, low: int = 0, high: int = 2**62
               ) -> Iterator[list[FailedRow]]:
    """Every failed job (of ``queue``, within ids ``low..high``), in batches, oldest first."""
    repository = FailedJobsRepository(storage)
    after = 0
    while batch := [FailedRow.of(job) for job in repository.range(after, RETRY_BATCH, queue, low, high)]:
        yield batch
        after = batch[-1].id


@dataclass(frozen=True)
class Retried:
    """What :func:`retry` did: the rows it put back, and those it refused, with the reason."""

    moved: list[FailedRow]
    refused: list[tuple[FailedRow, str]]


def retry(storage: Storage, rows: Sequence[FailedRow], now: int, deadline: int | None = None) -> Retried:
    """Put failed jobs back on their queue, attempts reset, in one transaction.

    The payload goes back unchanged, except a job's ``retryUntil`` deadline (see
    :func:`retry_payload`), which would otherwise fail it on arrival; a job whose deadline
    ictq cannot renew is refused and stays in failed_jobs.

    Each exactly once, whatever runs at the same time: the failed row is deleted first, and only
    the transaction whose delete took it inserts the job (a concurrent ``ictq retry`` waits on
    the row's lock, then deletes nothing and skips it). Rows go in id order, so two retries
    lock them in the same order and do not deadlock.
    """
    jobs, failed = JobsRepository(storage), FailedJobsRepository(storage)
    moved: list[FailedRow] = []
    refused: list[tuple[FailedRow, str]] = []
    with storage.transaction():
        for row in sorted(rows, key=lambda row: row.id):
            try:
                text = retry_payload(row.payload, now, deadline)
            except RetryRefused as exc:
                refused.append((row, str(exc)))
                continue
            if failed.delete(row.id):
                jobs.requeue(row.queue, text, now)
                moved.append(row)
    return Retried(moved, refused)


def retry_payload(text: str, now: int, deadline: int | None = None) -> str:
    """The payload a retried job goes back with.

    Unchanged (byte for byte) without a ``retryUntil``. With one, the deadline is renewed, as
    Laravel's ``queue:retry`` renews it by asking the job's class:

    * ``deadline`` (seconds, ``ictq retry --deadline``): ``now + deadline``, for any job;
    * an ictq job (its window is ``retryUntil - createdAt``, fixed at dispatch): ``now`` plus
      the same window, and ``createdAt`` becomes ``now``, so each retry gets the window again;
    * a PHP job: refused (:class:`RetryRefused`); only its class's ``retryUntil()`` knows the
      deadline (``php artisan queue:retry``), unless ``--deadline`` says it.

    A payload that does not parse goes back unchanged: the worker fails it again with its reason.
    """
    try:
        envelope = payload.parse(text)
    except InvalidPayload:
        return text
    if envelope.retry_until is None:
        return text
    fields = dict(envelope.fields)
    created = fields.get("createdAt")
    if deadline is not None:
        fields["retryUntil"] = now + deadline
    elif (not envelope.is_php and isinstance(created, int) and not isinstance(created, bool)
          and envelope.retry_until > created):
        fields["retryUntil"] = now + (envelope.retry_until - created)
        fields["createdAt"] = now
    else:
        whose = "its PHP class" if envelope.is_php else "the job that dispatched it"
        raise RetryRefused(
            f"its retryUntil deadline ({envelope.retry_until}) can only be renewed by {whose}: "
            "retry it with php artisan queue:retry, or with ictq retry --deadline=SECONDS")
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


def forget(storage: Storage, row: FailedRow) -> bool:
    return FailedJobsRepository(storage).delete(row.id)


def prune_failed(storage: Storage, before: datetime) -> int:
    """Delete failed jobs older than ``before``, a chunk at a time (short locks on big tables)."""
    repository = FailedJobsRepository(storage)
    deleted, after = 0, 0
    while ids := repository.ids_before(before, after, PRUNE_CHUNK):
        deleted += repository.delete_ids(ids)
        after = ids[-1]
    return deleted


def forget_many(storage: Storage, rows: Sequence[FailedRow]) -> int:
    """Delete failed jobs, in one statement; return how many went."""
    return FailedJobsRepository(storage).delete_ids([row.id for row in rows])
