"""PostgreSQL failover mid-drain: the workers and a dispatcher reach the queue through a
multi-host ``DB_HOST`` (a primary and its streaming replica, both started here). The primary
stops, the replica is promoted, and everyone carries on on the new primary by themselves:
nothing lost, duplicates only of jobs in flight at the switch, no worker exits, and one
``database-unavailable`` and one ``database-restored server=<new primary>`` line per worker.

The order is a real failover's: the old primary is stopped first (fenced: nothing writes to
it any more), then the replica is promoted. Promoting first would let clients still on the old
primary write there: a split brain that loses those writes, whatever the queue does.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ictq.errors import DatabaseUnavailable
from tests.chaos.support import Supervisor, canary_env, leaks, marks, report
from tests.support.app import App, count_rows, wait_for
from tests.support.pgcluster import SUPERUSER, Cluster, primary_and_replica

pytestmark = pytest.mark.slow
JOBS = 3000
WORKERS = 3
AFTER_SWITCH = 30  # jobs the dispatcher must have queued on the new primary
DATABASE = "ictq_failover"


@pytest.fixture
def clusters() -> Iterator[tuple[Cluster, Cluster]]:
    with primary_and_replica() as pair:
        yield pair


@pytest.fixture
def failover_app(clusters: tuple[Cluster, Cluster], tmp_path: Path) -> Iterator[App]:
    primary, replica = clusters
    primary.query(f'CREATE DATABASE "{DATABASE}"')
    app = App(tmp_path, "pgsql", {
        "DB_CONNECTION": "pgsql", "DB_HOST": "127.0.0.1,127.0.0.1", "DB_PORT": f"{primary.port},{replica.port}",
        "DB_DATABASE": DATABASE, "DB_USERNAME": SUPERUSER,
        # Leases every 2.5 s; a claim whose commit reply was lost in the switch comes back soon.
        "DB_QUEUE_RETRY_AFTER": "10", **canary_env("pgsql"),
    })
    client = app.client()
    client.migrate()
    client.close()
    try:
        yield app
    finally:
        app.stop_all()


class Dispatcher(threading.Thread):
    """Dispatches ``test.mark`` jobs one by one until stopped, retrying a job whose dispatch met
    the outage. ``acknowledged``: dispatches that returned; ``uncertain``: numbers whose dispatch
    raised at least once (the commit may have happened before the connection broke)."""

    def __init__(self, app: App, first: int) -> None:
        super().__init__(daemon=True)
        self.app = app
        self.next = first
        self.acknowledged: list[int] = []
        self.uncertain: set[int] = set()
        self.outages = 0
        self.error: BaseException | None = None
        self._stop_event = threading.Event()

    def run(self) -> None:
        client = self.app.client()
        try:
            while not self._stop_event.is_set():
                try:
                    client.dispatch("test.mark", {"n": self.next})
                except DatabaseUnavailable:
                    self.uncertain.add(self.next)
                    self.outages += 1
                    self._stop_event.wait(0.2)
                    continue
                self.acknowledged.append(self.next)
                self.next += 1
                self._stop_event.wait(0.01)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
        finally:
            client.close()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=60)


def test_failover_mid_drain(clusters: tuple[Cluster, Cluster], failover_app: App) -> None:
    primary, replica = clusters
    app = failover_app
    client = app.client()
    client.dispatch_many("test.mark", [{"n": n} for n in range(JOBS)])
    client.close()
    dispatcher = Dispatcher(app, JOBS)
    supervisor = Supervisor(app, WORKERS, ("--sleep", "0.2", "--tries", "0"))
    supervisor.start()
    dispatcher.start()
    try:
        wait_for(lambda: len(marks(app)) >= JOBS // 4, timeout=120, interval=0.1, what="a quarter of the jobs")
        switched_at = time.monotonic()
        runs_at_switch = len(marks(app))
        primary.stop("fast")  # its walsender sends the replica every committed transaction first
        replica.promote()
        promoted_at = time.monotonic()
        runs_when_promoted = len(marks(app))
        sent_when_promoted = len(dispatcher.acknowledged)
        wait_for(lambda: len(dispatcher.acknowledged) >= sent_when_promoted + AFTER_SWITCH or dispatcher.error,
                 timeout=120, interval=0.1, what="dispatches on the new primary")
        dispatcher.stop()
        assert dispatcher.error is None, repr(dispatcher.error)
        wait_for(lambda: replica.query("SELECT count(*) FROM jobs", DATABASE) == [(0,)], timeout=180, interval=0.2,
                 what="the drain on the new primary")
    finally:
        dispatcher.stop()
        supervisor.stop()
    executions = marks(app)
    dispatched = set(range(JOBS)) | set(dispatcher.acknowledged)
    ran = {n for n, _ in executions}
    first_run: dict[int, int] = {}
    counts: dict[int, int] = {}
    for index, (n, _) in enumerate(executions):
        first_run.setdefault(n, index)
        counts[n] = counts.get(n, 0) + 1
    dups = sorted(n for n, count in counts.items() if count > 1)
    # In flight at the switch: first run before the new primary took over, or a dispatch retried.
    unexplained = [n for n in dups if first_run[n] >= runs_when_promoted and n not in dispatcher.uncertain]
    log = app.log_text()
    report("failover", jobs=len(dispatched), workers=WORKERS, done_at_switch=runs_at_switch,
           switch_seconds=f"{promoted_at - switched_at:.1f}", duplicates=len(dups),
           dispatch_retries=dispatcher.outages, worker_exits=len(supervisor.exits))
    assert dispatched <= ran, f"jobs lost: {sorted(dispatched - ran)[:10]}"
    assert ran <= dispatched | dispatcher.uncertain
    assert unexplained == [], f"duplicates not in flight at the switch: {unexplained[:10]}"
    assert count_rows(app.storage(), "failed_jobs") == 0
    assert supervisor.exits == [], f"workers exited: {supervisor.exits}"
    assert set(supervisor.final_codes) == {0}
    for slot in range(WORKERS):
        name = f"w{slot}"
        unavailable = re.findall(rf" database-unavailable worker={name} .*", log)
        restored = re.findall(rf" database-restored worker={name} .*", log)
        assert len(unavailable) == 1, (name, unavailable)
        assert len(restored) == 1, (name, restored)
        assert f"server=127.0.0.1:{replica.port}" in restored[0], restored[0]
    assert leaks(app, [supervisor.output()]) == []
