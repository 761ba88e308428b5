"""The per-minute history on every database: written by real workers' heartbeats, added to by
several workers, kept through a failed write, pruned, snapshotted once per minute; read back
by ``ictq.history``, ``ictq.capacity`` and ``ictq capacity``.

The workers beat every :data:`BEAT` seconds here; the housekeeping driven in-process gets an
injected clock. No assertion depends on how fast the machine is."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

import tests.support.jobs  # noqa: F401 - registers the test jobs in this process
from ictq import capacity, history, ops
from ictq.db import Storage, open_storage
from ictq.db.history import WAIT_BUCKETS, HistoryRepository, HistoryRow, QueueSnapshot, Sums
from ictq.db.stats import DURATION_BUCKETS
from ictq.db.workers import WorkerRecord, WorkersRepository
from ictq.errors import DatabaseUnavailable
from ictq.worker import Worker, WorkerOptions
from ictq.worker.history import JobHistory
from ictq.worker.housekeeping import Activity, Housekeeping, Identity, Intervals
from ictq.worker.log import WorkerLog
from ictq.worker.stats import JobStats
from tests.support.app import App, rows

BEAT = "0.2"
T = 1_800_000_000  # a minute's start (T % 60 == 0)


def sums_by_job(storage: Storage) -> dict[tuple[str, str], tuple[int, int, int, int, int]]:
    """Per (queue, job): processed, failed, released, runtime bucket counts, wait bucket counts."""
    runtime = " + ".join(f"SUM(r{i})" for i in range(len(DURATION_BUCKETS)))
    wait = " + ".join(f"SUM(w{i})" for i in range(len(WAIT_BUCKETS)))
    found = rows(storage, f"SELECT queue, job, SUM(processed), SUM(failed), SUM(released), {runtime}, {wait} "
                          "FROM ictq_history GROUP BY queue, job")
    return {(str(q), str(j)): (int(p), int(f), int(r), int(rb), int(wb)) for q, j, p, f, r, rb, wb in found}


def execute(storage: Storage, sql: str) -> None:
    with storage._translated():
        storage.connection.cursor().execute(sql)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def housekeeping(app: App) -> Iterator[Callable[..., Housekeeping]]:
    """Housekeepings driven in-process (each its own connection), on an injected clock."""
    made: list[Housekeeping] = []

    def make(clock: Callable[[], float], started_at: int = T, **settings: Any) -> Housekeeping:
        storage = open_storage(app.settings, worker=True)
        keeping = Housekeeping(storage, replace(app.settings, **settings), Identity("test", ["default"], started_at),
                               lambda: Activity(None, None, 0, 0, []), JobStats(),
                               WorkerLog(logging.getLogger("ictq.test"), "test"), clock,
                               Intervals(beat_every=0.05, prune_every=0.05), history=JobHistory())
        made.append(keeping)
        return keeping

    yield make
    for keeping in made:
        keeping.storage.close()


def test_workers_write_every_outcome_of_every_job(app: App) -> None:
    client = app.client()
    client.dispatch_many("test.record", [{"n": i} for i in range(12)])
    client.dispatch_many("test.boom", [{"message": f"bad {i}"} for i in range(3)])
    client.dispatch_many("test.release", [{"n": i, "times": 1} for i in range(4)], queue="other")
    worker = app.worker("--sleep", "0.1", "--queue", "default,other", "--stop-when-empty", ICTQ_BEAT_EVERY=BEAT)
    assert worker.wait(timeout=120) == 0
    storage = app.storage()
    found = sums_by_job(storage)
    assert found == {("default", "test.record"): (12, 0, 0, 12, 12), ("default", "test.boom"): (0, 3, 0, 3, 3),
                     ("other", "test.release"): (4, 0, 4, 8, 8)}
    now = max(int(m) for (m,) in rows(storage, "SELECT minute FROM ictq_history")) + 59
    rates = history.recent(storage, now, minutes=60)  # 60 minutes and the current one, 59 s of it
    assert rates["default"].failures_per_min == pytest.approx(3 / (60 + 59 / 60))
    assert rates["default"].jobs_per_min == pytest.approx(15 / (60 + 59 / 60))
    assert rates["other"].run_p50 is not None and rates["other"].mean_runtime is not None
    points = history.series(storage, now, "hour", queue="other")
    assert len(points) == 60 and sum(p.processed for p in points) == 4 and sum(p.released for p in points) == 4
    assert history.names(storage, now - 3600) == (["default", "other"], ["test.boom", "test.record", "test.release"])


def test_the_wait_runs_from_available_at_to_the_start_on_the_workers_clock(
        app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ICTQ_TEST_OUT", str(app.out))
    app.client(clock=lambda: T).dispatch("test.record", {"n": 1})  # available at T
    clock = Clock(T + 90)
    worker = Worker(app.settings, WorkerOptions(once=True, sleep=0, memory=0), clock=clock)
    assert worker.run() == 0
    assert app.executions() == ["1"]
    storage = app.storage()
    (minute, processed, wait_sum), = rows(storage, "SELECT minute, processed, wait_sum FROM ictq_history")
    assert (int(minute), int(processed)) == (T + 60, 1)
    assert 0 < float(wait_sum) <= 90  # 90 s on the clock, less the run
    assert sum(HistoryRepository(storage).totals(T, T + 120)["default"].wait_buckets) == 1
    assert app.settings.history_days == 7


def test_two_workers_add_to_the_same_minute_rows(app: App) -> None:
    app.client().dispatch_many("test.record", [{"n": i} for i in range(40)])
    workers = [app.worker("--sleep", "0.1", "--stop-when-empty", "--name", name, ICTQ_BEAT_EVERY=BEAT)
               for name in ("one", "two")]
    assert [w.wait(timeout=120) for w in workers] == [0, 0]
    assert sums_by_job(app.storage()) == {("default", "test.record"): (40, 0, 0, 40, 40)}
    # Many connections adding to one row at once lose nothing.
    one = Sums(processed=1, failed=2, released=3, runtime_sum=0.5, wait_sum=1.5,
               runtime_buckets=(1,) + (0,) * 13, wait_buckets=(0, 1) + (0,) * 10)

    def add(times: int) -> None:
        storage = open_storage(app.settings, worker=True)
        try:
            for _ in range(times):
                while True:  # as a worker's beat: a lost deadlock or a busy database, added again next time
                    try:
                        HistoryRepository(storage).add([HistoryRow(T, "q", "j", one), HistoryRow(T, "q", "k", one)])
                        break
                    except DatabaseUnavailable:
                        continue
        finally:
            storage.close()

    threads = [threading.Thread(target=add, args=(25,)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    totals = HistoryRepository(app.storage()).totals(T, T + 60)
    assert totals["q"].processed == 150 and totals["q"].failed == 300 and totals["q"].released == 450
    assert totals["q"].runtime_buckets[0] == 150 and totals["q"].wait_buckets[1] == 150
    assert totals["q"].wait_sum == pytest.approx(225.0)


def test_a_failed_history_write_keeps_the_counts_for_the_next_beat(app: App, housekeeping: Any) -> None:
    clock = Clock(T + 5)
    keeping = housekeeping(clock)
    keeping.history.record("default", "test.record", "done", 0.01, T + 1.0, T)
    storage = app.storage()
    execute(storage, "ALTER TABLE ictq_history RENAME TO ictq_history_away")
    keeping.beat()  # the heartbeat goes on; the history stays in memory
    assert len(keeping.history) == 1
    assert rows(storage, "SELECT COUNT(*) FROM ictq_workers") == [(1,)]
    execute(storage, "ALTER TABLE ictq_history_away RENAME TO ictq_history")
    keeping.history.record("default", "test.record", "failed", 0.01, T + 2.0, T)
    clock.now = T + 10
    keeping.beat()
    assert len(keeping.history) == 0
    assert sums_by_job(storage) == {("default", "test.record"): (1, 1, 0, 2, 2)}
    keeping.history.record("default", "test.record", "done", 0.01, T + 3.0, T)
    keeping.leave()  # the last counts go with the worker's exit
    assert sums_by_job(storage) == {("default", "test.record"): (2, 1, 0, 3, 3)}


def test_history_older_than_ictq_history_days_is_pruned(app: App, housekeeping: Any) -> None:
    storage = app.storage()
    day = 86400
    repository = HistoryRepository(storage)
    old, recent = T - 8 * day, T - 2 * day
    repository.add([HistoryRow(old, "default", "a", Sums(processed=1)),
                    HistoryRow(recent, "default", "a", Sums(processed=1))])
    repository.mark(old)
    repository.put_sizes(old, [QueueSnapshot("default", 1, 0, 0)])
    housekeeping(Clock(T)).beat()  # ICTQ_HISTORY_DAYS defaults to 7
    assert rows(storage, "SELECT minute FROM ictq_history") == [(recent,)]
    assert rows(storage, f"SELECT COUNT(*) FROM ictq_history_sizes WHERE minute < {T - 7 * day}") == [(0,)]
    assert rows(storage, f"SELECT COUNT(*) FROM ictq_history_marks WHERE minute < {T - 7 * day}") == [(0,)]
    app.write_env(ICTQ_HISTORY_DAYS="1")
    assert app.settings.history_days == 1
    housekeeping(Clock(T), started_at=T + 1, history_days=app.settings.history_days).beat()
    assert rows(storage, "SELECT COUNT(*) FROM ictq_history") == [(0,)]


def test_the_queue_sizes_are_snapshotted_once_per_minute(app: App, housekeeping: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[int] = []
    real_sizes = ops.sizes

    def counted(storage: Storage, now: int, *args: Any, **kwargs: Any) -> list[ops.QueueSize]:
        reads.append(now)
        return real_sizes(storage, now, *args, **kwargs)

    monkeypatch.setattr(ops, "sizes", counted)
    client = app.client(clock=lambda: T)
    client.dispatch_many("test.record", [{"n": i} for i in range(3)])
    client.dispatch("test.record", {"n": 9}, delay=600)
    clock = Clock(T + 5)
    first, second = housekeeping(clock), housekeeping(clock, started_at=T + 1)
    for keeping in (first, second, first, second):
        keeping.beat()
    storage = app.storage()
    assert reads == [T + 5]  # one read for the fleet
    assert rows(storage, "SELECT minute, queue FROM ictq_history_sizes") == [(T, "default")]
    assert HistoryRepository(storage).sizes_at(T) == {"default": QueueSnapshot("default", 3, 1, 0)}
    client.dispatch("test.record", {"n": 4})
    clock.now = T + 65
    second.beat()
    first.beat()
    assert reads == [T + 5, T + 65]
    assert rows(storage, f"SELECT pending FROM ictq_history_sizes WHERE minute = {T + 60}") == [(4,)]
    assert rows(storage, "SELECT minute FROM ictq_history_marks ORDER BY minute") == [(T,), (T + 60,)]


def seed(storage: Storage, now: int, minutes: int, per_minute: int, runtime: float) -> None:
    """``minutes`` full minutes before ``now``'s of ``per_minute`` jobs each, every wait in (1, 2] s."""
    wait = tuple(per_minute if bound == 2.0 else 0 for bound in WAIT_BUCKETS)
    runtime_buckets = tuple(per_minute if i == DURATION_BUCKETS.index(2.5) else 0 for i in range(len(DURATION_BUCKETS)))
    start = now // 60 * 60
    HistoryRepository(storage).add([
        HistoryRow(start - 60 * k, "default", "test.record",
                   Sums(per_minute, 0, 0, per_minute * runtime, per_minute * 1.5, runtime_buckets, wait))
        for k in range(1, minutes + 1)])


