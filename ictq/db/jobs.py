"""The jobs table, as the ops commands and the monitors read and change it.

The hot path (push, claim, delete, release, fail, leases) stays on :class:`Storage`; this is
everything else: counts per queue, listings, clearing, putting a payload back, one job's attempts.
Each method runs one named statement and builds its records by column name, here, next to the SQL.
"""

from __future__ import annotations

from dataclasses import dataclass

from ictq.db.base import Storage, writable

JOB_STATES = ("pending", "delayed", "reserved")
ANY_STATE = "any"


@dataclass(frozen=True)
class QueueCounts:
    """The jobs of one queue by state, at one moment (``now``)."""

    queue: str
    pending: int  # available now, not reserved
    delayed: int  # available later, not reserved
    reserved: int
    oldest_available_at: int | None  # the oldest pending job's available_at (Unix seconds)


@dataclass(frozen=True)
class QueuedJob:
    """A row of the jobs table."""

    id: int
    queue: str
    payload: str
    attempts: int
    reserved_at: int | None
    available_at: int
    created_at: int

    def state(self, now: int) -> str:
        """``reserved``, ``pending`` (available at ``now``) or ``delayed``: as ``list_queue`` selects them."""
        if self.reserved_at is not None:
            return "reserved"
        return "pending" if self.available_at <= now else "delayed"


@dataclass(frozen=True)
class JobAttempts:
    """How far a queued job is: its attempts so far and whether a worker holds it."""

    attempts: int
    reserved_at: int | None

    @property
    def reserved(self) -> bool:
        return self.reserved_at is not None


class JobsRepository:
    """Reads and bulk changes of the jobs table through one :class:`Storage`."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def counts(self, now: int) -> list[QueueCounts]:
        """Every queue that has jobs, with its counts at ``now`` (a few index ranges per queue)."""
        found = []
        for (queue,) in self.storage.fetch("queue_names"):  # as stored (bytes of a SQLite BLOB too)
            params = {"queue": _sendable(queue), "text": not isinstance(queue, bytes), "now": now}
            ((total, delayed, reserved, earliest),) = self.storage.fetch("size", params)
            total, delayed, reserved = int(total or 0), int(delayed or 0), int(reserved or 0)
            if total == 0:
                continue  # its last job went between the two reads
            oldest = None if earliest is None or int(earliest) > now else int(earliest)
            found.append(QueueCounts(queue=str(queue), pending=total - delayed - reserved, delayed=delayed,
                                     reserved=reserved, oldest_available_at=oldest))
        return found

    def queue_names(self) -> list[str]:
        """The queues that have jobs, in order (one index probe per queue, whatever the table's size)."""
        return [str(name) for (name,) in self.storage.fetch("queue_names")]

    def list_queue(self, queue: str, state: str, now: int, limit: int) -> list[QueuedJob]:
        """Up to ``limit`` jobs of ``queue`` in ``state`` (one of :data:`JOB_STATES`, or
        :data:`ANY_STATE`) at ``now``, oldest first."""
        if state != ANY_STATE and state not in JOB_STATES:
            raise ValueError(f"unknown job state {state!r}")
        params = {"queue": queue, "state": state, "now": now, "limit": limit}
        return [
            QueuedJob(id=int(job_id), queue=str(name), payload=str(text), attempts=int(attempts),
                      reserved_at=None if reserved_at is None else int(reserved_at),
                      available_at=int(available_at), created_at=int(created_at))
            for job_id, name, text, attempts, reserved_at, available_at, created_at
            in self.storage.fetch("list_queue", params)
        ]

    def clear(self, queue: str, include_reserved: bool = False) -> int:
        """Delete the jobs of ``queue`` that no worker holds (all of them with
        ``include_reserved``); return how many."""
        return self.storage.run("clear_all" if include_reserved else "clear_available", {"queue": queue})

    def requeue(self, queue: str, payload: str, now: int) -> None:
        """Insert ``payload`` as a new job of ``queue``, available at ``now``, no attempts yet."""
        self.storage.run("requeue", {"queue": writable(queue), "payload": writable(payload), "now": now})

    def attempts(self, job_id: int) -> JobAttempts | None:
        """The attempts of the job with id ``job_id``; None when it has left the table."""
        rows = self.storage.fetch("mail_job_attempts", {"id": job_id})
        if not rows:
            return None
        ((attempts, reserved_at),) = rows
        return JobAttempts(attempts=int(attempts), reserved_at=None if reserved_at is None else int(reserved_at))


def _sendable(value: object) -> object:
    """A value read from the queue column, as a parameter that matches it again: text that is not
    UTF-8 (SQLite hands it over with its bad bytes as surrogates) goes back as its bytes."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogateescape")
    return value


__all__ = ["ANY_STATE", "JOB_STATES", "JobAttempts", "JobsRepository", "QueueCounts", "QueuedJob"]
