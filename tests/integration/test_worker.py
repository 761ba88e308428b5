"""The worker, as ops run it: ``ictq work`` processes on each database (fixture ``app``)."""

from __future__ import annotations

import collections
import signal
import time

from ictq.db import NewJob
from tests.support.app import App, count_rows, rows, wait_for


def finish(proc: object, timeout: float = 60) -> int:
    import subprocess

    assert isinstance(proc, subprocess.Popen)
    return int(proc.wait(timeout=timeout))


def test_four_workers_drain_2000_jobs_each_exactly_once(app: App) -> None:
    app.client().dispatch_many("test.record", [{"n": i} for i in range(2000)])
    workers = [app.worker("--stop-when-empty", "--sleep", "0.1", "--name", f"w{i}") for i in range(4)]
    codes = [finish(proc, timeout=240) for proc in workers]
    assert codes == [0, 0, 0, 0]
    done = collections.Counter(app.executions())
    assert sorted(int(n) for n in done) == list(range(2000))
    assert max(done.values()) == 1, [n for n, c in done.items() if c > 1][:10]
    storage = app.storage()
    assert count_rows(storage, "jobs") == 0 and count_rows(storage, "failed_jobs") == 0
    per_worker = collections.Counter(line.split("worker=")[1].split()[0]
                                     for line in app.log_text().splitlines() if " done " in line)
    # Every run is logged once, by the worker that ran it. (How the 2000 split between the four
    # follows the machine's pace: on a busy one the first worker may drain them all.)
    assert sum(per_worker.values()) == 2000 and set(per_worker) <= {"w0", "w1", "w2", "w3"}


def test_a_worker_killed_mid_job_loses_nothing(app: App) -> None:
    app.write_env(DB_QUEUE_RETRY_AFTER="3")
    app.client().dispatch("test.slow", {"n": 1, "seconds": 1.5})
    victim = app.worker("--sleep", "0.1", "--tries", "3")
    wait_for(lambda: app.executions("started"), what="the job to start")
    victim.send_signal(signal.SIGKILL)
    finish(victim)
    claimed_at = time.time()
    rescuer = app.worker("--sleep", "0.2", "--tries", "3")
    wait_for(lambda: app.executions("record"), timeout=30, what="the job to run again")
    assert time.time() - claimed_at >= 1.0  # not before retry_after (3s after the first claim)
    rescuer.send_signal(signal.SIGTERM)
    assert finish(rescuer) == 0
    assert app.executions("started") == ["1", "1"] and app.executions("record") == ["1"]
    assert count_rows(app.storage(), "jobs") == 0


def test_a_job_longer_than_retry_after_runs_once_while_its_worker_lives(app: App) -> None:
    app.write_env(DB_QUEUE_RETRY_AFTER="2")
    app.client().dispatch("test.slow", {"n": 7, "seconds": 6})
    first = app.worker("--sleep", "0.1", "--tries", "3", "--name", "first")
    wait_for(lambda: app.executions("started"), what="the job to start")
    second = app.worker("--sleep", "0.1", "--tries", "3", "--name", "second")
    wait_for(lambda: app.executions("record"), timeout=30, what="the job to finish")
    for proc in (first, second):
        proc.send_signal(signal.SIGTERM)
    assert [finish(first), finish(second)] == [0, 0]
    assert app.executions("started") == ["7"] and app.executions("record") == ["7"]
    assert "lease-lost" not in app.log_text()


def test_sigterm_finishes_the_current_job_then_exits_0(app: App) -> None:
    app.client().dispatch("test.slow", {"n": 3, "seconds": 2})
    proc = app.worker("--sleep", "0.1")
    wait_for(lambda: app.executions("started"), what="the job to start")
    proc.send_signal(signal.SIGTERM)
    assert finish(proc) == 0
    assert app.executions("record") == ["3"]
    assert count_rows(app.storage(), "jobs") == 0
    assert 'worker-stopping worker=default reason=signal processed=1' in app.log_text()


def test_a_second_signal_stops_at_once_and_hands_the_job_back(app: App) -> None:
    app.client().dispatch("test.slow", {"n": 4, "seconds": 60})
    proc = app.worker("--sleep", "0.1", "--tries", "3")
    wait_for(lambda: app.executions("started"), what="the job to start")
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    assert finish(proc, timeout=10) == 1
    assert app.executions("record") == []
    (row,) = rows(app.storage(), "SELECT attempts, reserved_at FROM jobs")
    assert row == (1, None)


def test_pause_and_resume_with_usr2_and_cont(app: App) -> None:
    proc = app.worker("--sleep", "0.1")
    wait_for(lambda: "worker-started" in app.log_text(), what="the worker to start")
    proc.send_signal(signal.SIGUSR2)
    wait_for(lambda: "worker-paused" in app.log_text(), what="the pause")
    app.client().dispatch("test.record", {"n": 5})
    time.sleep(1.0)
    assert app.executions() == []
    proc.send_signal(signal.SIGCONT)
    wait_for(lambda: app.executions() == ["5"], what="the job after resume")
    proc.send_signal(signal.SIGTERM)
    assert finish(proc) == 0


