"""Prometheus metrics for the whole queue: ``ictq metrics --listen 127.0.0.1:9108``.

Every scrape reads the database, so the numbers are the same whichever host serves them and
cover every worker process on every host (the workers write their cumulative job statistics
with their heartbeats; see :mod:`ictq.worker.stats`). Nothing is counted in this process.

Metrics (all prefixed ``ictq_``):

==========================================  =========  ==================  ==========================================
name                                        type       labels              meaning
==========================================  =========  ==================  ==========================================
``ictq_up``                                 gauge                          1 when the database answered this scrape
``ictq_queue_jobs``                         gauge      queue, state        jobs by state: pending, delayed, reserved
``ictq_queue_oldest_pending_age_seconds``   gauge      queue               wait of the oldest available job
``ictq_failed_jobs``                        gauge      queue, job          rows in failed_jobs now
``ictq_failed_jobs_last_hour``              gauge      queue               jobs that failed in the last hour
``ictq_jobs_processed_total``               counter    job, outcome        runs by outcome: done, released, failed
``ictq_job_duration_seconds``               histogram  job, outcome        run time of those runs
``ictq_workers_alive``                      gauge                          workers beating (all hosts)
``ictq_workers_dead``                       gauge                          workers whose beats stopped (kept 24 h)
``ictq_scrape_duration_seconds``            gauge                          time this scrape took
==========================================  =========  ==================  ==========================================

The counters and the histogram are sums over the workers' rows in ``ictq_worker_stats``: a
worker writes them every few seconds, so a worker killed with ``kill -9`` loses its last few
seconds of counts, and the rows of a worker dead for 24 hours are forgotten (Prometheus sees
a counter reset, which ``rate()`` handles).

Label values come from rows anyone may have written: each is masked (the secrets of the
settings), made printable (control characters and undecodable bytes escaped) and cut at
:data:`MAX_LABEL` characters, so that no row can make a scrape fail.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from ictq import logs, ops, payload, triage
from ictq.db import Storage, stats
from ictq.db.workers import WorkerRecord, WorkersRepository
from ictq.display import NO_SECRETS, Masker, printable, text_of
from ictq.errors import IctqError

MAX_LABEL = 255


@dataclass(frozen=True)
class Snapshot:
    """What one scrape read from the database."""

    now: int
    sizes: Sequence[ops.QueueSize]
    failed: Counter[tuple[str, str]]
    stats: Sequence[stats.StatsRow]
    workers: Sequence[WorkerRecord]


class FailedNames:
    """Failed jobs by queue and job name, counted in the database at each scrape: the job names
    come from ictq's signature side tables (:func:`ictq.triage.job_counts`, reconciled with
    failed_jobs first), so a scrape holds one row per (queue, group), never one per failed job."""

    def count(self, storage: Storage) -> Counter[tuple[str, str]]:
        return Counter({(queue, job or payload.UNREADABLE_NAME): count
                        for (queue, job), count in triage.job_counts(storage).items()})


def read(storage: Storage, names: FailedNames, now: int) -> Snapshot:
    failed = names.count(storage)  # reconciles the side tables: the sizes count from their tally
    return Snapshot(now, triage.sizes(storage, now, reconciled=True), failed, stats.StatsRepository(storage).all(),
                    WorkersRepository(storage).all())


def families(snapshot: Snapshot, masker: Masker = NO_SECRETS) -> Iterator[Metric]:
    """The metric families for one snapshot (label values through :func:`label`)."""

    def label(value: object) -> str:
        return printable(masker.bounded(text_of(value), MAX_LABEL * 2), MAX_LABEL)

    jobs = GaugeMetricFamily("ictq_queue_jobs", "Jobs in the jobs table by queue and state.",
                             labels=["queue", "state"])
    oldest = GaugeMetricFamily("ictq_queue_oldest_pending_age_seconds",
                               "Seconds the oldest pending (available, unreserved) job has waited.", labels=["queue"])
    recent = GaugeMetricFamily("ictq_failed_jobs_last_hour", "Jobs that failed in the last hour.", labels=["queue"])
    for row in snapshot.sizes:
        for state in ops.STATES:
            jobs.add_metric([label(row.queue), state], getattr(row, state))
        oldest.add_metric([label(row.queue)], row.oldest_pending_age or 0)
        recent.add_metric([label(row.queue)], row.failed_last_hour)
    failed = GaugeMetricFamily("ictq_failed_jobs", "Rows in failed_jobs by queue and job name.",
                               labels=["queue", "job"])
    counted: Counter[tuple[str, str]] = Counter()
    for (queue, job), count in snapshot.failed.items():
        counted[(label(queue), label(job))] += count
    for labels, count in sorted(counted.items()):
        failed.add_metric(list(labels), count)
    yield from (jobs, oldest, failed, recent)
    yield from _job_families(snapshot.stats, label)
    alive = sum(1 for w in snapshot.workers if w.alive(snapshot.now))
    yield GaugeMetricFamily("ictq_workers_alive", "Workers beating, on every host.", value=alive)
    yield GaugeMetricFamily("ictq_workers_dead", "Workers whose beats stopped (kept for a day).",
                            value=len(snapshot.workers) - alive)


def _job_families(rows: Sequence[stats.StatsRow], label: Callable[[object], str]) -> Iterator[Metric]:
    counts: dict[tuple[str, str], int] = {}
    sums: dict[tuple[str, str], float] = {}
    buckets: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        key = (label(row.job), label(row.outcome))
        counts[key] = counts.get(key, 0) + row.count
        sums[key] = sums.get(key, 0.0) + row.duration_sum
        merged = buckets.setdefault(key, [0] * len(stats.DURATION_BUCKETS))
        for index, value in enumerate(row.buckets[: len(merged)]):
            merged[index] += value
    processed = CounterMetricFamily("ictq_jobs_processed", "Job runs by job name and outcome (all workers).",
                                    labels=["job", "outcome"])
    duration = HistogramMetricFamily("ictq_job_duration_seconds", "Job run time by job name and outcome.",
                                     labels=["job", "outcome"])
    for key in sorted(counts):
        processed.add_metric(list(key), counts[key])
        cumulative, total = [], 0
        for bound, value in zip(stats.DURATION_BUCKETS, buckets[key], strict=True):
            total += value
            cumulative.append((_bound(bound), total))
        duration.add_metric(list(key), [*cumulative, ("+Inf", counts[key])], sums[key])
    yield processed
    yield duration


def _bound(value: float) -> str:
    return repr(float(value))


class QueueCollector(Collector):
    """Reads the database at every scrape; one scrape at a time (a storage is one connection)."""

    def __init__(self, open_storage: Callable[[], Storage], logger: logging.Logger | None = None,
                 clock: Callable[[], float] = time.time, masker: Masker = NO_SECRETS) -> None:
        self._open = open_storage
        self._masker = masker
        self._storage: Storage | None = None
        self._names = FailedNames()
        self._lock = threading.Lock()
        self._clock = clock
        self._logger = logger or logging.getLogger(logs.LOGGER_NAME)
        self._failing = False
        self.last_error: str | None = None

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            started = time.monotonic()
            snapshot = self._read()
            yield GaugeMetricFamily("ictq_up", "1 when the database answered this scrape.",
                                    value=0 if snapshot is None else 1)
            if snapshot is not None:
                yield from families(snapshot, self._masker)
            yield GaugeMetricFamily("ictq_scrape_duration_seconds", "Seconds this scrape took.",
                                    value=time.monotonic() - started)

    def _read(self) -> Snapshot | None:
        try:
            if self._storage is None:
                self._storage = self._open()
            snapshot = read(self._storage, self._names, int(self._clock()))
        except IctqError as exc:
            if self._storage is not None:
                self._storage.close()
            self.last_error = str(exc)
            if not self._failing:
                self._failing = True
                logs.event(self._logger, logging.ERROR, "metrics-database-error", error=str(exc))
            return None
        self.last_error = None
        if self._failing:
            self._failing = False
            logs.event(self._logger, logging.INFO, "metrics-database-restored")
        return snapshot

    def close(self) -> None:
        with self._lock:
            if self._storage is not None:
                self._storage.close()


def registry_for(collector: QueueCollector) -> CollectorRegistry:
    """A registry with only the queue's metrics (no metrics about this exporter process)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``PORT``; ``[::1]:PORT`` for IPv6. Raises ValueError."""
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = "", value
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:9108)")
    return host, int(port)


def describe_listen(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/metrics" if ":" in host else f"http://{host}:{port}/metrics"


__all__ = ["FailedNames", "QueueCollector", "Snapshot", "families", "parse_listen",
           "registry_for"]

