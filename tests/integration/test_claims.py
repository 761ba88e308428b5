"""Batch claims, batched acknowledgements and wake-ups, on each database."""

from __future__ import annotations

import collections
import logging
import re
import signal
import threading
import time
from typing import Any

import pytest

from ictq.db import Storage
from ictq.db.workers import WorkersRepository
from ictq.worker.claims import Claims
from ictq.worker.housekeeping import Activity, Housekeeping, Identity, Intervals
from ictq.worker.lease import LeaseKeeper
from ictq.worker.log import WorkerLog
from ictq.worker.stats import JobStats
from tests.support.app import App, count_rows, rows, wait_for


def lease_keeper(storage: Storage) -> LeaseKeeper[Any]:
    """A lease keeper without its background thread (these tests run no job long enough to need it)."""
    return LeaseKeeper(storage, 30, time.time, logging.getLogger("test"), on_deadline=lambda running: None)


class Pace:
    """A stand-in for ``time.monotonic``: the jobs' pace as the test says, not the machine's."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_batch_is_claimed_in_one_go_and_unstarted_jobs_are_handed_back(app: App) -> None:
    app.client().dispatch_many("test.record", [{"n": i} for i in range(10)])
    storage = app.storage()
    lease = lease_keeper(app.storage())
    claims = Claims(storage, lease, ("default",), 90, time.time, max_batch=8)
    claims.batch = 8
    first = claims.next(frozenset())
    assert first is not None and claims.buffered == 7
    assert count_rows(storage, "jobs", "reserved_at IS NOT NULL") == 8
    assert len(lease.held()) == 8  # the lease keeper holds the whole batch
    claims.done(first)
    assert claims.hand_back() == 7
    assert lease.held() == [first]  # finished, not deleted yet
    claims.flush()
    assert lease.held() == []
    assert rows(storage, "SELECT COUNT(*), MAX(attempts), MIN(attempts) FROM jobs WHERE reserved_at IS NULL") == [
        (9, 0, 0)]
    assert claims.batch == 8  # a full batch keeps the size (capped at max_batch)


def claim_sizes(app: App, jobs: int, seconds_per_job: float) -> list[int]:
    """Claim and 'run' ``jobs`` jobs taking ``seconds_per_job`` each (on the pace clock, so the
    sizes do not depend on how fast the machine is); the size of every claim."""
    app.client().dispatch_many("test.record", [{"n": i} for i in range(jobs)])
    pace = Pace()
    claims = Claims(app.storage(), lease_keeper(app.storage()), ("default",), 90, time.time, monotonic=pace)
    sizes = []
    while True:
        claiming = claims.buffered == 0
        job = claims.next(frozenset())
        if job is None:
            break
        if claiming:
            sizes.append(claims.buffered + 1)
        pace.now += seconds_per_job
        claims.done(job)
    claims.flush()
    assert sum(sizes) == jobs and count_rows(app.storage(), "jobs") == 0
    return sizes


def test_batches_grow_for_quick_jobs_and_stay_small_for_slow_ones(app: App) -> None:
    quick = claim_sizes(app, 300, 0)
    assert quick == [1, 2, 4, 8, 16, 32, 64, 128, 45]
    # 25 ms a job: a batch holds about CLAIM_WINDOW (50 ms) of work, never the doubling's 64.
    slow = claim_sizes(app, 30, 0.025)
    assert slow[:2] == [1, 2] and max(slow) <= 2


def test_a_stopping_worker_hands_back_its_unstarted_claims_at_once(app: App) -> None:
    app.write_env(DB_QUEUE_RETRY_AFTER="600")
    # Quick jobs, so batches grow (1, 2, 4, 8, 16 on a quick machine; the sizes follow the pace);
    # job 20 takes a second, and the rest of its batch waits in the worker while it runs.
    app.client().dispatch_many("test.slow", [{"n": i, "seconds": 1.0 if i == 20 else 0.001} for i in range(40)])
    proc = app.worker("--sleep", "0.1")
    wait_for(lambda: "20" in app.executions("started"), what="the slow job to start")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    done = len(app.executions("record"))
    storage = app.storage()
    assert count_rows(storage, "jobs", "reserved_at IS NOT NULL") == 0
    assert count_rows(storage, "jobs") == 40 - done
    # Every job not run is back in the queue at once, its attempt taken back (the batch size
    # follows the pace, so how many were handed back is not fixed; only that none is missing).
    assert rows(storage, "SELECT COUNT(*) FROM jobs WHERE attempts <> 0") == [(0,)]
    handed = [int(n) for n in re.findall(r"handed-back worker=default jobs=(\d+)", app.log_text())]
    assert len(handed) <= 1 and sum(handed) <= 40 - done
    rest = app.worker("--sleep", "0.1", "--stop-when-empty")  # nothing waits for retry_after
    assert rest.wait(timeout=60) == 0
    assert sorted(int(n) for n in app.executions("record")) == list(range(40))


def test_batched_acks_survive_a_crash(app: App) -> None:
    app.client().dispatch_many("test.slow", [{"n": i, "seconds": 0.01} for i in range(300)])
    app.write_env(DB_QUEUE_RETRY_AFTER="3")
    victim = app.worker("--sleep", "0.1", "--tries", "3")
    wait_for(lambda: len(app.executions("record")) >= 100, what="a third of the jobs")
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    finisher = app.worker("--sleep", "0.1", "--tries", "3")
    wait_for(lambda: count_rows(app.storage(), "jobs") == 0, timeout=90, what="every job acknowledged")
    finisher.send_signal(signal.SIGTERM)
    assert finisher.wait(timeout=30) == 0
    runs = collections.Counter(int(n) for n in app.executions("record"))
    assert sorted(runs) == list(range(300))  # none lost
    duplicates = sum(count - 1 for count in runs.values())
    assert duplicates <= 2 * 64 + 1  # at most what was claimed or unacknowledged at the kill
    assert count_rows(app.storage(), "failed_jobs") == 0


@pytest.mark.parametrize("dialect", ["pgsql"])
def test_notify_wakes_an_idle_worker_and_polling_covers_a_lost_notify(app: App) -> None:
    proc = app.worker("--sleep", "30")
    wait_for(lambda: "worker-started" in app.log_text(), what="the worker")
    time.sleep(0.5)
    app.client().dispatch("test.record", {"n": 1})
    wait_for(lambda: app.executions() == ["1"], timeout=10, what="the notified worker")  # far below --sleep 30
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0

    storage = app.storage()
    storage.connection.cursor().execute('DROP TRIGGER "jobs_ictq_notify" ON "jobs"')  # notifications now lost
    proc = app.worker("--sleep", "1")
    wait_for(lambda: "worker-started" in app.log_text().split("reason=signal")[-1], what="the second worker")
    time.sleep(0.5)
    app.client().dispatch("test.record", {"n": 2})
    wait_for(lambda: app.executions() == ["1", "2"], timeout=15, what="the polling fallback")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0


@pytest.mark.parametrize("dialect", ["sqlite", "mysql"])
def test_an_idle_worker_probes_often_without_a_long_sleep(app: App) -> None:
    proc = app.worker("--sleep", "30")
    wait_for(lambda: "worker-started" in app.log_text(), what="the worker")
    time.sleep(1.0)  # well into the idle backoff
    app.client().dispatch("test.record", {"n": 1})
    wait_for(lambda: app.executions() == ["1"], timeout=10, what="the probing worker")  # far below --sleep 30
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0


def test_a_heartbeat_never_writes_an_older_held_list_over_a_claims_batch(app: App) -> None:
    """The heartbeat (background thread, its own connection) reads the held jobs, then writes
    them; a claim on the loop's thread records its batch in the same row. A beat whose snapshot
    is older than the claim must not be written after it: the reaper would not see the batch of
    a worker killed before its next beat, and the batch would wait for retry_after. Here the
    claim is started after the beat's snapshot; whichever way the threads go, the row must end
    up listing the whole batch."""
    app.client().dispatch_many("test.record", [{"n": i} for i in range(10)])
    lease = lease_keeper(app.storage())
    identity = Identity("racer", ["default"], int(time.time()))
    claims = Claims(app.storage(), lease, ("default",), 90, time.time, max_batch=8, holder=identity.id)
    claims.batch = 8
    claimed = threading.Event()

    def claim() -> None:
        claims.next(frozenset())
        claimed.set()

    racer = threading.Thread(target=claim)

    def activity() -> Activity:
        snapshot = Activity(None, None, 0, 0, lease.held())  # empty: nothing claimed yet
        racer.start()
        claimed.wait(1.0)  # without the ordering the claim commits here, before the beat's write
        return snapshot

    keeping = Housekeeping(app.storage(), app.settings, identity, lambda: Activity(None, None, 0, 0, []), JobStats(),
                           WorkerLog(logging.getLogger("ictq.test"), "racer"), time.time, Intervals(beat_every=60),
                           recording=lease.recording)
    keeping.beat()  # registered
    keeping.activity = activity
    keeping.beat()
    racer.join(timeout=60)
    assert claimed.is_set()
    batch = {job.id for job in lease.held()}
    assert len(batch) == 8
    (record,) = [r for r in WorkersRepository(app.storage()).all() if r.id == identity.id]
    assert batch <= {job.id for job in record.held_jobs()}
