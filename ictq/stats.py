"""Per-worker job statistics, kept in memory and written with each heartbeat.

For every (job name, outcome) the worker counts runs and their durations in fixed histogram
buckets. The heartbeat stores the cumulative values in ``ictq_worker_stats`` (an idempotent
upsert), so the metrics endpoint can sum them across processes and hosts without a write per
job.
"""

from __future__ import annotations

import bisect
import json
import threading
from dataclasses import dataclass, field

from ictq.db import Storage

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
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
    """Thread-safe: the worker loop records, the lease thread flushes."""

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

    def flush(self, storage: Storage, worker_id: str) -> None:
        """Write the series that changed since the last flush."""
        with self._lock:
            rows = [{"worker_id": worker_id, "job": job, "outcome": outcome, "count": s.count,
                     "duration_sum": s.duration_sum, "buckets": json.dumps(s.buckets)}
                    for (job, outcome), s in self._series.items() if (job, outcome) in self._dirty]
            self._dirty.clear()
        for row in rows:
            storage.run("stats_put", row)


@dataclass(frozen=True)
class StatsRow:
    worker_id: str
    job: str
    outcome: str
    count: int
    duration_sum: float
    buckets: tuple[int, ...]


def all_stats(storage: Storage) -> list[StatsRow]:
    """Every worker's cumulative series (non-cumulative bucket counts, see DURATION_BUCKETS)."""
    return [StatsRow(str(w), str(j), str(o), int(c), float(d), tuple(json.loads(b)))
            for w, j, o, c, d, b in storage.fetch("stats_all")]
