"""Errors that are not outages stop a worker with one line; outages are waited out.

A database that does not exist, a user the server refuses, a SQLite file that cannot be opened
or written: no retry fixes them, so ``ictq work`` exits at once with one line on stderr (exit 2
for the settings' own faults: unknown database, refused login; exit 1 for a file it cannot
open or write). A refused connection (the server down, here a TCP proxy that we cut) is
transient: the worker waits, and works once the database answers again.
"""

from __future__ import annotations

import signal
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.app import App, count_rows, wait_for
from tests.support.databases import MY, PG, mysql_admin, pg_admin
from tests.support.proxy import TcpProxy

START_TIMEOUT = 60  # generous: the worker must exit by itself, not after a wait on the database


@pytest.fixture(params=("pgsql", "mysql"))
def server_dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server_app(server_dialect: str, tmp_path: Path) -> Iterator[App]:
    from tests.support.app import migrated_app

    with migrated_app(server_dialect, tmp_path) as application:
        yield application


def refused_at_start(app: App, code: int) -> str:
    """Run ``ictq work``; it must exit by itself with ``code`` and one line on stderr (returned)."""
    result = app.ictq("work", "--sleep", "0.1", timeout=START_TIMEOUT)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and len(lines) == 1, result.stderr
    assert lines[0].startswith("ictq: error: "), lines
    return lines[0]


def test_an_unknown_database_stops_the_worker_with_exit_2(server_app: App) -> None:
    server_app.write_env(DB_DATABASE=f"ictq_missing_{uuid.uuid4().hex[:8]}")
    line = refused_at_start(server_app, 2)
    assert "ictq_missing_" in line


@contextmanager
def pg_role(login: bool) -> Iterator[str]:
    name = f"ictq_role_{uuid.uuid4().hex[:8]}"
    with pg_admin() as conn:
        conn.execute(f"CREATE ROLE {name} {'LOGIN' if login else 'NOLOGIN'} PASSWORD 'right-pw'")  # type: ignore[attr-defined]
    try:
        yield name
    finally:
        with pg_admin() as conn:
            conn.execute(f"DROP ROLE IF EXISTS {name}")  # type: ignore[attr-defined]


@contextmanager
def mysql_user(database: str) -> Iterator[str]:
    name = f"ictq_u_{uuid.uuid4().hex[:8]}"
    hosts = ("127.0.0.1", "localhost", "%")
    with mysql_admin() as conn, conn.cursor() as cursor:  # type: ignore[attr-defined]
        for host in hosts:
            cursor.execute(f"CREATE USER '{name}'@'{host}' IDENTIFIED BY 'right-pw'")
            cursor.execute(f"GRANT ALL PRIVILEGES ON `{database}`.* TO '{name}'@'{host}'")
    try:
        yield name
    finally:
        with mysql_admin() as conn, conn.cursor() as cursor:  # type: ignore[attr-defined]
            for host in hosts:
                cursor.execute(f"DROP USER IF EXISTS '{name}'@'{host}'")


def test_a_refused_login_stops_the_worker_with_exit_2_and_shows_no_password(server_app: App) -> None:
    wrong = "Wrong-pw-9c1e"
    if server_app.dialect == "mysql":
        with mysql_user(server_app.values["DB_DATABASE"]) as user:
            assert server_app.ictq("size").returncode == 0  # the right settings work
            server_app.write_env(DB_USERNAME=user, DB_PASSWORD="right-pw")
            assert server_app.ictq("size").returncode == 0
            server_app.write_env(DB_PASSWORD=wrong)
            line = refused_at_start(server_app, 2)
    else:
        # PostgreSQL trusts 127.0.0.1 on the test server, so no password is ever wrong there: a
        # role the server refuses to log in (SQLSTATE 28000) is the same class of error.
        with pg_role(login=False) as role:
            server_app.write_env(DB_USERNAME=role, DB_PASSWORD=wrong)
            line = refused_at_start(server_app, 2)
        server_app.write_env(DB_USERNAME=f"ictq_nobody_{uuid.uuid4().hex[:8]}")
        refused_at_start(server_app, 2)
    assert wrong not in line


def test_a_sqlite_path_that_is_a_directory_stops_the_worker_with_exit_1(sqlite_app: App, tmp_path: Path) -> None:
    folder = tmp_path / "not-a-file"
    folder.mkdir()
    sqlite_app.write_env(DB_DATABASE=str(folder))
    assert "unable to open database file" in refused_at_start(sqlite_app, 1)


def test_a_missing_sqlite_directory_stops_the_worker_with_exit_2(sqlite_app: App, tmp_path: Path) -> None:
    sqlite_app.write_env(DB_DATABASE=str(tmp_path / "missing" / "queue.sqlite"))
    assert "DB_DATABASE" in refused_at_start(sqlite_app, 2)


@contextmanager
def immutable(path: Path) -> Iterator[None]:
    """The file cannot be opened for writing, even by root (``chattr +i``)."""
    subprocess.run(["chattr", "+i", str(path)], check=True, capture_output=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True, capture_output=True)


def test_a_read_only_sqlite_file_stops_the_worker_with_exit_1(sqlite_app: App) -> None:
    sqlite_app.client().dispatch("test.record", {"n": 1})
    database = Path(sqlite_app.values["DB_DATABASE"])
    with immutable(database):
        line = refused_at_start(sqlite_app, 1)
    assert "readonly" in line or "unable to open" in line
    assert sqlite_app.executions() == []
    assert count_rows(sqlite_app.storage(), "jobs") == 1  # still there, for a worker that can write


def test_a_database_dropped_under_a_running_worker_stops_it_with_one_line(server_app: App) -> None:
    app = server_app
    app.client().dispatch("test.record", {"n": 1})
    worker = app.worker("--sleep", "0.1")
    wait_for(lambda: app.executions() == ["1"], what="the first job")
    name = app.values["DB_DATABASE"]
    if app.dialect == "pgsql":
        with pg_admin() as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')  # type: ignore[attr-defined]
    else:
        with mysql_admin() as conn, conn.cursor() as cursor:  # type: ignore[attr-defined]
            cursor.execute(f"DROP DATABASE `{name}`")
    code = worker.wait(timeout=START_TIMEOUT)  # it stops by itself rather than retry forever
    stderr = worker.stderr.read() if worker.stderr is not None else ""
    errors = [line for line in stderr.splitlines() if line.startswith("ictq: error: ")]
    assert code in (1, 2) and len(errors) == 1 and "Traceback" not in stderr, (code, stderr)


def test_a_refused_connection_is_waited_out(server_app: App) -> None:
    app = server_app
    target = PG if app.dialect == "pgsql" else MY
    proxy = TcpProxy(str(target["host"]), int(str(target["port"])))
    app.write_env(DB_HOST="127.0.0.1", DB_PORT=str(proxy.port))  # nothing listens there yet: refused
    worker = app.worker("--sleep", "0.1")
    try:
        wait_for(lambda: "database-unavailable" in app.log_text(), timeout=30, what="the outage logged")
        assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
        proxy.start()
        app.client().dispatch("test.record", {"n": 7})
        wait_for(lambda: app.executions() == ["7"], timeout=60, what="the job, once the database answers")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=15) == 0
    finally:
        proxy.stop()
