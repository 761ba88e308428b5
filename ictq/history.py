"""The per-minute history of job outcomes, read back for charts and rates.

The workers add their counts to ``ictq_history`` with each heartbeat (see
:mod:`ictq.worker.history` and :mod:`ictq.db.history`): per minute, queue and job name, the
outcomes (processed, failed, released), the summed runtimes and waits, and both as histograms.
Here they are summed in SQL, per chart step (:func:`series`) or per queue (:func:`recent`);
every read is a range of the table's primary key (it starts with the minute) and none touches
``jobs`` or ``failed_jobs``.

Percentiles come from the summed histogram buckets (:func:`percentile`): the rank's bucket is
found and the value interpolated linearly between the bucket's lower and upper bounds (the
first bucket starts at 0); a rank beyond the last bound (a run longer than 300 s, a wait longer
than an hour) is reported as that last bound, as Prometheus' ``histogram_quantile`` does. So a
percentile is exact to a bucket's width, no better.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ictq.db import Storage
from ictq.db.history import WAIT_BUCKETS, HistoryRepository, Sums
from ictq.db.stats import DURATION_BUCKETS
from ictq.errors import UnknownSpan

SPANS: dict[str, tuple[int, int]] = {"hour": (3600, 60), "day": (86400, 900), "week": (7 * 86400, 7200)}
"""The charts: name -> (span seconds, step seconds)."""


@dataclass(frozen=True)
class Point:
    """One chart step, from ``start`` (unix seconds) for a step's length; the percentiles are
    None when no job ended in it."""

    start: int
    processed: int
    failed: int
    released: int
    wait_p50: float | None
    wait_p95: float | None
    run_p50: float | None
    run_p95: float | None


@dataclass(frozen=True)
class Rates:
    """A queue's recent rates (per minute) and percentiles (seconds; None without jobs)."""

    queue: str
    jobs_per_min: float
    failures_per_min: float
    wait_p50: float | None
    wait_p95: float | None
    run_p50: float | None
    run_p95: float | None
    mean_runtime: float | None


def percentile(buckets: Sequence[int], bounds: Sequence[float], count: int, q: float) -> float | None:
    """The ``q`` quantile (0..1) of ``count`` values counted in ``buckets`` (non-cumulative, one
    per upper bound of ``bounds``; values above the last bound are only in ``count``): linear
    interpolation within the rank's bucket, the last bound for a rank beyond it. None when
    ``count`` is 0."""
    if count <= 0:
        return None
    rank = q * count
    cumulative = 0
    lower = 0.0
    for bound, n in zip(bounds, buckets, strict=True):
        if n and cumulative + n >= rank:
            return lower + (bound - lower) * max(0.0, rank - cumulative) / n
        cumulative += n
        lower = bound
    return float(bounds[-1])


def wait_percentile(sums: Sums, q: float) -> float | None:
    return percentile(sums.wait_buckets, WAIT_BUCKETS, sums.count, q)


def run_percentile(sums: Sums, q: float) -> float | None:
    return percentile(sums.runtime_buckets, DURATION_BUCKETS, sums.count, q)


def steps(now: int, span: str) -> tuple[int, int, int]:
    """``(first step start, end, step)`` of the chart ``span`` at ``now``: steps aligned to
    multiples of the step (UTC), the last one holding ``now``. Raises UnknownSpan."""
    if span not in SPANS:
        raise UnknownSpan(f"unknown span {span!r}: one of {', '.join(SPANS)}")
    seconds, step = SPANS[span]
    last = now // step * step
    first = last - (seconds // step - 1) * step
    return first, last + step, step


def series(storage: Storage, now: int, span: str, queue: str | None = None, job: str | None = None) -> list[Point]:
    """One :class:`Point` per step of the chart ``span`` (:data:`SPANS`), oldest first, the
    last step holding ``now``; steps without jobs are zeros (and None percentiles). Only the
    jobs of ``queue`` and of ``job`` (a job name) when given."""
    first, end, step = steps(now, span)
    found = dict(HistoryRepository(storage).series(first, end, step, queue, job))
    return [point(start, found.get(start, Sums())) for start in range(first, end, step)]


def point(start: int, sums: Sums) -> Point:
    return Point(start, sums.processed, sums.failed, sums.released,
                 wait_percentile(sums, 0.5), wait_percentile(sums, 0.95),
                 run_percentile(sums, 0.5), run_percentile(sums, 0.95))


def recent(storage: Storage, now: int, minutes: int = 5) -> dict[str, Rates]:
    """Per queue with jobs in the last ``minutes`` complete minutes and the current one: jobs
    and failures per minute (every outcome counts as a job, a released one too; failures are
    the jobs failed for good) over the time from the first of those minutes to ``now``,
    percentiles of wait and runtime, and the mean runtime."""
    current = now // 60 * 60
    since = current - max(1, minutes) * 60
    totals = HistoryRepository(storage).totals(since, current + 60)
    elapsed = max(60, now - since) / 60
    return {queue: rates(queue, sums, elapsed) for queue, sums in totals.items()}


def rates(queue: str, sums: Sums, minutes: float) -> Rates:
    count = sums.count
    return Rates(queue, count / minutes, sums.failed / minutes,
                 wait_percentile(sums, 0.5), wait_percentile(sums, 0.95),
                 run_percentile(sums, 0.5), run_percentile(sums, 0.95),
                 sums.runtime_sum / count if count else None)


def names(storage: Storage, since: int) -> tuple[list[str], list[str]]:
    """``(queues, job names)`` with history since ``since`` (unix seconds), sorted."""
    repository = HistoryRepository(storage)
    since = since // 60 * 60
    return repository.queues(since), repository.jobs(since)