def test_a_job_past_its_timeout_is_stopped_and_the_worker_carries_on(app: App) -> None:
    app.client().dispatch("test.sleepy", {"n": 1, "seconds": 30})
    proc = app.worker("--sleep", "0.1")
    wait_for(lambda: count_rows(app.storage(), "failed_jobs") == 1, timeout=30, what="the job to fail")
    app.client().dispatch("test.record", {"n": 2})
    wait_for(lambda: app.executions() == ["2"], what="the next job")
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    assert finish(proc) == 0
    assert app.executions("started") == ["1", "1"]  # tries=2: timed out twice
    (exception,) = rows(app.storage(), "SELECT exception FROM failed_jobs")[0]
    assert exception.startswith("ictq.errors.JobTimeout: the job ran longer than its timeout of 1s")
    assert "attempt 2 of 2 failed" in exception


def test_a_job_that_cannot_be_interrupted_ends_the_worker_and_is_recorded(app: App) -> None:
    app.client().dispatch("test.stubborn", {"n": 1})
    proc = app.worker("--sleep", "0.1")
    assert finish(proc, timeout=30) == 1
    (exception,) = rows(app.storage(), "SELECT exception FROM failed_jobs")[0]
    assert "could not be interrupted" in exception
    assert count_rows(app.storage(), "jobs") == 0


def test_memory_over_the_limit_exits_12_after_the_job(app: App) -> None:
    app.client().dispatch("test.hog", {"mb": 200})
    app.client().dispatch("test.record", {"n": 1})
    proc = app.worker("--sleep", "0.1", "--memory", "150")
    assert finish(proc) == 12
    assert app.executions() == ["hog200"]
    assert count_rows(app.storage(), "jobs") == 1
    assert "reason=\"memory" in app.log_text()


def test_max_jobs_and_max_time_exit_0(app: App) -> None:
    app.client().dispatch_many("test.record", [{"n": i} for i in range(5)])
    assert finish(app.worker("--max-jobs", "2", "--sleep", "0.1")) == 0
    assert app.executions() == ["0", "1"]
    started = time.monotonic()
    assert finish(app.worker("--max-time", "2", "--sleep", "0.1")) == 0
    assert time.monotonic() - started >= 2
    assert app.executions() == ["0", "1", "2", "3", "4"]


def test_queue_priority_follows_the_queue_option(app: App) -> None:
    client = app.client()
    client.dispatch("test.record", {"n": 1}, queue="low")
    client.dispatch("test.record", {"n": 2}, queue="high")
    client.dispatch("test.record", {"n": 3}, queue="low")
    client.dispatch("test.record", {"n": 4}, queue="high")
    client.dispatch("test.record", {"n": 5}, queue="ignored")
    assert finish(app.worker("--queue", "high,low", "--stop-when-empty", "--sleep", "0.1")) == 0
    assert app.executions() == ["2", "4", "1", "3"]


def test_bad_payloads_go_to_failed_jobs_and_the_worker_carries_on(app: App) -> None:
    storage = app.storage()
    bad = ["{not json", '{"uuid":"u-1","job":"Illuminate\\\\Queue\\\\CallQueuedHandler@call",'
                        '"displayName":"App\\\\Jobs\\\\SendMail","data":{"command":"O:8:..."}}',
           '{"uuid":"u-2","job":"test.record","data":{"wrong":1}}', '{"uuid":"u-3","job":"test.record","data":[1]}']
    for text in bad:
        storage.push(NewJob("default", text, 0, 0))
    client = app.client()
    client.dispatch("nobody.knows", {})
    client.dispatch("test.record", {"n": 1})
    client.dispatch("test.exit", {"code": 3})
    client.dispatch("test.boom", {"message": "kaput"})
    client.dispatch("test.record", {"n": 2})
    assert finish(app.worker("--stop-when-empty", "--sleep", "0.1")) == 0
    assert app.executions() == ["1", "2"]
    failed = [row[0] for row in rows(storage, "SELECT exception FROM failed_jobs ORDER BY id")]
    assert len(failed) == 7
    assert "payload is not valid JSON" in failed[0]
    assert "App\\Jobs\\SendMail is a Laravel (PHP) job" in failed[1]
    assert "data does not fit job test.record" in failed[2]
    assert "'data' must be a JSON object" in failed[3]
    assert "job 'nobody.knows' is not registered" in failed[4]
    assert failed[5].startswith("builtins.SystemExit: 3")
    assert failed[6].startswith("builtins.ValueError: kaput") and "Traceback" in failed[6]
    assert count_rows(storage, "jobs") == 0


def test_release_retries_without_failing(app: App) -> None:
    app.client().dispatch("test.release", {"n": 9, "times": 2})
    assert finish(app.worker("--stop-when-empty", "--sleep", "0.1")) == 0
    assert app.executions() == ["9"]
    assert count_rows(app.storage(), "failed_jobs") == 0


def test_the_memory_limit_reads_the_workers_own_memory_not_an_inherited_peak(sqlite_app: App) -> None:
    sqlite_app.client().dispatch("test.record", {"n": 1})
    ballast = bytearray(300 * 1024 * 1024)  # this parent's peak; a forked and exec'd child inherits it
    ballast[::4096] = b"x" * len(ballast[::4096])
    try:
        result = sqlite_app.ictq("work", "--once", "--memory", "128")
    finally:
        del ballast
    assert result.returncode == 0, result.stderr
    assert sqlite_app.executions() == ["1"]
