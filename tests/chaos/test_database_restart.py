"""The database server restarted mid-drain (PostgreSQL, MariaDB): the workers wait with capped
backoff, log one line per outage, resume by themselves; nothing is lost, no worker exits."""

from __future__ import annotations

import re
import time

import pytest

from tests.chaos.support import Supervisor, duplicates, leaks, marks, report, server_down, start_server
from tests.support.app import App, count_rows, wait_for

pytestmark = pytest.mark.slow
JOBS = 6000
WORKERS = 3
OUTAGE = 10.0  # seconds the server stays down
AFTER = 200  # jobs dispatched when it is back


def test_database_restart_mid_drain(server_app: App) -> None:
    app = server_app
    client = app.client()
    client.dispatch_many("test.mark", [{"n": n} for n in range(JOBS)])
    client.close()
    supervisor = Supervisor(app, WORKERS, ("--sleep", "0.2", "--tries", "0"))
    supervisor.start()
    try:
        wait_for(lambda: len(marks(app)) >= JOBS // 4, timeout=120, interval=0.1, what="a quarter of the jobs")
        stopped_at = time.monotonic()
        with server_down(app.dialect):
            done_at_stop = len(marks(app))
            time.sleep(OUTAGE)
            start_server(app.dialect)
        back_at = time.monotonic()
        runs_when_back = len(marks(app))
        # Jobs dispatched once the server is back: work after the outage whatever the drain's pace
        # (on a fast machine the first 6000 may all be done before the server has stopped).
        client = app.client()
        client.dispatch_many("test.mark", [{"n": n} for n in range(JOBS, JOBS + AFTER)])
        client.close()
        wait_for(lambda: len(marks(app)) > runs_when_back, timeout=120, interval=0.05, what="the first job after")
        recovered_at = time.monotonic()
        storage = app.storage()
        wait_for(lambda: count_rows(storage, "jobs") == 0, timeout=180, interval=0.2, what="the drain")
    finally:
        supervisor.stop()
    executions = marks(app)
    dups = duplicates(executions)
    log = app.log_text()
    report("database-restart", dialect=app.dialect, jobs=JOBS, workers=WORKERS, done_before_outage=done_at_stop,
           outage_seconds=f"{back_at - stopped_at:.1f}", recovery_seconds=f"{recovered_at - back_at:.1f}",
           runs_during_outage=runs_when_back - done_at_stop, duplicates=sum(dups.values()),
           worker_exits=len(supervisor.exits))
    assert {n for n, _ in executions} == set(range(JOBS + AFTER))
    assert count_rows(app.storage(), "failed_jobs") == 0
    assert sum(dups.values()) == 0
    assert supervisor.exits == [], f"workers exited: {supervisor.exits}"
    assert set(supervisor.final_codes) == {0}
    for slot in range(WORKERS):
        name = f"w{slot}"
        unavailable = re.findall(rf" database-unavailable worker={name} .*", log)
        assert len(unavailable) == 1, (name, unavailable)
        assert "backoff up to 30s" in unavailable[0]
        assert len(re.findall(rf" database-restored worker={name} ", log)) == 1, name
    errors = [line for line in log.splitlines() if " ERROR " in line and "database-unavailable" not in line]
    print(f"[chaos] database-restart {app.dialect} other error lines: {len(errors)} {errors[:3]}")
    assert leaks(app, [supervisor.output()]) == []
