"""The lease keeper: a background thread beside the worker loop.

While a job runs it refreshes the job's ``reserved_at`` every ``interval`` seconds, so a job
that runs longer than ``retry_after`` is not claimed by a second worker, while the job of a
dead worker (whose lease keeper died with it) comes back after ``retry_after``. It also
enforces a hard deadline: a job that did not stop at its timeout (it swallowed the exception
or blocks in C code) makes the keeper call ``on_deadline``, which records the timeout and
ends the process, so Supervisor starts a fresh worker.

It has its own database connection (connections are not shared between threads) and opens it
only when a job outlives one interval.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ictq import logs
from ictq.db import Reserved, Storage
from ictq.errors import DatabaseError


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
        self._job: Reserved | None = None
        self._deadline: float | None = None
        self._on_deadline: Callable[[Storage], None] | None = None
        self._touched = 0.0
        self._beat_at = float("-inf")
        self._failing = False

    def hold(self, job: Reserved, deadline: float | None, on_deadline: Callable[[Storage], None]) -> None:
        """Keep ``job`` leased until :meth:`let_go`; call ``on_deadline`` at ``deadline`` (monotonic)."""
        with self._lock:
            self._job, self._deadline, self._on_deadline = job, deadline, on_deadline
            self._touched = time.monotonic()
        self._wake.set()

    def extend(self, deadline: float) -> None:
        """Move the hard deadline (a forced stop gives the job a short grace)."""
        with self._lock:
            if self._job is not None and (self._deadline is None or deadline < self._deadline):
                self._deadline = deadline
        self._wake.set()

    def let_go(self) -> None:
        with self._lock:
            self._job, self._deadline, self._on_deadline = None, None, None

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self.is_alive():
            self.join(timeout=5)
        self.storage.close()

    def run(self) -> None:
        while not self._stopping:
            self._beat_if_due()
            self._wake.wait(self._seconds_to_next())
            self._wake.clear()
            with self._lock:
                job, deadline, on_deadline, touched = self._job, self._deadline, self._on_deadline, self._touched
            if job is None or self._stopping:
                continue
            now = time.monotonic()
            if deadline is not None and now >= deadline and on_deadline is not None:
                on_deadline(self.storage)
                return
            if now - touched >= self.interval:
                self._touch(job)

    def _beat_if_due(self) -> None:
        if self.heartbeat is None or time.monotonic() - self._beat_at < self.heartbeat_every:
            return
        self._beat_at = time.monotonic()
        try:
            self.heartbeat(self.storage)
        except DatabaseError as exc:
            logs.event(self.logger, logging.DEBUG, "heartbeat-failed", error=str(exc))

    def _seconds_to_next(self) -> float | None:
        now = time.monotonic()
        due = [self._beat_at + self.heartbeat_every] if self.heartbeat is not None else []
        with self._lock:
            if self._job is not None:
                due.append(self._touched + self.interval)
                if self._deadline is not None:
                    due.append(self._deadline)
        return max(0.05, min(due) - now) if due else None

    def _touch(self, job: Reserved) -> None:
        with self._lock:
            if self._job is job:
                self._touched = time.monotonic()
        try:
            kept = self.storage.touch(job, int(self.clock()))
        except DatabaseError as exc:
            if not self._failing:
                logs.event(self.logger, logging.WARNING, "lease-refresh-failed", id=job.id, error=str(exc))
            self._failing = True
            return
        self._failing = False
        if not kept:
            logs.event(self.logger, logging.WARNING, "lease-lost", id=job.id, attempt=job.attempts)
