"""The ``ictq_worker_stats`` table: per worker, job name and outcome, cumulative counts and
duration histograms, written with each heartbeat (an idempotent upsert) and summed by the
metrics endpoint. :class:`StatsRepository` is the only caller of the ``stats_*`` statements."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from ictq.db.base import Storage, fitted

# The upper bounds (seconds) of the duration buckets; a row's ``buckets`` has one count per bound
# (non-cumulative), durations above the last bound are only in ``count``.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


@dataclass(frozen=True)
class StatsRow:
    worker_id: str
    job: str
    outcome: str
    count: int
    duration_sum: float
    buckets: tuple[int, ...]


class StatsRepository:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def put(self, rows: Iterable[StatsRow]) -> None:
        """Store these series (each replaces the worker's earlier values for its job and outcome).
        A job name longer than the column (191 characters) is cut to it (see
        :func:`~ictq.db.base.fitted`)."""
        for row in rows:
            self.storage.run("stats_put", {
                "worker_id": row.worker_id, "job": fitted(row.job, 191), "outcome": row.outcome, "count": row.count,
                "duration_sum": row.duration_sum, "buckets": json.dumps(list(row.buckets))})

    def all(self) -> list[StatsRow]:
        """Every worker's cumulative series."""
        return [StatsRow(str(w), str(j), str(o), int(c), float(d), tuple(json.loads(b)))
                for w, j, o, c, d, b in self.storage.fetch("stats_all")]

    def forget_old(self, before: int) -> None:
        """Delete the series of workers that stopped beating before ``before``."""
        self.storage.run("stats_forget_old", {"before": before})
