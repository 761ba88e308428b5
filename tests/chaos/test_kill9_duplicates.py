"""Duplicates after ``kill -9``: at most the job that was running runs again.

A worker deletes finished jobs in batches; its crash marker lists the finished jobs whose
delete is not committed yet, and the worker that reaps it on the same machine deletes them
instead of handing them back. So a kill re-runs at most the job in flight (whose run had not
been acknowledged), never the finished rest of the batch, and nothing is lost.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter

import pytest

from tests.chaos.support import Supervisor, duplicates, marks, report, unexplained_duplicates
from tests.support.app import App, count_rows, failed_numbers, wait_for

pytestmark = pytest.mark.slow
JOBS = int(os.environ.get("ICTQ_CHAOS_DUP_JOBS", "4000"))
WORKERS = 3
KILL_EVERY = (0.5, 1.5)
JOB_SECONDS = 0.002
KILL_UNTIL = 0.8


def test_a_killed_workers_finished_jobs_do_not_run_again(chaos_app: App) -> None:
    """Job 20 kills its worker in the middle of a batch: the jobs it finished before (not yet
    deleted) are deleted by the reaper, not run again; job 20 ran once and fails (one try)."""
    app = chaos_app
    app.write_env(DB_QUEUE_RETRY_AFTER="300")
    app.client().dispatch_many("test.killer", [{"n": i, "kill_at": 20} for i in range(40)])
    victim = app.worker("--sleep", "0.1", "--name", "victim")
    assert victim.wait(timeout=60) == -signal.SIGKILL
    rescuer = app.worker("--sleep", "0.1", "--name", "rescuer", ICTQ_BEAT_EVERY="0.2")
    storage = app.storage()
    wait_for(lambda: count_rows(storage, "jobs") == 0, timeout=60, what="every job run or failed")
    rescuer.send_signal(signal.SIGTERM)
    assert rescuer.wait(timeout=15) == 0
    assert "worker-reaped worker=rescuer dead=victim" in app.log_text()
    runs = Counter(app.executions("record"))
    assert set(runs) == {str(n) for n in range(40) if n != 20}
    assert set(runs.values()) == {1}, sorted(n for n, count in runs.items() if count > 1)
    assert app.executions("started").count("20") == 1
    assert failed_numbers(storage) == [20]


def test_kill_9_reruns_at_most_the_running_job(chaos_app: App) -> None:
    app = chaos_app
    app.write_env(DB_QUEUE_RETRY_AFTER="300")
    seed = int(os.environ.get("ICTQ_CHAOS_SEED", str(time.time_ns() % 1_000_000)))
    rng = random.Random(seed)
    client = app.client()
    client.dispatch_many("test.mark", [{"n": n, "seconds": JOB_SECONDS} for n in range(JOBS)])
    client.close()
    supervisor = Supervisor(app, WORKERS, ("--sleep", "0.2"))
    supervisor.start()
    kills = 0
    began = time.monotonic()
    try:
        while len({n for n, _ in marks(app)}) < JOBS * KILL_UNTIL:
            assert time.monotonic() - began < 600, f"only {len(marks(app))} runs after 600 s"
            time.sleep(rng.uniform(*KILL_EVERY))
            supervisor.kill_one(rng)
            kills += 1
        storage = app.storage()
        wait_for(lambda: count_rows(storage, "jobs") == 0, timeout=300, interval=0.2, what="the drain")
        storage.close()
    finally:
        supervisor.stop()
    executions = marks(app)
    dups = duplicates(executions)
    report("kill-9-duplicates", dialect=app.dialect, seed=seed, jobs=JOBS, workers=WORKERS, kills=kills,
           runs=len(executions), duplicates=sum(dups.values()), duplicated_jobs=len(dups))
    assert kills >= 2, "the drain was too quick to kill anything"
    assert {n for n, _ in executions} == set(range(JOBS))  # nothing lost
    assert failed_numbers(app.storage()) == []
    # At most one re-run per kill, and only of the killed worker's last run (the job in flight).
    assert sum(dups.values()) <= kills, (sum(dups.values()), kills)
    assert unexplained_duplicates(executions, supervisor.killed_pids, 1) == []
    assert supervisor.unexpected_exits() == [], supervisor.unexpected_exits()
