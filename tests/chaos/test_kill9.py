"""20,000 jobs, 4 workers, ``kill -9`` of a random worker every few seconds (restarted at once,
as Supervisor does): every job done, none lost, a duplicate only for a job in flight at a kill."""

from __future__ import annotations

import os
import random
import time

import pytest

from ictq.claims import MAX_BATCH
from tests.chaos.support import Supervisor, duplicates, leaks, marks, report, unexplained_duplicates
from tests.support.app import App, count_rows, wait_for

pytestmark = pytest.mark.slow
JOBS = int(os.environ.get("ICTQ_CHAOS_JOBS", "20000"))
WORKERS = 4
KILL_EVERY = (1.0, 3.0)  # seconds between kills, at random
JOB_SECONDS = 0.003  # each job takes a little time, so the drain lasts long enough to kill often
KILL_UNTIL = 0.8  # share of the jobs done when the killing stops
RETRY_AFTER = 90


def test_kill_9_loses_nothing(chaos_app: App) -> None:
    app = chaos_app
    app.write_env(DB_QUEUE_RETRY_AFTER=str(RETRY_AFTER))
    seed = int(os.environ.get("ICTQ_CHAOS_SEED", str(time.time_ns() % 1_000_000)))
    rng = random.Random(seed)
    client = app.client()
    for start in range(0, JOBS, 5000):
        batch = range(start, min(JOBS, start + 5000))
        client.dispatch_many("test.mark", [{"n": n, "seconds": JOB_SECONDS} for n in batch])
    client.close()
    supervisor = Supervisor(app, WORKERS, ("--sleep", "0.2", "--tries", "0"))
    began = time.monotonic()
    supervisor.start()
    kills = 0
    try:
        # Kill until most jobs are done; then let the workers finish in peace.
        while len({n for n, _ in marks(app)}) < JOBS * KILL_UNTIL:
            assert time.monotonic() - began < 600, f"only {len(marks(app))} runs after 600 s"
            time.sleep(rng.uniform(*KILL_EVERY))
            supervisor.kill_one(rng)
            kills += 1
        last_kill = time.monotonic()
        storage = app.storage()
        wait_for(lambda: count_rows(storage, "jobs") == 0, timeout=300, interval=0.2, what="the drain")
        recovery = time.monotonic() - last_kill
        storage.close()
    finally:
        supervisor.stop()
    elapsed = time.monotonic() - began
    executions = marks(app)
    done = {n for n, _ in executions}
    dups = duplicates(executions)
    report("kill-9", dialect=app.dialect, seed=seed, jobs=JOBS, workers=WORKERS, kills=kills,
           restarts=supervisor.starts - WORKERS, runs=len(executions), duplicates=sum(dups.values()),
           duplicated_jobs=len(dups), seconds=f"{elapsed:.1f}", jobs_per_s=f"{JOBS / elapsed:.0f}",
           recovery_after_last_kill=f"{recovery:.1f}s")
    assert kills >= 3, "the drain was too quick to kill anything"
    assert done == set(range(JOBS)), f"lost: {sorted(set(range(JOBS)) - done)[:20]}"
    storage = app.storage()
    assert count_rows(storage, "failed_jobs") == 0 and count_rows(storage, "jobs") == 0
    # a killed worker had at most one claim batch run but not yet acknowledged
    assert sum(dups.values()) <= kills * MAX_BATCH
    assert unexplained_duplicates(executions, supervisor.killed_pids, MAX_BATCH) == []
    assert supervisor.unexpected_exits() == [], supervisor.unexpected_exits()
    assert set(supervisor.final_codes) == {0}
    wait_for(lambda: "ictq_workers_alive 0.0" in app.ictq("metrics", "--once").stdout, timeout=10,
             what="no live workers after the stop")
    assert leaks(app, [supervisor.output()]) == []
    # A killed worker is seen dead at the next heartbeat (every 5 s) and every job it had claimed
    # goes back at once: the drain must not wait for retry_after.
    assert recovery < RETRY_AFTER / 3, (
        f"the last {100 - KILL_UNTIL * 100:.0f}% of the jobs took {recovery:.0f}s after the last kill: jobs claimed "
        f"by killed workers waited for retry_after ({RETRY_AFTER}s) instead of going back when they were reaped")
