"""ictq through a real PgBouncer, in session and in transaction pooling (``DB_PGBOUNCER``).

The traps of transaction pooling: psycopg's server-side prepared statements (PgBouncer 1.18
cannot carry them between transactions), a session ``SET`` that would leak to other clients,
and ``LISTEN``, which needs a session (a direct connection, ``DB_LISTEN_HOST``, or polling).
Each test dispatches (one by one and in bulk, by COPY), drains with real ``ictq work``
processes, retries failed jobs, and wakes an idle worker, all through PgBouncer: nothing lost,
nothing run twice.
"""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from ictq.db import open_storage
from tests.chaos.support import marks
from tests.support.app import App, count_rows, migrated_app, rows, wait_for
from tests.support.databases import PG
from tests.support.pgbouncer import PgBouncer, running_pgbouncer

JOBS = 1500  # bulk (COPY)
SINGLE = 40  # one by one: more runs of one statement than psycopg's prepare threshold (5)
FAILING = 12
WORKERS = 3


@pytest.fixture(scope="module", params=("session", "transaction"))
def bouncer(request: pytest.FixtureRequest) -> Iterator[PgBouncer]:
    with running_pgbouncer(str(request.param)) as running:
        yield running


@pytest.fixture
def bounced_app(bouncer: PgBouncer, tmp_path: Path) -> Iterator[App]:
    """An app whose every connection goes through ``bouncer`` (migrate included)."""
    with migrated_app("pgsql", tmp_path, lambda database: {**database.env, **bouncer.env()}) as application:
        yield application


def _stop(app: App, procs: list[object]) -> list[int]:
    codes = []
    for proc in procs:
        proc.send_signal(signal.SIGTERM)  # type: ignore[attr-defined]
    for proc in procs:
        codes.append(proc.wait(timeout=60))  # type: ignore[attr-defined]
    return codes


def test_drain_dispatch_and_retry(bouncer: PgBouncer, bounced_app: App) -> None:
    app = bounced_app
    (app.out / "broken").touch()  # test.gate fails while it exists
    client = app.client()
    assert client.dispatch_many("test.mark", [{"n": n} for n in range(JOBS)]) is not None
    for n in range(JOBS, JOBS + SINGLE):
        client.dispatch("test.mark", {"n": n})
    for tag in range(FAILING):
        client.dispatch("test.gate", {"tag": f"g{tag}"})
    client.close()
    workers = [app.worker("--name", f"w{slot}", "--sleep", "1") for slot in range(WORKERS)]
    storage = app.storage()
    try:
        wait_for(lambda: len(marks(app)) >= JOBS + SINGLE, timeout=120, interval=0.1, what="the drain")
        wait_for(lambda: count_rows(storage, "failed_jobs") == FAILING, timeout=60, what="the failures")
        (app.out / "broken").unlink()
        result = app.ictq("retry", "all")
        assert result.returncode == 0, result.stderr
        wait_for(lambda: len(app.executions("gate")) >= FAILING, timeout=60, what="the retried jobs")
        wait_for(lambda: count_rows(storage, "jobs") == 0, timeout=60, what="the acknowledgements")
    finally:
        codes = _stop(app, workers)
    assert codes == [0] * WORKERS
    runs = Counter(n for n, _ in marks(app))
    assert set(runs) == set(range(JOBS + SINGLE)), "jobs lost"
    assert [n for n, count in runs.items() if count > 1] == [], "jobs run twice"
    assert sorted(app.executions("gate")) == sorted(f"g{tag}:NoneType" for tag in range(FAILING))
    assert count_rows(storage, "failed_jobs") == 0
    log = app.log_text()
    assert "database-unavailable" not in log
    assert "prepared statement" not in log
    # No session state leaked into PgBouncer's pool: a new client sees the server's defaults.
    for _ in range(5):
        assert rows(app.storage(), "SHOW synchronous_commit") == [("on",)]
    storage.close()


@pytest.mark.parametrize("listen", ["own", "direct"])
def test_idle_worker_wakes(bouncer: PgBouncer, bounced_app: App, listen: str) -> None:
    """An idle worker (``--sleep 60``) runs a new job long before its sleep ends: woken by
    NOTIFY on its own connection (session pooling), on a direct one to PostgreSQL
    (``DB_LISTEN_HOST``), or, in transaction pooling without one, by polling."""
    app = bounced_app
    if listen == "direct":
        app.write_env(DB_LISTEN_HOST=PG["host"], DB_LISTEN_PORT=str(PG["port"]))
    name = f"wake-{bouncer.mode}-{listen}"
    worker = app.worker("--name", name, "--sleep", "60")
    listens = bouncer.mode == "session" or listen == "direct"
    try:
        if listens:
            wait_for(lambda: _listeners(app), timeout=60, what="the worker to LISTEN")
        else:
            client = app.client()
            client.dispatch("test.record", {"n": 0})
            client.close()
            wait_for(lambda: app.executions() == ["0"], timeout=60, what="the first job")
        client = app.client()
        client.dispatch("test.record", {"n": 1})
        client.close()
        wait_for(lambda: "1" in app.executions(), timeout=40, what="the idle worker to wake (its --sleep is 60)")
    finally:
        codes = _stop(app, [worker])
    assert codes == [0]


