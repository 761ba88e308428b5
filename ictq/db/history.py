"""The history tables: ``ictq_history``, per minute, queue and job name, the outcomes of the jobs
(processed, failed, released), their summed runtimes and waits and both as histograms (a column
per bucket, so that SQL sums them); ``ictq_history_sizes``, a per-minute snapshot of the queues'
sizes; ``ictq_history_hourly``, the same sums per hour (the week's chart and the names of the
charts' pickers read it), and ``ictq_history_marks``, the minutes whose snapshot a worker has taken (the first
worker to mark a minute writes it; the others do not even read the sizes).

Every worker adds its counts to the minute's rows with its heartbeat (an upsert that adds, so
any number of workers on any hosts write to the same rows). :class:`HistoryRepository` is the
only caller of the ``history_*`` statements; every read is a range of the tables' primary keys,
which start with the minute.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ictq.db.base import Storage, fitted
from ictq.db.stats import DURATION_BUCKETS

# The upper bounds (seconds) of the wait buckets: a wait above the last one is only in the totals.
WAIT_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
RUNTIME_COLUMNS = tuple(f"r{i}" for i in range(len(DURATION_BUCKETS)))
WAIT_COLUMNS = tuple(f"w{i}" for i in range(len(WAIT_BUCKETS)))
NAME_CHARS = 191  # the queue and job columns: varchar(191)
HOUR = 3600


@dataclass(frozen=True)
class Sums:
    """Counts, summed seconds and histogram buckets (non-cumulative, one count per upper bound)
    of some jobs' outcomes: a worker's delta for one minute, or a sum of rows."""

    processed: int = 0
    failed: int = 0
    released: int = 0
    runtime_sum: float = 0.0
    wait_sum: float = 0.0
    runtime_buckets: tuple[int, ...] = (0,) * len(DURATION_BUCKETS)
    wait_buckets: tuple[int, ...] = (0,) * len(WAIT_BUCKETS)

    @property
    def count(self) -> int:
        """Every outcome (each run of a job counts once, a released one too)."""
        return self.processed + self.failed + self.released

    def __add__(self, other: Sums) -> Sums:
        return Sums(self.processed + other.processed, self.failed + other.failed, self.released + other.released,
                    self.runtime_sum + other.runtime_sum, self.wait_sum + other.wait_sum,
                    tuple(a + b for a, b in zip(self.runtime_buckets, other.runtime_buckets, strict=True)),
                    tuple(a + b for a, b in zip(self.wait_buckets, other.wait_buckets, strict=True)))

    @classmethod
    def of(cls, values: Sequence[Any]) -> Sums:
        """From the summed columns of a query (``SUM`` gives NULL for no rows, decimals on some
        databases)."""
        ints = [int(v or 0) for v in values]
        runtime_end = 5 + len(DURATION_BUCKETS)
        return cls(ints[0], ints[1], ints[2], float(values[3] or 0), float(values[4] or 0),
                   tuple(ints[5:runtime_end]), tuple(ints[runtime_end:]))


@dataclass(frozen=True)
class HistoryRow:
    """What to add to the row of ``(minute, queue, job)``."""

    minute: int
    queue: str
    job: str
    sums: Sums


@dataclass(frozen=True)
class QueueSnapshot:
    """A queue's sizes at a minute (from ``ictq_history_sizes``)."""

    queue: str
    pending: int
    delayed: int
    reserved: int