def live_worker(storage: Storage, now: int, queues: str) -> None:
    WorkersRepository(storage).beat(WorkerRecord("elsewhere:1:1:x", "w", "elsewhere", 1, queues, "alive", now, now,
                                                 None, None, None, 0, 0), [])


def test_advice_from_the_history_and_the_backlog(app: App) -> None:
    storage = app.storage()
    now = T + 30
    since = (now - 900) // 60 * 60  # the window's first minute; 930 s to now
    seed(storage, now, 15, 62, 2.0)  # 930 jobs of 2 s in the window
    HistoryRepository(storage).add([HistoryRow(since - 60, "default", "test.record", Sums(processed=10_000))])
    repository = HistoryRepository(storage)
    for minute, pending in ((since, 10), (since + 600, 103)):  # the backlog grew by 93
        repository.mark(minute)
        repository.put_sizes(minute, [QueueSnapshot("default", pending, 0, 0)])
    live_worker(storage, now, "default,other")
    (advice,) = capacity.advise(storage, now, 10.0)
    assert advice.queue == "default" and advice.backlog_growth == 93
    assert advice.arrivals_per_min == pytest.approx((930 + 93) / 930 * 60)
    assert advice.mean_runtime == pytest.approx(2.0) and advice.load == pytest.approx(2.2)
    assert advice.workers_now == 1 and advice.workers_needed == capacity.workers_needed(2.2, 2.0, 10.0)
    assert advice.wait_p95 == pytest.approx(1.95)
    assert capacity.advise(storage, now, 1.0)[0].workers_needed >= advice.workers_needed  # type: ignore[operator]
    (other,) = capacity.advise(storage, now, 10.0, queues=["other"])
    assert other.workers_now == 1 and other.workers_needed is None and other.arrivals_per_min == 0


