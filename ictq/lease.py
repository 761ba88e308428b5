"""The lease keeper: a background thread beside the worker loop.

It refreshes ``reserved_at`` of every job the worker holds (the one running and the ones
claimed in the same batch that wait their turn) every ``interval`` seconds, so a job that runs
longer than ``retry_after`` is not claimed by a second worker, while the jobs of a dead worker
(whose lease keeper died with it) come back after ``retry_after``. It enforces the running
job's hard deadline: a job that did not stop at its timeout (it swallowed the exception or
blocks in C code) makes the keeper call ``on_deadline``, which records the timeout and ends
the process, so Supervisor starts a fresh worker. It also sends the worker's heartbeat.

It has its own database connection (connections are not shared between threads). The worker
loop never waits for it: holding and letting go of jobs only updates a set under a lock.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable

from ictq import logs
from ictq.db import Reserved, Storage
from ictq.errors import DatabaseError, IctqError


class LeaseKeeper(threading.Thread):
    def __init__(self, storage: Storage, interval: float, clock: Callable[[], float], logger: logging.Logger,
                 heartbeat: Callable[[Storage], None] | None = None, heartbeat_every: float = 5.0):
        super().__init__(name="ictq-lease", daemon=True)
        self.storage = storage
        self.interval = interval
        self.clock = clock
        self.logger = logger
        self.heartbeat = heartbeat
        self.heartbeat_every = heartbeat_every
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._held: dict[int, tuple[Reserved, float]] = {}  # id -> (job, monotonic time held since)
        self._touched = time.monotonic()
        self._deadline: float | None = None
        self._on_deadline: Callable[[Storage], None] | None = None
        self._beat_at = float("-inf")
        self._sleeping_until = float("inf")
        self._failing = False

    # -- called by the worker loop ----------------------------------------------------------

    def hold(self, jobs: Iterable[Reserved]) -> None:
        """Keep these claimed jobs leased until :meth:`let_go`."""
        now = time.monotonic()
        with self._lock:
            wake = not self._held and now + self.interval < self._sleeping_until
            if not self._held:
                self._touched = now
            for job in jobs:
                self._held[job.id] = (job, now)
        if wake:  # the thread sleeps past the first refresh these jobs need
            self._wake.set()

    def let_go(self, jobs: Iterable[Reserved]) -> None:
        with self._lock:
            for job in jobs:
                self._held.pop(job.id, None)

    def arm(self, deadline: float, on_deadline: Callable[[Storage], None]) -> None:
        """Call ``on_deadline`` at ``deadline`` (monotonic) unless :meth:`disarm` comes first."""
        with self._lock:
            self._deadline, self._on_deadline = deadline, on_deadline
            wake = deadline < self._sleeping_until
        if wake:
            self._wake.set()

    def extend(self, deadline: float) -> None:
        """Bring the armed deadline forward (a forced stop gives the job a short grace)."""
        with self._lock:
            if self._on_deadline is not None and (self._deadline is None or deadline < self._deadline):
                self._deadline = deadline
        self._wake.set()

    def beaten(self) -> None:
        """The worker sent a heartbeat itself: the next one is due a full period from now."""
        self._beat_at = time.monotonic()

    def disarm(self) -> None:
        with self._lock:
            self._deadline, self._on_deadline = None, None

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self.is_alive():
            self.join(timeout=5)
        self.storage.close()

    # -- the thread -----------------------------------------------------------------------------

    def run(self) -> None:
        # Connect now, during start-up, not in the middle of the first idle stretch.
        with contextlib.suppress(IctqError):
            self.storage.connection  # noqa: B018 - opening the connection is the point
        while not self._stopping:
            self._beat_if_due()
            self._wake.wait(self._seconds_to_next())
            self._wake.clear()
            if self._stopping:
                return
            now = time.monotonic()
            with self._lock:
                deadline, on_deadline = self._deadline, self._on_deadline
                due = [job for job, since in self._held.values() if now - since >= self.interval]
            if deadline is not None and on_deadline is not None and now >= deadline:
                on_deadline(self.storage)
                return
            if due and now - self._touched >= self.interval:
                self._touch(due)

    def _beat_if_due(self) -> None:
        if self.heartbeat is None or time.monotonic() - self._beat_at < self.heartbeat_every:
            return
        self._beat_at = time.monotonic()
        try:
            self.heartbeat(self.storage)
        except DatabaseError as exc:
            logs.event(self.logger, logging.DEBUG, "heartbeat-failed", error=str(exc))
        except Exception as exc:  # noqa: BLE001 - this thread must outlive anything a beat meets
            logs.event(self.logger, logging.ERROR, "heartbeat-failed", error=f"{type(exc).__name__}: {exc}")

    def _seconds_to_next(self) -> float | None:
        now = time.monotonic()
        due = [self._beat_at + self.heartbeat_every] if self.heartbeat is not None else []
        with self._lock:
            if self._held:
                due.append(self._touched + self.interval)
            if self._deadline is not None:
                due.append(self._deadline)
            self._sleeping_until = min(due) if due else float("inf")
        return max(0.05, self._sleeping_until - now) if due else None

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
