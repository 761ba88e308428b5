"""The failed_jobs table (Laravel's), as the ops commands, the monitors and pruning read and change it.

Moving a job here is :meth:`Storage.fail_many` (the worker's hot path); this is everything after:
counts, listings, look-ups, deletes, and the read of ``ictq test-email`` (``ictq metrics`` and
``failed --group`` read the signature side tables, :mod:`ictq.db.failure_groups`).
Each method runs one named statement and builds its records by column name, here, next to the SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ictq.db.base import Storage

ALL_QUEUES = ""  # the ``queue`` argument that means every queue


@dataclass(frozen=True)
class FailedJob:
    """A row of failed_jobs. ``failed_at`` is Laravel's UTC text, ``YYYY-MM-DD HH:MM:SS``, on every database."""

    id: int
    uuid: str
    connection: str
    queue: str
    payload: str
    exception: str
    failed_at: str


@dataclass(frozen=True)
class FailedCounts:
    """The failed jobs of one queue: all of them, and those that failed since a moment."""

    queue: str
    total: int
    since: int


class FailedJobsRepository:
    """Reads and deletes of failed_jobs through one :class:`Storage`."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def counts(self, since: datetime) -> list[FailedCounts]:
        """Every queue with failed jobs: how many, and how many failed at or after ``since``."""
        return [
            FailedCounts(queue=str(queue), total=int(total), since=int(recent or 0))
            for queue, total, recent in self.storage.fetch("failed_counts", {"since": self.storage.param_time(since)})
        ]

    def recent(self, limit: int, queue: str = ALL_QUEUES) -> list[FailedJob]:
        """The ``limit`` newest failed jobs (of ``queue``; of all queues by default), newest first."""
        return self._jobs("failed_recent", {"queue": queue, "limit": limit})

    def by_id(self, failed_id: int) -> FailedJob | None:
        found = self._jobs("failed_by_id", {"id": failed_id})
        return found[0] if found else None

    def by_uuid(self, job_uuid: str) -> FailedJob | None:
        found = self._jobs("failed_by_uuid", {"uuid": job_uuid})
        return found[0] if found else None

    def range(self, after: int, limit: int, queue: str = ALL_QUEUES, low: int = 0, high: int = 2**62
              ) -> list[FailedJob]:
        """Up to ``limit`` failed jobs with ids above ``after`` and within ``low..high`` (of
        ``queue``; of all queues by default), oldest first: one page of a scan."""
        params = {"after": after, "low": low, "high": high, "queue": queue, "limit": limit}
        return self._jobs("failed_range", params)

    def delete(self, failed_id: int) -> bool:
        """Delete one failed job; False when it was not there."""
        return self.storage.run("failed_delete", {"id": failed_id}) == 1

    def delete_ids(self, ids: Sequence[int]) -> int:
        """Delete failed jobs by id, in one statement; return how many went."""
        if not ids:
            return 0
        return self.storage.run("failed_delete_ids", {"ids": self.storage.param_ids(ids)})

    def ids_before(self, before: datetime, after: int, limit: int) -> list[int]:
        """Up to ``limit`` ids above ``after`` of jobs that failed before ``before``, in order
        (pruning walks the table with these, a chunk at a time)."""
        params = {"after": after, "before": self.storage.param_time(before), "limit": limit}
        return [int(failed_id) for (failed_id,) in self.storage.fetch("failed_ids_before", params)]

    def exception_of(self, job_uuid: str) -> str | None:
        """The exception text of the failed job with uuid ``job_uuid``; None when it has not failed."""
        rows = self.storage.fetch("mail_failed_reason", {"uuid": job_uuid})
        return str(rows[0][0]) if rows else None

    def _jobs(self, name: str, params: dict[str, Any]) -> list[FailedJob]:
        return failed_rows(self.storage, name, params)


def failed_rows(storage: Storage, name: str, params: dict[str, Any]) -> list[FailedJob]:
    """The rows of a named query selecting failed_jobs' seven columns, in their order."""
    return [
        FailedJob(id=int(failed_id), uuid=str(job_uuid), connection=str(connection), queue=str(queue),
                  payload=str(payload), exception=str(exception), failed_at=str(failed_at)[:19])
        for failed_id, job_uuid, connection, queue, payload, exception, failed_at in storage.fetch(name, params)
    ]


__all__ = ["ALL_QUEUES", "FailedCounts", "FailedJob", "FailedJobsRepository", "failed_rows"]
