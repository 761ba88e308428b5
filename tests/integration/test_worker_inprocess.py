"""Worker behaviour driven in-process with a controllable clock (real SQLite database)."""

from __future__ import annotations

import json

import pytest

import tests.support.jobs  # noqa: F401 - registers the test jobs in this process
from ictq.worker import Worker, WorkerOptions
from tests.support.app import App, count_rows, rows


@pytest.fixture(autouse=True)
def job_output(sqlite_app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ICTQ_TEST_OUT", str(sqlite_app.out))


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def run_once(app: App, clock: Clock, **options: object) -> int:
    worker = Worker(app.settings, WorkerOptions(**{"once": True, "sleep": 0, "memory": 0, **options}), clock=clock)  # type: ignore[arg-type]
    return worker.run()


def test_backoff_schedules_each_retry_on_the_clock(sqlite_app: App) -> None:
    clock = Clock(10_000)
    sqlite_app.client(clock=clock).dispatch("test.flaky", {"n": 1, "failures": 2})
    storage = sqlite_app.storage()

    assert run_once(sqlite_app, clock) == 0  # attempt 1 fails; backoff[0] = 2s
    assert rows(storage, "SELECT attempts, reserved_at, available_at FROM jobs") == [(1, None, 10_002)]
    clock.now = 10_001
    run_once(sqlite_app, clock)
    assert sqlite_app.executions("attempts") == ["1:1"]
    clock.now = 10_002
    run_once(sqlite_app, clock)  # attempt 2 fails; backoff[1] = 5s
    assert rows(storage, "SELECT attempts, available_at FROM jobs") == [(2, 10_007)]
    clock.now = 10_006
    run_once(sqlite_app, clock)
    assert sqlite_app.executions("attempts") == ["1:1", "1:2"]
    clock.now = 10_007
    run_once(sqlite_app, clock)  # attempt 3 succeeds
    assert sqlite_app.executions("attempts") == ["1:1", "1:2", "1:3"]
    assert sqlite_app.executions("record") == ["1"]
    assert count_rows(storage, "jobs") == 0 and count_rows(storage, "failed_jobs") == 0


def test_worker_backoff_option_applies_when_the_job_has_none(sqlite_app: App) -> None:
    clock = Clock(50_000)
    sqlite_app.client(clock=clock).dispatch("test.boom", {"message": "again"})
    storage = sqlite_app.storage()
    run_once(sqlite_app, clock, tries=3, backoff=(30, 90))
    # test.boom sets tries=1 itself, so the worker's --tries does not apply: it fails at once.
    assert count_rows(storage, "failed_jobs") == 1
    sqlite_app.client(clock=clock).dispatch("test.release", {"n": 1, "times": 5})
    run_once(sqlite_app, clock, backoff=(30, 90))
    assert rows(storage, "SELECT attempts, available_at FROM jobs") == [(1, 50_000)]  # Release(delay=0)


def test_max_exceptions_are_counted_across_attempts(sqlite_app: App) -> None:
    import ictq

    calls: list[int] = []

    @ictq.job("inproc.max_exceptions", tries=10, max_exceptions=2)
    def always_fails() -> None:
        calls.append(1)
        raise RuntimeError("nope")

    clock = Clock(1000)
    sqlite_app.client(clock=clock).dispatch("inproc.max_exceptions", {})
    storage = sqlite_app.storage()
    run_once(sqlite_app, clock)
    (payload,) = rows(storage, "SELECT payload FROM jobs")[0]
    assert json.loads(payload)["exceptions"] == 1
    run_once(sqlite_app, clock)
    assert len(calls) == 2 and count_rows(storage, "jobs") == 0
    (exception,) = rows(storage, "SELECT exception FROM failed_jobs")[0]
    assert "maxExceptions 2" in exception


def test_sync_connection_runs_the_job_at_dispatch(sqlite_app: App) -> None:
    sqlite_app.write_env(QUEUE_CONNECTION="sync")
    client = sqlite_app.client()
    dispatched = client.dispatch("test.record", {"n": 42})
    assert dispatched.id is None and sqlite_app.executions() == ["42"]
    assert count_rows(sqlite_app.storage(), "jobs") == 0


def test_maintenance_mode_holds_the_worker_unless_forced(sqlite_app: App) -> None:
    down = sqlite_app.root / "storage" / "framework" / "down"
    down.parent.mkdir(parents=True)
    down.write_text("{}")
    clock = Clock(1000)
    sqlite_app.client(clock=clock).dispatch("test.slow", {"n": 1, "seconds": 0})
    worker = Worker(sqlite_app.settings, WorkerOptions(max_time=1, sleep=0.2, memory=0), clock=clock)
    assert worker.run() == 0
    assert sqlite_app.executions() == []
    assert run_once(sqlite_app, clock, force=True) == 0
    assert sqlite_app.executions() == ["1"]


def test_module_level_dispatch_uses_the_configured_env(sqlite_app: App) -> None:
    import ictq
    from tests.support.jobs import record

    ictq.configure(sqlite_app.env_file)
    try:
        first = record.dispatch(n=1)
        second = ictq.dispatch("test.record", {"n": 2}, queue="other")
        many = ictq.dispatch_many("test.record", [{"n": 3}, {"n": 4}])
    finally:
        ictq.configure(None)
    assert first.id is not None and second.queue == "other" and len(many) == 2
    assert rows(sqlite_app.storage(), "SELECT queue FROM jobs ORDER BY id") == [
        ("default",), ("other",), ("default",), ("default",)]


def test_the_jobs_option_imports_modules_from_the_app_dir(sqlite_app: App) -> None:
    (sqlite_app.root / "appjobs.py").write_text(
        "import os, ictq\n\n"
        "@ictq.job('app.hello')\n"
        "def hello(who: str) -> None:\n"
        "    open(os.path.join(os.environ['ICTQ_TEST_OUT'], 'record'), 'a').write(who + '\\n')\n"
    )
    sqlite_app.write_env(ICTQ_JOBS="")
    sqlite_app.client().dispatch("app.hello", {"who": "ops"})
    result = sqlite_app.ictq("work", "--jobs", "appjobs", "--stop-when-empty")
    assert result.returncode == 0, result.stderr
    assert sqlite_app.executions() == ["ops"]


def test_the_worker_registers_the_built_in_mail_jobs_itself(sqlite_app: App) -> None:
    """Not as a side effect of what the command line imports: a fresh process, no CLI."""
    import subprocess
    import sys

    code = ("import sys\n"
            "from ictq import jobs\n"
            "from ictq.config import load_settings\n"
            "from ictq.worker import Worker, WorkerOptions\n"
            "assert 'ictq.mail.notifications' not in sys.modules\n"
            "Worker(load_settings(sys.argv[1], environ={}), WorkerOptions())\n"
            "print(jobs.get('mail.password_reset').name, jobs.get('mail.account_activation').name)\n")
    result = subprocess.run([sys.executable, "-c", code, str(sqlite_app.env_file)], capture_output=True, text=True,
                            env=sqlite_app.env(), timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["mail.password_reset", "mail.account_activation"]
