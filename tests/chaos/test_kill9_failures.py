"""``kill -9`` of a worker holding failures not yet written (they wait for the next claim, see
``ictq.worker.failures``): nothing is lost. Those jobs are still in the jobs table, reserved;
the worker that reaps the dead one hands them back, they run again and fail again, and each
ends with exactly one failure record."""

from __future__ import annotations

import signal
from collections import Counter

import pytest

from tests.support.app import App, count_rows, failed_numbers, rows, wait_for

pytestmark = pytest.mark.slow
JOBS = 40
KILL_AT = 20  # in the claim batch of jobs 15-30 (batches of 1, 2, 4, 8, 16): 15-19 fail before it


def test_a_killed_workers_unwritten_failures_come_back(chaos_app: App) -> None:
    app = chaos_app
    app.write_env(DB_QUEUE_RETRY_AFTER="300")
    app.client().dispatch_many("test.doomed", [{"n": n, "kill_at": KILL_AT} for n in range(JOBS)])
    victim = app.worker("--sleep", "0.1", "--name", "victim")
    assert victim.wait(timeout=60) == -signal.SIGKILL
    storage = app.storage()
    before = failed_numbers(storage)
    assert KILL_AT not in before and count_rows(storage, "jobs") == JOBS - len(before)
    rescuer = app.worker("--sleep", "0.1", "--name", "rescuer", ICTQ_BEAT_EVERY="0.2")
    wait_for(lambda: count_rows(storage, "jobs") == 0, timeout=60, what="every job failed")
    rescuer.send_signal(signal.SIGTERM)
    assert rescuer.wait(timeout=15) == 0
    assert "worker-reaped worker=rescuer dead=victim" in app.log_text()
    # Nothing lost, one record per job: the unwritten failures ran again and were written once.
    assert failed_numbers(storage) == list(range(JOBS))
    runs = Counter(int(n) for n in app.executions("started"))
    assert set(runs) == set(range(JOBS)) and runs[KILL_AT] == 1
    rerun = sorted(n for n, count in runs.items() if count > 1)
    assert rerun and set(rerun) <= set(range(KILL_AT)) - set(before), (rerun, before)
    assert all(count <= 2 for count in runs.values())
    reasons = dict(rows(storage, "SELECT payload, exception FROM failed_jobs"))
    assert sum("attempted too many times" in reason for reason in reasons.values()) == 1  # the killer job
