"""Control flags shared by every worker through the database (table ``ictq_control``).

``ictq restart`` stores a new restart stamp: each worker remembers the stamp it saw at start
and, once it sees another, finishes its current job and exits (Supervisor starts it again on
the new code). ``ictq pause QUEUE`` / ``ictq resume QUEUE`` add and remove ``pause:QUEUE``;
workers take no new jobs from a paused queue (see ``ictq.worker.control``). No cache server is
needed, and every host sharing the database obeys.
"""

from __future__ import annotations

from ictq.db import Storage
from ictq.db.control import PAUSE_PREFIX, RESTART, ControlRepository, ControlState

__all__ = ["ControlState", "pause", "read", "request_restart", "resume"]


def read(storage: Storage) -> ControlState:
    return ControlRepository(storage).state()


def request_restart(storage: Storage, now: float) -> str:
    stamp = f"{now:.6f}"
    ControlRepository(storage).set(RESTART, stamp, int(now))
    return stamp


def pause(storage: Storage, queue: str, now: float) -> None:
    ControlRepository(storage).set(PAUSE_PREFIX + queue, "1", int(now))


def resume(storage: Storage, queue: str) -> bool:
    return ControlRepository(storage).delete(PAUSE_PREFIX + queue)
