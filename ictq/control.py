"""Control flags shared by every worker through the database (table ``ictq_control``).

``ictq restart`` stores a new restart stamp: each worker remembers the stamp it saw at start
and, once it sees another, finishes its current job and exits (Supervisor starts it again on
the new code). ``ictq pause QUEUE`` / ``ictq resume QUEUE`` add and remove ``pause:QUEUE``;
workers take no new jobs from a paused queue. No cache server is needed, and every host
sharing the database obeys.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ictq.db import Storage

RESTART = "restart"
PAUSE_PREFIX = "pause:"


@dataclass(frozen=True)
class ControlState:
    restart: str | None
    paused: frozenset[str]


def read(storage: Storage) -> ControlState:
    values = dict(storage.fetch("control_all"))
    paused = frozenset(name[len(PAUSE_PREFIX):] for name in values if name.startswith(PAUSE_PREFIX))
    return ControlState(values.get(RESTART), paused)


def request_restart(storage: Storage, now: float) -> str:
    stamp = f"{now:.6f}"
    storage.run("control_set", {"name": RESTART, "value": stamp, "now": int(now)})
    return stamp


def pause(storage: Storage, queue: str, now: float) -> None:
    storage.run("control_set", {"name": PAUSE_PREFIX + queue, "value": "1", "now": int(now)})


def resume(storage: Storage, queue: str) -> bool:
    return storage.run("control_delete", {"name": PAUSE_PREFIX + queue}) > 0


class ControlWatcher:
    """The worker's view of the flags, read from the database at most every ``interval`` s."""

    def __init__(self, storage: Storage, interval: float = 1.0) -> None:
        self.storage = storage
        self.interval = interval
        self._read_at = float("-inf")
        self._initial_restart: str | None = None
        self._started = False
        self.state = ControlState(None, frozenset())

    def refresh(self, force: bool = False) -> ControlState:
        """Re-read the flags if ``interval`` has passed (raises DatabaseUnavailable like any read)."""
        now = time.monotonic()
        if force or now - self._read_at >= self.interval:
            self.state = read(self.storage)
            self._read_at = now
            if not self._started:
                self._initial_restart, self._started = self.state.restart, True
        return self.state

    @property
    def restart_requested(self) -> bool:
        return self._started and self.state.restart != self._initial_restart
