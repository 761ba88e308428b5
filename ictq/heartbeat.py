"""Worker heartbeats (table ``ictq_workers``).

Every worker registers itself and beats every :data:`BEAT_EVERY` seconds from its lease
thread: host, pid, name, queues, start, last beat, current job, processed and failed counts.
Each beat also reaps: a worker whose beats stopped for :data:`DEAD_AFTER` seconds, or whose
process is gone on this very host, is marked dead and the jobs it held go back to the queue
at once, instead of after ``retry_after``: the one it was running with its attempt counted, the
others (not started, or finished and not yet deleted) with their attempt taken back, when the
dead worker's progress file (:mod:`ictq.progress`) says which was which; without it, every
attempt counts. The writes are fenced by ``(id, attempts)``, so a job another worker has
claimed since is never touched.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ictq import progress
from ictq.db import Reserved, Storage

BEAT_EVERY = 5.0
DEAD_AFTER = 30
FORGET_AFTER = 24 * 3600


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

    def as_dict(self, now: int) -> dict[str, Any]:
        return {**asdict(self), "alive": self.alive(now), "last_beat_age": max(0, now - self.beat_at)}


class Heartbeat:
    """One worker's registration; call :meth:`beat` from a thread that owns ``storage``."""

    def __init__(self, name: str, queues: Sequence[str], started_at: int) -> None:
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.id = f"{self.host}:{self.pid}:{started_at}:{BOOT_ID}"
        self.name = name
        self.queues = ",".join(queues)
        self.started_at = started_at

    def beat(self, storage: Storage, now: int, job: Reserved | None, job_name: str | None,
             processed: int, failed: int, held: Sequence[Reserved] = ()) -> list[WorkerRecord]:
        """Record this worker as alive (with the job it runs and the other jobs it holds);
        reap dead ones; return the workers reaped."""
        storage.run("worker_beat", {
            "id": self.id, "name": self.name, "host": self.host, "pid": self.pid, "queues": self.queues,
            "state": "alive", "started_at": self.started_at, "now": now,
            "job_id": job.id if job else None, "job_attempts": job.attempts if job else None,
            "job_name": job_name if job else None, "processed": processed, "failed": failed,
            "held": json.dumps([[h.id, h.attempts] for h in held]) if held else None})
        return self.reap(storage, now)

    def reap(self, storage: Storage, now: int) -> list[WorkerRecord]:
        reaped = []
        for record in workers(storage):
            if record.id == self.id or record.state != "alive" or record.alive(now):
                continue
            if storage.run("worker_mark", {"id": record.id, "state": "dead"}) != 1:
                continue  # another worker reaped it first
            held = [Reserved(int(i), "", "", int(a)) for i, a in json.loads(record.held or "[]")]
            if record.job_id is not None and record.job_attempts is not None:
                held.append(Reserved(record.job_id, "", "", record.job_attempts))
            ran, unstarted = split_held(held, progress.read(record.id) if record.on_this_boot() else None)
            # The running job's attempt counts, so a job that kills its worker still runs out of
            # tries; the others get theirs back. (Jobs done or re-claimed since are fenced off.)
            storage.release_many(ran)
            storage.unclaim_many(unstarted)
            progress.forget(record.id)
            reaped.append(record)
        storage.run("stats_forget_old", {"before": now - FORGET_AFTER})
        storage.run("worker_forget_old", {"before": now - FORGET_AFTER})
        return reaped

    def leave(self, storage: Storage) -> None:
        storage.run("worker_leave", {"id": self.id})


def split_held(held: Sequence[Reserved], position: progress.Position | None
               ) -> tuple[list[Reserved], list[Reserved]]:
    """A dead worker's held jobs as ``(ran, unstarted)``: ``ran`` is the job it was running when
    it died; without its position every job counts as ran, as an expired lease would have it."""
    if position is None:
        return list(held), []
    ran = [job for job in held if position.state == progress.RUNNING
           and (job.id, job.attempts) == (position.job_id, position.attempts)]
    return ran, [job for job in held if job not in ran]


def workers(storage: Storage) -> list[WorkerRecord]:
    return [WorkerRecord(*row) for row in storage.fetch("worker_all")]


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
