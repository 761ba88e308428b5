"""Per-worker job statistics, kept in memory and written with each heartbeat.

For every (job name, outcome) the worker counts runs and their durations in fixed histogram
buckets (:data:`ictq.db.stats.DURATION_BUCKETS`). Housekeeping stores the cumulative values
(see :class:`ictq.db.stats.StatsRepository`), so the metrics endpoint can sum them across
processes and hosts without a write per job.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field

from ictq.db.stats import DURATION_BUCKETS, StatsRow

OUTCOMES = ("done", "released", "failed")


@dataclass
class Series:
    count: int = 0
    duration_sum: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * len(DURATION_BUCKETS))

    def add(self, seconds: float) -> None:
        self.count += 1
        self.duration_sum += seconds
        index = bisect.bisect_left(DURATION_BUCKETS, seconds)
        if index < len(self.buckets):
            self.buckets[index] += 1


class JobStats:
    """Thread-safe: the worker loop records, the housekeeping thread takes the changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: dict[tuple[str, str], Series] = {}
        self._dirty: set[tuple[str, str]] = set()

    def record(self, job: str, outcome: str, seconds: float) -> None:
        if not job.isascii():
            job = job.encode("utf-8", "backslashreplace").decode("utf-8")[:191]
        with self._lock:
            self._series.setdefault((job, outcome), Series()).add(seconds)
            self._dirty.add((job, outcome))

    def changed(self, worker_id: str) -> list[StatsRow]:
        """The series that changed since the last call, as rows to store."""
        with self._lock:
            rows = [StatsRow(worker_id, job, outcome, s.count, s.duration_sum, tuple(s.buckets))
                    for (job, outcome), s in self._series.items() if (job, outcome) in self._dirty]
            self._dirty.clear()
        return rows