def _listeners(app: App) -> list[tuple[object, ...]]:
    """Sessions of the app's database idle in ``LISTEN`` (pg_stat_activity, seen directly)."""
    import psycopg

    with psycopg.connect(host=PG["host"], port=PG["port"], user=PG["user"], dbname=app.values["DB_DATABASE"],
                         autocommit=True) as conn:
        return list(conn.execute("SELECT application_name FROM pg_stat_activity WHERE datname = current_database()"
                                 " AND query LIKE 'LISTEN%' AND state = 'idle'").fetchall())


def test_connections_per_worker(bouncer: PgBouncer, bounced_app: App) -> None:
    """A worker holds two client connections to PgBouncer (the loop's, the background
    thread's), and in transaction pooling with ``DB_LISTEN_HOST`` one more, straight to
    PostgreSQL, for LISTEN."""
    app = bounced_app
    app.write_env(DB_LISTEN_HOST=PG["host"], DB_LISTEN_PORT=str(PG["port"]))
    name = f"count-{bouncer.mode}"
    worker = app.worker("--name", name, "--sleep", "60")
    try:
        wait_for(lambda: _listeners(app), timeout=60, what="the worker to LISTEN")

        def clients() -> int:
            return sum(1 for client in bouncer.show("CLIENTS") if client["application_name"] == f"ictq-worker:{name}")

        wait_for(lambda: clients() == 2, timeout=60, what="two client connections in PgBouncer")
        direct = [row for row in _listeners(app) if row[0] == f"ictq-worker:{name}"]
        print(f"[pgbouncer] {bouncer.mode}: worker {name}: {clients()} PgBouncer clients, "
              f"{len(direct)} direct LISTEN connection")
        assert clients() == 2
        assert len(direct) == 1
    finally:
        codes = _stop(app, [worker])
    assert codes == [0]


def test_connections_per_worker_direct(tmp_path: Path) -> None:
    """Without PgBouncer, a worker holds two PostgreSQL connections, named
    ``ictq-worker:<name>`` in pg_stat_activity: the loop's (which also LISTENs) and the
    background thread's (leases, heartbeats)."""
    with migrated_app("pgsql", tmp_path) as app:
        name = "count-direct"
        worker = app.worker("--name", name, "--sleep", "60")
        try:
            wait_for(lambda: _listeners(app), timeout=60, what="the worker to LISTEN")

            def sessions() -> list[tuple[object, ...]]:
                return [row for row in _sessions(app) if row[0] == f"ictq-worker:{name}"]

            wait_for(lambda: len(sessions()) == 2, timeout=60, what="two connections in pg_stat_activity")
            found = sessions()
            print(f"[pgbouncer] direct: worker {name}: {len(found)} connections: {found}")
            assert len(found) == 2
            assert sum(1 for row in found if str(row[1]).startswith("LISTEN")) == 1
        finally:
            codes = _stop(app, [worker])
        assert codes == [0]


def _sessions(app: App) -> list[tuple[object, ...]]:
    """``(application_name, query)`` of every client session of the app's database."""
    import psycopg

    with psycopg.connect(host=PG["host"], port=PG["port"], user=PG["user"], dbname=app.values["DB_DATABASE"],
                         autocommit=True) as conn:
        return list(conn.execute("SELECT application_name, query FROM pg_stat_activity"
                                 " WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchall())


def test_worker_commits_asynchronously_and_leaks_nothing(bouncer: PgBouncer, bounced_app: App) -> None:
    """A worker's transactions commit with ``synchronous_commit = off``: for its session in
    session pooling, with ``SET LOCAL`` inside each transaction in transaction pooling, where a
    session ``SET`` would stay on a server connection other clients get next."""
    storage = open_storage(bounced_app.settings, worker=True)
    try:
        with storage.transaction():
            inside = rows(storage, "SHOW synchronous_commit")
        outside = rows(storage, "SHOW synchronous_commit")
    finally:
        storage.close()
    assert inside == [("off",)]
    assert outside == [("off",)] if bouncer.mode == "session" else [("on",)]
