"""The ``ictq`` CLI as a user runs it: one-line errors, non-zero exits, nothing lost."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.app import App, count_rows, wait_for
from tests.support.proxy import TcpProxy


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(("change", "expected"), [
    ({"QUEUE_CONNECTION": "redis"}, "ictq: error: QUEUE_CONNECTION='redis' is not supported"),
    ({"DB_CONNECTION": "oracle"}, "ictq: error: DB_CONNECTION='oracle' is not supported"),
    ({"DB_QUEUE_RETRY_AFTER": "soon"}, "ictq: error: DB_QUEUE_RETRY_AFTER='soon' is not a whole number"),
    ({"DB_DATABASE": "/nonexistent/dir/db.sqlite"}, "ictq: error: DB_DATABASE: directory /nonexistent/dir"),
    ({"ICTQ_JOBS": "no_such_module"}, "ictq: error: ICTQ_JOBS: cannot import job module 'no_such_module'"),
])
def test_env_errors_are_one_line_and_exit_2(sqlite_app: App, change: dict[str, str], expected: str) -> None:
    sqlite_app.write_env(**change)
    result = sqlite_app.ictq("work", "--once")
    assert one_line_error(result).startswith(expected)
    assert result.returncode == 2


def test_usage_errors_are_one_line(sqlite_app: App) -> None:
    line = one_line_error(sqlite_app.ictq("work", "--sleep", "soon"))
    assert "'--sleep'" in line and "ictq work --help" in line
    line = one_line_error(sqlite_app.ictq("dispatch", "test.record", "--data", "{bad"))
    assert line.startswith("ictq: error: Invalid value for --data: not valid JSON")
    line = one_line_error(sqlite_app.ictq("dispatch", "test.record", "--data", '{"m": 1}'))
    assert "data does not fit job test.record" in line
    assert count_rows(sqlite_app.storage(), "jobs") == 0


def test_missing_env_file(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "ictq", "--env-file", str(tmp_path / ".env"), "migrate"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert one_line_error(result).startswith("ictq: error: no .env file at")


def test_a_table_without_laravels_columns_is_refused(sqlite_app: App) -> None:
    storage = sqlite_app.storage()
    storage.connection.cursor().execute("DROP TABLE jobs")
    storage.connection.cursor().execute("CREATE TABLE jobs (id integer primary key, queue text)")
    line = one_line_error(sqlite_app.ictq("migrate"))
    assert line.startswith("ictq: error: table jobs exists but lacks Laravel's columns")


def test_dispatch_and_work_from_the_cli(app: App) -> None:
    result = app.ictq("dispatch", "test.record", "--data", '{"n": 11}', "--queue", "emails")
    assert result.returncode == 0 and "dispatched test.record id=" in result.stdout
    assert app.ictq("work", "--queue", "emails", "--stop-when-empty").returncode == 0
    assert app.executions() == ["11"]


def test_help_documents_every_queue_work_option(sqlite_app: App) -> None:
    text = sqlite_app.ictq("work", "--help").stdout
    for option in ("--queue", "--sleep", "--tries", "--backoff", "--timeout", "--memory", "--max-jobs",
                   "--max-time", "--rest", "--stop-when-empty", "--once", "--name", "--force"):
        assert option in text, option


def test_secrets_never_reach_logs_output_or_failed_jobs(sqlite_app: App) -> None:
    canary = "Canary-Pw-7f3a9c"
    sqlite_app.write_env(DB_PASSWORD=canary, MAIL_PASSWORD=canary)
    sqlite_app.client().dispatch("test.boom", {"message": f"login with {canary} refused"})
    result = sqlite_app.ictq("work", "--stop-when-empty", "--sleep", "0.1")
    assert result.returncode == 0
    (exception,) = [row[0] for row in sqlite_app.storage().connection.execute("SELECT exception FROM failed_jobs")]
    assert "ValueError: login with ******** refused" in exception
    for text in (exception, sqlite_app.log_text(), result.stdout, result.stderr):
        assert canary not in text


@pytest.mark.parametrize("dialect", ["pgsql", "mysql"])
def test_a_lost_database_is_retried_with_one_log_line_per_outage(app: App) -> None:
    port = int(app.values["DB_PORT"])
    proxy = TcpProxy("127.0.0.1", port)
    proxy.start()
    app.write_env(DB_PORT=str(proxy.port))
    try:
        proc = app.worker("--sleep", "0.1")
        wait_for(lambda: "worker-started" in app.log_text(), what="the worker")
        proxy.stop()
        app.write_env(DB_PORT=str(port))
        app.client().dispatch_many("test.record", [{"n": i} for i in range(20)])
        wait_for(lambda: "database-unavailable" in app.log_text(), what="the outage to be noticed")
        import time

        time.sleep(3)
        assert proc.poll() is None
        proxy.start()
        wait_for(lambda: len(app.executions()) == 20, timeout=60, what="the jobs after recovery")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        proxy.stop()
    log = app.log_text()
    assert log.count("database-unavailable") == 1 and log.count("database-restored") == 1
    assert sorted(int(n) for n in app.executions()) == list(range(20))