class HistoryRepository:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def add(self, rows: Sequence[HistoryRow]) -> None:
        """Add these counts to their rows, in one transaction (all or none). Raises DatabaseError.
        A queue or job name longer than its column is cut to it (:func:`~ictq.db.base.fitted`).
        The rows are written in key order, as every worker writes them: two workers adding to the
        same rows lock them in the same order (no deadlock between them)."""
        if not rows:
            return
        params = sorted((_params(row) for row in rows), key=_key)
        hours: dict[tuple[int, str, str], Sums] = {}
        for row in rows:
            key = (row.minute // HOUR * HOUR, row.queue, row.job)
            hours[key] = hours.get(key, Sums()) + row.sums
        hourly = sorted((_params(HistoryRow(*key, sums)) for key, sums in hours.items()), key=_key)
        with self.storage.transaction():
            self.storage.run_many("history_add", params)
            self.storage.run_many("history_add_hourly", hourly)

    def mark(self, minute: int) -> bool:
        """Mark ``minute`` as snapshotted; True for the one caller that marked it first."""
        return self.storage.run("history_mark", {"minute": minute}) == 1

    def put_sizes(self, minute: int, snapshots: Sequence[QueueSnapshot]) -> None:
        """Store the queues' sizes at ``minute``."""
        self.storage.run_many("history_sizes_put", [
            {"minute": minute, "queue": fitted(s.queue, NAME_CHARS), "pending": s.pending, "delayed": s.delayed,
             "reserved": s.reserved} for s in snapshots])

    def series(self, since: int, until: int, step: int, queue: str | None = None,
               job: str | None = None) -> list[tuple[int, Sums]]:
        """The rows of minutes in ``[since, until)`` (of ``queue`` and ``job`` when given) summed
        per step (steps start at ``since + k * step``): ``(step start, sums)``, oldest first,
        the steps without rows left out."""
        params = {"since": since, "until": until, "step": step,
                  "any_queue": int(queue is None), "queue": fitted(queue or "", NAME_CHARS),
                  "any_job": int(job is None), "job": fitted(job or "", NAME_CHARS)}
        # Steps of whole hours that start on an hour read the hourly roll-up: a week is 168 rows
        # per queue and job, not 10,080.
        statement = "history_series_hourly" if step % HOUR == 0 and since % HOUR == 0 else "history_series"
        return [(int(row[0]), Sums.of(row[1:])) for row in self.storage.fetch(statement, params)]

    def totals(self, since: int, until: int) -> dict[str, Sums]:
        """The rows of minutes in ``[since, until)`` summed per queue."""
        return {str(row[0]): Sums.of(row[1:])
                for row in self.storage.fetch("history_totals", {"since": since, "until": until})}

    def queues(self, since: int) -> list[str]:
        """The queues with rows since the hour of ``since`` (from the hourly roll-up)."""
        return [str(queue) for (queue,) in self.storage.fetch("history_queues", {"since": since // HOUR * HOUR})]

    def jobs(self, since: int) -> list[str]:
        """The job names with rows since the hour of ``since`` (from the hourly roll-up)."""
        return [str(job) for (job,) in self.storage.fetch("history_jobs", {"since": since // HOUR * HOUR})]

    def snapshot_minutes(self, since: int, until: int) -> tuple[int, int] | None:
        """The first and the last minute in ``[since, until)`` with a sizes snapshot; None when none."""
        ((first, last),) = self.storage.fetch("history_marks_range", {"since": since, "until": until})
        return None if first is None else (int(first), int(last))

    def sizes_at(self, minute: int) -> dict[str, QueueSnapshot]:
        """The snapshot of ``minute``, per queue (a queue without jobs then has no row)."""
        return {str(q): QueueSnapshot(str(q), int(p), int(d), int(r))
                for q, p, d, r in self.storage.fetch("history_sizes_at", {"minute": minute})}

    def prune(self, before: int) -> int:
        """Delete the rows of minutes before ``before``; return how many history rows went."""
        deleted = self.storage.run("history_prune", {"before": before})
        self.storage.run("history_prune_hourly", {"before": before // HOUR * HOUR})
        self.storage.run("history_prune_sizes", {"before": before})
        self.storage.run("history_prune_marks", {"before": before})
        return deleted


def _key(params: dict[str, Any]) -> tuple[int, str, str]:
    return params["minute"], params["queue"], params["job"]


def _params(row: HistoryRow) -> dict[str, Any]:
    sums = row.sums
    params: dict[str, Any] = {
        "minute": row.minute, "queue": fitted(row.queue, NAME_CHARS), "job": fitted(row.job, NAME_CHARS),
        "processed": sums.processed, "failed": sums.failed, "released": sums.released,
        "runtime_sum": sums.runtime_sum, "wait_sum": sums.wait_sum}
    params.update(zip(RUNTIME_COLUMNS, sums.runtime_buckets, strict=True))
    params.update(zip(WAIT_COLUMNS, sums.wait_buckets, strict=True))
    return params
