"""The worker's background thread: one thread and one database connection (connections are
not shared between threads) for the periodic work beside the loop, the lease keeper
(:mod:`ictq.worker.lease`) and housekeeping (:mod:`ictq.worker.housekeeping`).

Each task says when it next needs to run (:meth:`Task.due`) and does what is due in
:meth:`Task.tick`; the thread sleeps until the earliest. A task whose new work is due sooner
than that (a claim to lease, a deadline) wakes the thread with :meth:`BackgroundThread.wake_by`.
The worker loop never waits for this thread.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Protocol

from ictq.db import Storage
from ictq.errors import IctqError


class Task(Protocol):
    def due(self) -> float | None:
        """When (``time.monotonic()``) the task next needs to run; None: not until woken."""

    def tick(self, now: float) -> None:
        """Do what is due at ``now``; must not raise."""


class BackgroundThread(threading.Thread):
    def __init__(self, storage: Storage) -> None:
        super().__init__(name="ictq-background", daemon=True)
        self.storage = storage  # the tasks' connection; the worker closes it after stop()
        self.tasks: list[Task] = []
        self._wake = threading.Event()
        self._stopping = False
        self._sleeping_until = float("inf")

    def add(self, task: Task) -> None:
        """Before :meth:`start`."""
        self.tasks.append(task)

    def wake_by(self, moment: float) -> None:
        """A task has work due at ``moment``: wake the thread if it sleeps past it."""
        if moment < self._sleeping_until:
            self._wake.set()

    def run(self) -> None:
        # Connect now, during start-up, not in the middle of the first idle stretch.
        with contextlib.suppress(IctqError):
            self.storage.connection  # noqa: B018 - opening the connection is the point
        while not self._stopping:
            now = time.monotonic()
            for task in self.tasks:
                task.tick(now)
            self._sleeping_until = float("-inf")  # a wake_by() while the next due is computed wakes
            dues = [due for task in self.tasks if (due := task.due()) is not None]
            self._sleeping_until = min(dues) if dues else float("inf")
            self._wake.wait(max(0.05, self._sleeping_until - time.monotonic()) if dues else None)
            self._wake.clear()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self.is_alive():
            self.join(timeout=5)
