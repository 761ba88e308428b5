"""The ``ictq_workers`` table: one row per worker process, refreshed by its heartbeat.

:class:`WorkersRepository` is the only caller of the ``worker_*`` statements (except
``worker_hold``, written by a claim in its own transaction, see ``Storage.claim``), and
:class:`WorkerRecord` is built here, next to the SQL whose columns it follows.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ictq.db.base import Reserved, Storage, fitted

DEAD_AFTER = 30  # seconds without a beat after which a worker counts as dead


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            return handle.read().strip()[:8]
    except OSError:
        return "noboot"


BOOT_ID = _boot_id()


@dataclass(frozen=True)
class WorkerRecord:
    id: str
    name: str
    host: str
    pid: int
    queues: str
    state: str
    started_at: int
    beat_at: int
    job_id: int | None
    job_attempts: int | None
    job_name: str | None
    processed: int
    failed: int
    held: str | None = None  # JSON [[id, attempts], ...]: claimed jobs not running (buffer, unacked)

    def alive(self, now: int) -> bool:
        """Alive: beating, and (when it runs on this machine's kernel) its process exists."""
        if self.state != "alive" or now - self.beat_at >= DEAD_AFTER:
            return False
        return not self.on_this_boot() or _process_exists(self.pid)

    def on_this_boot(self) -> bool:
        """Whether the worker ran on this machine's kernel, since its last boot."""
        return self.id.endswith(f":{BOOT_ID}")

    def held_jobs(self) -> list[Reserved]:
        """Every job the worker held at its last beat or claim: the waiting and unacknowledged
        ones (``held``) and the running one (as ``(id, attempts)``; queue and payload unknown)."""
        jobs = [Reserved(int(i), "", "", int(a)) for i, a in json.loads(self.held or "[]")]
        if self.job_id is not None and self.job_attempts is not None:
            jobs.append(Reserved(self.job_id, "", "", self.job_attempts))
        return jobs

    def as_dict(self, now: int) -> dict[str, Any]:
        return {**asdict(self), "alive": self.alive(now), "last_beat_age": max(0, now - self.beat_at)}


class WorkersRepository:
    """The workers table through one storage (one thread's connection)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def beat(self, record: WorkerRecord, held: Sequence[Reserved]) -> None:
        """Insert or refresh a live worker's row (``record.beat_at`` is the beat's time;
        ``held``: its claimed jobs other than the running one). Names longer than their column
        are cut to it (see :func:`~ictq.db.base.fitted`)."""
        self.storage.run("worker_beat", {
            "id": record.id, "name": fitted(record.name, 191), "host": fitted(record.host, 191), "pid": record.pid,
            "queues": fitted(record.queues, 1000), "state": record.state, "started_at": record.started_at,
            "now": record.beat_at, "job_id": record.job_id, "job_attempts": record.job_attempts,
            "job_name": None if record.job_name is None else fitted(record.job_name, 191),
            "processed": record.processed, "failed": record.failed,
            "held": json.dumps([[job.id, job.attempts] for job in held]) if held else None})

    def mark(self, worker_id: str, state: str) -> bool:
        """Move a live worker to ``state``; False when it was not alive (another worker reaped it)."""
        return self.storage.run("worker_mark", {"id": worker_id, "state": state}) == 1

    def leave(self, worker_id: str) -> None:
        self.storage.run("worker_leave", {"id": worker_id})

    def forget_old(self, before: int) -> None:
        """Delete the rows of workers that stopped beating before ``before``."""
        self.storage.run("worker_forget_old", {"before": before})

    def all(self) -> list[WorkerRecord]:
        return [_record(*row) for row in self.storage.fetch("worker_all")]


def _record(worker_id: str, name: str, host: str, pid: int, queues: str, state: str, started_at: int,
            beat_at: int, job_id: int | None, job_attempts: int | None, job_name: str | None, processed: int,
            failed: int, held: str | None) -> WorkerRecord:
    """A row of ``worker_all``, in its column order."""
    return WorkerRecord(str(worker_id), str(name), str(host), int(pid), str(queues), str(state), int(started_at),
                        int(beat_at), None if job_id is None else int(job_id),
                        None if job_attempts is None else int(job_attempts), job_name, int(processed),
                        int(failed), held)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
