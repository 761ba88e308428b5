"""Metric families from a snapshot: sums over workers, cumulative histogram buckets, names."""

from __future__ import annotations

from collections import Counter

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector, CollectorRegistry

from ictq import metrics, payload
from ictq.db.stats import DURATION_BUCKETS, StatsRow
from ictq.db.workers import WorkerRecord
from ictq.ops import QueueSize


def buckets(**at: int) -> tuple[int, ...]:
    values = [0] * len(DURATION_BUCKETS)
    for index, count in at.items():
        values[int(index[1:])] = count
    return tuple(values)


class _Fixed(Collector):
    def __init__(self, snapshot: metrics.Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self):  # type: ignore[no-untyped-def]
        return metrics.families(self.snapshot)


def scrape(snapshot: metrics.Snapshot) -> dict[str, list[tuple[dict[str, str], float]]]:
    registry = CollectorRegistry()
    registry.register(_Fixed(snapshot))
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def test_counters_and_histograms_are_summed_over_workers() -> None:
    now = 1_000_000
    snapshot = metrics.Snapshot(
        now,
        [QueueSize("default", 3, 1, 2, 40, 5, 1)],
        Counter({("default", "test.boom"): 4, ("default", "(unreadable payload)"): 1}),
        [StatsRow("w1", "test.record", "done", 3, 0.3, buckets(b0=2, b4=1)),
         StatsRow("w2", "test.record", "done", 2, 0.2, buckets(b0=1, b4=1)),
         StatsRow("w2", "test.record", "failed", 1, 400.0, buckets())],  # over the last bound: only in +Inf
        [WorkerRecord("h:1:1:x", "a", "h", 1, "default", "alive", now - 60, now - 1, None, None, None, 5, 0),
         WorkerRecord("h:2:1:x", "b", "h", 2, "default", "alive", now - 60, now - 100, None, None, None, 0, 0)],
    )
    samples = scrape(snapshot)
    jobs = {s[0]["state"]: s[1] for s in samples["ictq_queue_jobs"]}
    assert jobs == {"pending": 3, "delayed": 1, "reserved": 2}
    assert samples["ictq_queue_oldest_pending_age_seconds"] == [({"queue": "default"}, 40)]
    assert sorted((s[0]["job"], s[1]) for s in samples["ictq_failed_jobs"]) == [
        ("(unreadable payload)", 1), ("test.boom", 4)]
    processed = {(s[0]["job"], s[0]["outcome"]): s[1] for s in samples["ictq_jobs_processed_total"]}
    assert processed == {("test.record", "done"): 5, ("test.record", "failed"): 1}
    done = {s[0]["le"]: s[1] for s in samples["ictq_job_duration_seconds_bucket"]
            if s[0]["outcome"] == "done"}
    assert done["0.005"] == 3 and done["0.05"] == 3 and done["0.1"] == 5 and done["+Inf"] == 5
    failed = {s[0]["le"]: s[1] for s in samples["ictq_job_duration_seconds_bucket"] if s[0]["outcome"] == "failed"}
    assert failed["300.0"] == 0 and failed["+Inf"] == 1
    assert ({"job": "test.record", "outcome": "done"}, 0.5) in samples["ictq_job_duration_seconds_sum"]
    assert samples["ictq_workers_alive"] == [({}, 1)] and samples["ictq_workers_dead"] == [({}, 1)]


def test_job_name_from_the_head_of_a_payload() -> None:
    assert payload.name_in_head('{"uuid":"u","displayName":"App\\\\Jobs\\\\X","job":"y"') == "App\\Jobs\\X"
    assert payload.name_in_head(b'{"displayName":"test.record","data":{"x":"\xff"}}') == "test.record"
    assert payload.name_in_head("not json at all") == "(unreadable payload)"
    assert payload.name_in_head(None) == "(unreadable payload)"


def test_listen_addresses() -> None:
    assert metrics.parse_listen("127.0.0.1:9108") == ("127.0.0.1", 9108)
    assert metrics.parse_listen("9108") == ("127.0.0.1", 9108)
    assert metrics.parse_listen("[::1]:9108") == ("::1", 9108)
    for bad in ("host:", "host:x", "1:70000"):
        try:
            metrics.parse_listen(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was accepted")
