"""20,000 jobs, 4 workers, ``kill -9`` of a random worker every few seconds (restarted at once,
as Supervisor does): every job done, none lost, at most one duplicate per kill: the job in flight.
With one try (Laravel's default), only a job running at a kill may fail ("attempted too many
times"); the rest of the killed worker's batch runs."""

from __future__ import annotations

import os
import random
import time

import pytest

from tests.chaos.support import Supervisor, duplicates, leaks, marks, report, unexplained_duplicates
from tests.support.app import App, count_rows, failed_numbers, rows, wait_for

pytestmark = pytest.mark.slow
JOBS = int(os.environ.get("ICTQ_CHAOS_JOBS", "20000"))
WORKERS = 4
KILL_EVERY = (1.0, 3.0)  # seconds between kills, at random
JOB_SECONDS = 0.003  # each job takes a little time, so the drain lasts long enough to kill often
KILL_UNTIL = 0.8  # share of the jobs done when the killing stops
RETRY_AFTER = 90


@pytest.mark.parametrize(("job", "jobs"), [("test.mark", JOBS), ("test.mark_once", JOBS // 2)],
                         ids=["unlimited-tries", "one-try"])
def test_kill_9_loses_nothing(chaos_app: App, job: str, jobs: int) -> None:
    app = chaos_app
    app.write_env(DB_QUEUE_RETRY_AFTER=str(RETRY_AFTER))
    seed = int(os.environ.get("ICTQ_CHAOS_SEED", str(time.time_ns() % 1_000_000)))
    rng = random.Random(seed)
    client = app.client()
    for start in range(0, jobs, 5000):
        batch = range(start, min(jobs, start + 5000))
        client.dispatch_many(job, [{"n": n, "seconds": JOB_SECONDS} for n in batch])
    client.close()
    supervisor = Supervisor(app, WORKERS, ("--sleep", "0.2"))
    began = time.monotonic()
    supervisor.start()
    kills = 0
    try:
        # Kill until most jobs are done; then let the workers finish in peace.
        while len({n for n, _ in marks(app)}) < jobs * KILL_UNTIL:
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
    storage = app.storage()
    failed = failed_numbers(storage)
    report("kill-9", dialect=app.dialect, job=job, seed=seed, jobs=jobs, workers=WORKERS, kills=kills,
           failed=len(failed), restarts=supervisor.starts - WORKERS, runs=len(executions),
           duplicates=sum(dups.values()), duplicated_jobs=len(dups), seconds=f"{elapsed:.1f}",
           jobs_per_s=f"{jobs / elapsed:.0f}", recovery_after_last_kill=f"{recovery:.1f}s")
    assert kills >= 3, "the drain was too quick to kill anything"
    assert done | set(failed) == set(range(jobs)), f"lost: {sorted(set(range(jobs)) - done - set(failed))[:20]}"
    assert count_rows(storage, "jobs") == 0
    if job == "test.mark":
        assert failed == []
    else:  # at most the job each killed worker was running, never the rest of its batch
        assert len(failed) <= kills, (len(failed), kills)
        reasons = rows(storage, "SELECT exception FROM failed_jobs")
        assert all("attempted too many times" in reason for (reason,) in reasons)
    # A killed worker's finished, unacknowledged jobs are deleted by the reaper (its crash
    # marker lists them): at most the job in flight at a kill runs again.
    assert sum(dups.values()) <= kills
    assert unexplained_duplicates(executions, supervisor.killed_pids, 1) == []
    assert supervisor.unexpected_exits() == [], supervisor.unexpected_exits()
    assert set(supervisor.final_codes) == {0}
    wait_for(lambda: "ictq_workers_alive 0.0" in app.ictq("metrics", "--once").stdout, timeout=10,
             what="no live workers after the stop")
    assert leaks(app, [supervisor.output()]) == []
    # A killed worker is seen dead at the next heartbeat of another and every job it had claimed
    # goes back at once: the drain must not wait for retry_after.
    assert recovery < RETRY_AFTER / 3, (
        f"the last {100 - KILL_UNTIL * 100:.0f}% of the jobs took {recovery:.0f}s after the last kill: jobs claimed "
        f"by killed workers waited for retry_after ({RETRY_AFTER}s) instead of going back when they were reaped")
