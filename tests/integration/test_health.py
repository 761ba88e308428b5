"""``ictq health`` on each database, as Nagios or a probe runs it: exit code and one line."""

from __future__ import annotations

import json
import signal
import subprocess
import time

from tests.support.app import App, wait_for
from tests.support.proxy import TcpProxy


def health(app: App, *args: str) -> tuple[int, str]:
    result = app.ictq("health", *args)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout + result.stderr
    return result.returncode, lines[0]


def start_worker(app: App, queues: str = "default") -> subprocess.Popen[str]:
    proc = app.worker("--sleep", "0.1", "--queue", queues)
    wait_for(lambda: json.loads(app.ictq("workers", "--json").stdout), what="the worker's first heartbeat")
    return proc


def test_ok_warning_critical_from_real_state(app: App) -> None:
    code, line = health(app)
    assert code == 2 and line.startswith("ICTQ CRITICAL - 0 worker(s) alive for all queues (min 1)")
    assert health(app, "--min-workers", "0")[0] == 0
    worker = start_worker(app)
    code, line = health(app)
    assert code == 0 and line.startswith("ICTQ OK - ") and "workers=1;1:;1:;0" in line
    client = app.client()
    client.dispatch_many("test.record", [{"n": i} for i in range(5)], queue="unserved")
    code, line = health(app, "--max-size", "3,10")
    assert code == 1 and line.startswith("ICTQ WARNING - largest queue unserved has 5 jobs (max 3,10) |")
    assert health(app, "--max-size", "4")[0] == 2
    assert health(app, "--max-size", "3,10", "--queue", "default")[0] == 0  # only the checked queues count
    old = app.client(clock=lambda: time.time() - 1000)
    old.dispatch("test.record", {"n": 99}, queue="stale")
    code, line = health(app, "--max-size", "100")
    assert code == 2 and "oldest pending job waited" in line and "on stale (max 300,900)" in line
    code, line = health(app, "--queue", "unserved,stale")
    assert code == 2 and "0 worker(s) alive for unserved,stale" in line
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=15) == 0


def test_failures_in_the_last_hour(app: App) -> None:
    start_worker(app)
    app.client().dispatch_many("test.boom", [{"message": f"no {i}"} for i in range(3)])
    wait_for(lambda: "failed_1h=3;" in health(app)[1], what="three failures")
    assert health(app, "--max-failed-per-hour", "2,5")[0] == 1
    code, line = health(app, "--max-failed-per-hour", "1,2")
    assert code == 2 and "3 failed in the last hour (max 1,2)" in line
    assert health(app, "--max-failed-per-hour", "3")[0] == 0


def test_unknown_when_tables_are_missing(app: App) -> None:
    storage = app.storage()
    with storage._translated():
        storage.connection.cursor().execute("DROP TABLE ictq_workers")
    code, line = health(app)
    assert code == 3 and line.startswith("ICTQ UNKNOWN - queue tables missing or wrong:") and "ictq migrate" in line


def test_unknown_when_the_database_cannot_be_reached(app: App) -> None:
    if app.dialect == "sqlite":
        app.write_env(DB_DATABASE=str(app.root / "nowhere" / "db.sqlite"))
        code, line = health(app)
        assert code == 3 and line.startswith("ICTQ UNKNOWN - ") and "does not exist" in line
        return
    proxy = TcpProxy(app.values["DB_HOST"], int(app.values["DB_PORT"]))
    proxy.start()
    app.write_env(DB_HOST="127.0.0.1", DB_PORT=str(proxy.port))
    assert health(app, "--min-workers", "0")[0] == 0
    proxy.stop()
    code, line = health(app, "--min-workers", "0")
    assert code == 3 and line.startswith("ICTQ UNKNOWN - database unavailable: ")


def test_usage_errors_are_unknown_and_one_line(sqlite_app: App) -> None:
    for args in (("--max-size", "lots"), ("--min-workers", "1,3"), ("--frobnicate",)):
        result = sqlite_app.ictq("health", *args)
        assert result.returncode == 3, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("ictq: error: ")


def test_a_wrong_password_is_unknown_and_never_shown(app: App) -> None:
    canary = "Canary-Pw-7f3a9c"
    if app.dialect == "sqlite":
        app.write_env(DB_DATABASE=str(app.root / "missing.sqlite"), DB_PASSWORD=canary)
    else:
        app.write_env(DB_USERNAME="ictq_no_such_user", DB_PASSWORD=canary)
    result = app.ictq("health")
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stdout.startswith("ICTQ UNKNOWN - ")
    assert canary not in result.stdout + result.stderr