def test_capacity_command(app: App) -> None:
    empty = app.ictq("capacity")
    assert empty.returncode == 0 and empty.stdout.startswith("no history in the last 15m yet"), empty.stderr
    storage = app.storage()
    now = int(time.time())
    seed(storage, now, 5, 30, 2.0)
    live_worker(storage, now, "default")
    result = app.ictq("capacity", "--json", "--wait", "30s", "--window", "1h")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["target_wait"] == 30 and data["window"] == 3600
    (row,) = data["queues"]
    assert row["queue"] == "default" and row["mean_runtime"] == 2.0 and row["workers_now"] == 1
    assert row["workers_needed"] == capacity.workers_needed(row["load"], 2.0, 30.0)
    assert row["wait_p95"] == pytest.approx(1.95) and row["hint"].startswith("numprocs=")
    text = app.ictq("capacity", "--queue", "default")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0] == "capacity for a p95 wait <= 10s, measured over the last 15m:"
    assert lines[2].split() == ["queue", "arrivals/min", "mean", "runtime", "load", "workers", "now", "workers",
                                "needed", "p95", "wait", "hint"]
    assert lines[3].startswith("default ") and "numprocs=" in lines[3]
    for bad in (["--wait", "soon"], ["--window", "10s"], ["--wait", "-1s"]):
        refused = app.ictq("capacity", *bad)
        assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        assert refused.stderr.startswith("ictq: error: ") and "Traceback" not in refused.stderr
