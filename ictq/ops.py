"""Queue operations for ops: sizes, listings, clearing, and failed-job handling.

Every function takes a :class:`Storage` and returns plain data; the CLI formats it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from ictq import payload
from ictq.db import Storage
from ictq.errors import IctqError, JobFailure

STATES = ("pending", "delayed", "reserved")
RETRY_BATCH = 500
PRUNE_CHUNK = 1000


class NotFound(IctqError):
    """No such failed job."""


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
        """The exception's first line."""
        return self.exception.strip().splitlines()[0] if self.exception.strip() else ""

    def as_dict(self, full: bool = False) -> dict[str, Any]:
        data = asdict(self)
        if not full:
            data.pop("payload")
            data["exception"] = self.reason
        return data


def sizes(storage: Storage, now: int, queues: Sequence[str] = ()) -> list[QueueSize]:
    """Per queue: pending (available now), delayed, reserved, oldest pending age, failed counts."""
    since = storage.param_time(datetime.fromtimestamp(now, timezone.utc) - timedelta(hours=1))
    counts = {row[0]: row for row in storage.fetch("size", {"now": now})}
    failed = {row[0]: (int(row[1]), int(row[2] or 0)) for row in storage.fetch("failed_counts", {"since": since})}
    names = list(queues) or sorted(set(counts) | set(failed))
    result = []
    for name in names:
        row = counts.get(name, (name, 0, 0, 0, None))
        oldest = row[4]
        total, recent = failed.get(name, (0, 0))
        result.append(QueueSize(name, int(row[1] or 0), int(row[2] or 0), int(row[3] or 0),
                                None if oldest is None else max(0, now - int(oldest)), total, recent))
    return result


def total(rows: Sequence[QueueSize]) -> QueueSize:
    ages = [row.oldest_pending_age for row in rows if row.oldest_pending_age is not None]
    return QueueSize("total", sum(r.pending for r in rows), sum(r.delayed for r in rows),
                     sum(r.reserved for r in rows), max(ages) if ages else None,
                     sum(r.failed for r in rows), sum(r.failed_last_hour for r in rows))


def list_jobs(storage: Storage, now: int, queues: Sequence[str], state: str, limit: int) -> list[JobRow]:
    """Queued jobs, oldest first, across ``queues`` (all when empty)."""
    names = list(queues) or [row.queue for row in sizes(storage, now)]
    found: list[JobRow] = []
    for queue in names:
        params = {"queue": queue, "state": state, "now": now, "limit": limit}
        found.extend(_job_row(row, now) for row in storage.fetch("list_queue", params))
    return sorted(found, key=lambda job: job.id)[:limit]


def _job_row(row: Sequence[Any], now: int) -> JobRow:
    job_id, queue, text, attempts, reserved_at, available_at, created_at = row
    state = "reserved" if reserved_at is not None else "pending" if available_at <= now else "delayed"
    return JobRow(int(job_id), queue, display_name(text), int(attempts), state, max(0, now - int(created_at)),
                  max(0, int(available_at) - now), None if reserved_at is None else max(0, now - int(reserved_at)))


def display_name(text: str) -> str:
    """Laravel's ``displayName`` of a payload, or a marker for one that does not parse."""
    try:
        return payload.parse(text).display_name
    except JobFailure:
        return "(unreadable payload)"


def clear(storage: Storage, queues: Sequence[str], include_reserved: bool) -> int:
    """Delete the queued jobs of ``queues``; reserved (running) ones only when asked."""
    statement = "clear_all" if include_reserved else "clear_available"
    return sum(storage.run(statement, {"queue": queue}) for queue in queues)


def failed_recent(storage: Storage, queues: Sequence[str], limit: int) -> list[FailedRow]:
    """The newest failed jobs first."""
    found: list[FailedRow] = []
    for queue in list(queues) or [""]:
        found.extend(_failed_row(row) for row in storage.fetch("failed_recent", {"queue": queue, "limit": limit}))
    return sorted(found, key=lambda row: row.id, reverse=True)[:limit]


def failed_find(storage: Storage, ref: str) -> FailedRow:
    """A failed job by id or uuid."""
    ref = ref.strip()
    rows = (storage.fetch("failed_by_id", {"id": int(ref)}) if ref.isdigit()
            else storage.fetch("failed_by_uuid", {"uuid": ref}))
    if not rows:
        raise NotFound(f"no failed job with {'id' if ref.isdigit() else 'uuid'} {ref}")
    return _failed_row(rows[0])


def failed_all(storage: Storage, queue: str = "", low: int = 0, high: int = 2**62) -> Iterator[list[FailedRow]]:
    """Every failed job (of ``queue``, within ids ``low..high``), in batches, oldest first."""
    after = 0
    while True:
        params = {"after": after, "low": low, "high": high, "queue": queue, "limit": RETRY_BATCH}
        batch = [_failed_row(row) for row in storage.fetch("failed_range", params)]
        if not batch:
            return
        yield batch
        after = batch[-1].id


def _failed_row(row: Sequence[Any]) -> FailedRow:
    failed_id, uuid, connection, queue, text, exception, failed_at = row
    return FailedRow(int(failed_id), str(uuid), str(connection), str(queue), display_name(text),
                     str(failed_at)[:19], str(exception), str(text))


def retry(storage: Storage, rows: Sequence[FailedRow], now: int) -> int:
    """Put failed jobs back on their queue, payload unchanged and attempts reset, in one transaction."""
    with storage.transaction():
        for row in rows:
            storage.run("requeue", {"queue": row.queue, "payload": row.payload, "now": now})
            storage.run("failed_delete", {"id": row.id})
    return len(rows)


def forget(storage: Storage, row: FailedRow) -> bool:
    return storage.run("failed_delete", {"id": row.id}) == 1


def prune_failed(storage: Storage, before: datetime) -> int:
    """Delete failed jobs older than ``before``, a chunk at a time (short locks on big tables)."""
    deleted, after = 0, 0
    cutoff = storage.param_time(before)
    while True:
        ids = [int(row[0]) for row in storage.fetch("failed_ids_before",
                                                       {"after": after, "before": cutoff, "limit": PRUNE_CHUNK})]
        if not ids:
            return deleted
        deleted += storage.run("failed_delete_ids", {"ids": storage.param_ids(ids)})
        after = ids[-1]


def forget_many(storage: Storage, rows: Sequence[FailedRow]) -> int:
    """Delete failed jobs, in one statement; return how many went."""
    if not rows:
        return 0
    return storage.run("failed_delete_ids", {"ids": storage.param_ids([row.id for row in rows])})
