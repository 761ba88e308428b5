"""A per-job time limit: SIGALRM raises :class:`JobTimeout` inside the running job.

Python code, ``time.sleep`` and most blocking I/O are interrupted this way. A job that
swallows the exception or blocks in C code that ignores signals is not; for those the
lease keeper enforces a hard deadline (see :mod:`ictq.worker.lease`). The handler is
installed once per worker; each job only arms and disarms the interval timer.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

from ictq.errors import JobTimeout


class TimeLimit:
    """Arms an interval timer around a job; main thread only."""

    def __init__(self) -> None:
        self._armed_seconds = 0
        self._previous: Any = None
        self._installed = False

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread() and not self._installed:
            self._previous = signal.signal(signal.SIGALRM, self._fire)
            self._installed = True

    def restore(self) -> None:
        if self._installed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous)
            self._installed = False

    def _fire(self, signum: int, frame: FrameType | None) -> None:
        if self._armed_seconds:
            seconds, self._armed_seconds = self._armed_seconds, 0
            raise JobTimeout(f"the job ran longer than its timeout of {seconds}s")

    def arm(self, seconds: int) -> None:
        """Raise :class:`JobTimeout` in the main thread after ``seconds`` (0: no limit), until
        :meth:`disarm`."""
        if seconds > 0 and self._installed:
            self._armed_seconds = seconds
            signal.setitimer(signal.ITIMER_REAL, seconds)

    def disarm(self) -> None:
        if self._armed_seconds:
            self._armed_seconds = 0
            signal.setitimer(signal.ITIMER_REAL, 0)
