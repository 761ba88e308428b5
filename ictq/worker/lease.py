"""The lease keeper: the jobs a worker holds, their leases, and the running job's hard deadline.

It is the single owner of the held-jobs set: the one running, the ones claimed in the same
batch that wait their turn, and the finished ones not yet deleted (the claims buffer
:meth:`hold`\\ s and :meth:`let_go`\\ es them). On the background thread it refreshes
``reserved_at`` of every held job every ``interval`` seconds, so a job that runs longer than
``retry_after`` is not claimed by a second worker, while the jobs of a dead worker (whose
thread died with it) come back after ``retry_after``. It enforces the running job's hard
deadline: a job that did not stop at its timeout (it swallowed the exception or blocks in C
code) makes the keeper call ``on_deadline``, which records the timeout and ends the process,
so Supervisor starts a fresh worker.

The worker loop never waits for it: holding and letting go of jobs only update a dict under a lock.

:attr:`LeaseKeeper.recording` orders the two writers of the held-jobs list in the workers table:
a claim (its commit, which records the batch, and :meth:`hold`) and a heartbeat (its snapshot of
the held jobs and its write). Without it a beat that took its snapshot before a claim and wrote
after it put the previous list back over the new batch, and a worker killed before its next beat
left that batch to wait for ``retry_after`` instead of being handed back by the reaper.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from ictq import logs
from ictq.db import Reserved, Storage
from ictq.errors import IctqError

T = TypeVar("T")


class LeaseKeeper(Generic[T]):
    """``T``: what :meth:`arm` is given and ``on_deadline`` receives (the running job)."""

    def __init__(self, storage: Storage, interval: float, clock: Callable[[], float], logger: logging.Logger,
                 on_deadline: Callable[[T], None], wake_by: Callable[[float], None] = lambda moment: None) -> None:
        self.storage = storage
        self.interval = interval
        self.clock = clock
        self.logger = logger
        self.on_deadline = on_deadline
        self.wake_by = wake_by
        self._lock = threading.Lock()
        self.recording = threading.Lock()  # see the module's docstring
        self._held: dict[int, tuple[Reserved, float]] = {}  # id -> (job, monotonic time held since)
        self._touched = time.monotonic()
        self._deadline: float | None = None
        self._armed: T | None = None
        self._failing = False

    # -- called by the worker loop ----------------------------------------------------------

    def hold(self, jobs: Iterable[Reserved]) -> None:
        """Keep these claimed jobs leased until :meth:`let_go`."""
        now = time.monotonic()
        with self._lock:
            first = not self._held
            if first:
                self._touched = now
            for job in jobs:
                self._held[job.id] = (job, now)
        if first:  # the thread may sleep past the first refresh these jobs need
            self.wake_by(now + self.interval)

    def let_go(self, jobs: Iterable[Reserved]) -> None:
        with self._lock:
            for job in jobs:
                self._held.pop(job.id, None)

    def held(self) -> list[Reserved]:
        """Every job held now (a copy)."""
        with self._lock:
            return [job for job, _ in self._held.values()]

    def arm(self, deadline: float, running: T) -> None:
        """Call ``on_deadline(running)`` at ``deadline`` (monotonic) unless :meth:`disarm` comes first."""
        with self._lock:
            self._deadline, self._armed = deadline, running
        self.wake_by(deadline)

    def extend(self, deadline: float) -> None:
        """Bring the armed deadline forward (a forced stop gives the job a short grace)."""
        with self._lock:
            if self._armed is not None and (self._deadline is None or deadline < self._deadline):
                self._deadline = deadline
        self.wake_by(deadline)

    def disarm(self) -> None:
        with self._lock:
            self._deadline, self._armed = None, None

    # -- on the background thread ------------------------------------------------------------

    def due(self) -> float | None:
        with self._lock:
            dues = [self._touched + self.interval] if self._held else []
            if self._deadline is not None:
                dues.append(self._deadline)
        return min(dues) if dues else None

    def tick(self, now: float) -> None:
        with self._lock:
            deadline, armed = self._deadline, self._armed
            due = [job for job, since in self._held.values() if now - since >= self.interval]
            if deadline is not None and armed is not None and now >= deadline:
                self._deadline, self._armed = None, None
            else:
                armed = None
        if armed is not None:
            self.on_deadline(armed)  # records the job and ends the process
        if due and now - self._touched >= self.interval:
            self._touch(due)

    def _touch(self, jobs: list[Reserved]) -> None:
        self._touched = time.monotonic()
        try:
            kept = self.storage.touch_many(jobs, int(self.clock()))
        except IctqError as exc:
            if not self._failing:
                logs.event(self.logger, logging.WARNING, "lease-refresh-failed", jobs=len(jobs), error=str(exc))
            self._failing = True
            return
        self._failing = False
        if kept < len(jobs):
            logs.event(self.logger, logging.WARNING, "lease-lost", jobs=len(jobs) - kept,
                       ids=",".join(str(job.id) for job in jobs))
