"""Per-minute job history, kept in memory and added to ``ictq_history`` with each heartbeat.

For every (minute, queue, job name) the worker counts outcomes (processed, failed, released),
sums the runtimes and the waits (the run's start minus the job's ``available_at``, at least 0;
0 when the claim did not say when the job became available) and counts both in fixed histogram
buckets (:data:`ictq.db.stats.DURATION_BUCKETS`, :data:`ictq.db.history.WAIT_BUCKETS`). The loop
records (a lock, a dictionary entry, two bisections); housekeeping :meth:`~JobHistory.take`\\ s
the counts since the last beat and adds them to the table; when that write fails it
:meth:`~JobHistory.give_back`\\ s them, to be added with the next beat.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field

from ictq.db.history import WAIT_BUCKETS, HistoryRow, Sums
from ictq.db.stats import DURATION_BUCKETS


@dataclass
class Tally:
    processed: int = 0
    failed: int = 0
    released: int = 0
    runtime_sum: float = 0.0
    wait_sum: float = 0.0
    runtime_buckets: list[int] = field(default_factory=lambda: [0] * len(DURATION_BUCKETS))
    wait_buckets: list[int] = field(default_factory=lambda: [0] * len(WAIT_BUCKETS))

    def add(self, outcome: str, runtime: float, wait: float) -> None:
        if outcome == "done":
            self.processed += 1
        elif outcome == "failed":
            self.failed += 1
        else:
            self.released += 1
        self.runtime_sum += runtime
        self.wait_sum += wait
        index = bisect.bisect_left(DURATION_BUCKETS, runtime)
        if index < len(DURATION_BUCKETS):
            self.runtime_buckets[index] += 1
        index = bisect.bisect_left(WAIT_BUCKETS, wait)
        if index < len(WAIT_BUCKETS):
            self.wait_buckets[index] += 1

    def sums(self) -> Sums:
        return Sums(self.processed, self.failed, self.released, self.runtime_sum, self.wait_sum,
                    tuple(self.runtime_buckets), tuple(self.wait_buckets))


def wait_of(started_at: float, available_at: int) -> float:
    """A job's wait: from when it became available to the start of its run (seconds, at least 0;
    0 when ``available_at`` is unknown, 0)."""
    if available_at <= 0:
        return 0.0
    return max(0.0, started_at - available_at)


class JobHistory:
    """Thread-safe: the worker loop (and the deadline's outcomes) record, housekeeping takes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tallies: dict[tuple[int, str, str], Tally] = {}

    def record(self, queue: str, job: str, outcome: str, runtime: float, started_at: float, available_at: int,
               ) -> None:
        """One outcome (``done``, ``failed`` or ``released``) of a run of ``runtime`` seconds that
        started at ``started_at`` (wall clock); it counts in the minute it ended."""
        minute = int(started_at + runtime) // 60 * 60
        wait = wait_of(started_at, available_at)
        key = (minute, queue, job)
        with self._lock:
            tally = self._tallies.get(key)
            if tally is None:
                tally = self._tallies[key] = Tally()
            tally.add(outcome, runtime, wait)

    def take(self) -> list[HistoryRow]:
        """The counts recorded since the last call, as rows to add (and forgotten here)."""
        with self._lock:
            tallies, self._tallies = self._tallies, {}
        return [HistoryRow(minute, queue, job, tally.sums()) for (minute, queue, job), tally in tallies.items()]

    def give_back(self, rows: list[HistoryRow]) -> None:
        """Rows :meth:`take` returned that could not be written: added with the next take."""
        with self._lock:
            for row in rows:
                key = (row.minute, row.queue, row.job)
                tally = self._tallies.get(key)
                if tally is None:
                    tally = self._tallies[key] = Tally()
                sums = row.sums
                tally.processed += sums.processed
                tally.failed += sums.failed
                tally.released += sums.released
                tally.runtime_sum += sums.runtime_sum
                tally.wait_sum += sums.wait_sum
                tally.runtime_buckets = [a + b for a, b in zip(tally.runtime_buckets, sums.runtime_buckets,
                                                                strict=True)]
                tally.wait_buckets = [a + b for a, b in zip(tally.wait_buckets, sums.wait_buckets, strict=True)]

    def __len__(self) -> int:
        with self._lock:
            return len(self._tallies)
