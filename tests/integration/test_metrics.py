"""``ictq metrics``: a real HTTP endpoint, scraped as Prometheus does, summing every worker."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ictq.db import NewJob
from tests.support.app import App, count_rows, rows, wait_for
from tests.support.proxy import TcpProxy

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Exporter:
    def __init__(self, app: App) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ictq", "--env-file", str(app.env_file), "metrics", "--listen",
             f"127.0.0.1:{self.port}"], cwd=app.root, env=app.env(), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        assert first.startswith(f"serving metrics on http://127.0.0.1:{self.port}/metrics"), first

    def text(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=30) as response:
            assert response.status == 200
            return str(response.read().decode())

    def scrape(self) -> Samples:
        return parse(self.text())

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=15)
        assert self.proc.stderr is not None and self.proc.stdout is not None
        err = self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return code, err


def parse(text: str) -> Samples:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def exporter(app: App) -> Iterator[Exporter]:
    served = Exporter(app)
    try:
        yield served
    finally:
        if served.proc.poll() is None:
            served.proc.kill()
            served.proc.wait(timeout=10)


def test_queue_failed_and_worker_metrics_across_worker_processes(app: App, exporter: Exporter) -> None:
    client = app.client()
    client.dispatch_many("test.record", [{"n": i} for i in range(150)])
    client.dispatch_many("test.boom", [{"message": f"bad {i}"} for i in range(3)])
    app.storage().push(NewJob("default", "{not json", 0, 0))
    first = app.worker("--sleep", "0.1", "--max-jobs", "100", "--name", "first")
    assert first.wait(timeout=120) == 0  # exits after 100 jobs, writing its statistics
    second = app.worker("--sleep", "0.1", "--name", "second")
    wait_for(lambda: len(app.executions()) == 150 and count_rows(app.storage(), "jobs") == 0, timeout=60,
             what="every job")
    client.dispatch_many("test.record", [{"n": i} for i in range(4)], delay=600)
    client.dispatch_many("test.record", [{"n": i} for i in range(2)], queue="unserved")
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=15) == 0
    assert len({r[0] for r in rows(app.storage(), "SELECT worker_id FROM ictq_worker_stats")}) == 2
    samples = exporter.scrape()
    assert value(samples, "ictq_up") == 1
    assert value(samples, "ictq_jobs_processed_total", job="test.record", outcome="done") == 150
    assert value(samples, "ictq_jobs_processed_total", job="test.boom", outcome="failed") == 3
    assert value(samples, "ictq_job_duration_seconds_count", job="test.record", outcome="done") == 150
    assert value(samples, "ictq_job_duration_seconds_bucket", job="test.record", outcome="done", le="+Inf") == 150
    assert 0 < value(samples, "ictq_job_duration_seconds_sum", job="test.record", outcome="done") < 150
    assert value(samples, "ictq_failed_jobs", queue="default", job="test.boom") == 3
    assert value(samples, "ictq_failed_jobs", queue="default", job="(unreadable payload)") == 1
    assert value(samples, "ictq_failed_jobs_last_hour", queue="default") == 4
    assert value(samples, "ictq_queue_jobs", queue="default", state="delayed") == 4
    assert value(samples, "ictq_queue_jobs", queue="unserved", state="pending") == 2
    assert value(samples, "ictq_queue_oldest_pending_age_seconds", queue="unserved") >= 0
    assert value(samples, "ictq_workers_alive") == 0
    live = app.worker("--sleep", "0.1", "--queue", "other")
    wait_for(lambda: value(exporter.scrape(), "ictq_workers_alive") == 1, timeout=20, what="a live worker")
    live.send_signal(signal.SIGTERM)
    assert live.wait(timeout=15) == 0
    code, err = exporter.stop()
    assert code == 0 and err == ""


def test_a_lost_database_reads_up_zero_and_the_endpoint_keeps_serving(app: App) -> None:
    if app.dialect == "sqlite":  # an open SQLite file cannot go away: break the schema instead
        served = Exporter(app)
        try:
            assert value(served.scrape(), "ictq_up") == 1
            storage = app.storage()
            with storage._translated():
                storage.connection.cursor().execute("DROP TABLE ictq_workers")
            assert value(served.scrape(), "ictq_up") == 0
            assert app.ictq("migrate").returncode == 0
            wait_for(lambda: value(served.scrape(), "ictq_up") == 1, what="ictq_up back to 1")
        finally:
            code, err = served.stop()
        assert code == 0
    else:
        proxy = TcpProxy(app.values["DB_HOST"], int(app.values["DB_PORT"]))
        proxy.start()
        app.write_env(DB_HOST="127.0.0.1", DB_PORT=str(proxy.port))
        served = Exporter(app)
        try:
            app.client().dispatch("test.record", {"n": 1})
            assert value(served.scrape(), "ictq_queue_jobs", queue="default", state="pending") == 1
            proxy.stop()
            down = served.scrape()
            assert value(down, "ictq_up") == 0 and ("ictq_queue_jobs", frozenset()) not in down
            proxy.start()
            wait_for(lambda: value(served.scrape(), "ictq_up") == 1, what="ictq_up back to 1")
        finally:
            code, err = served.stop()
        assert code == 0
    lines = err.strip().splitlines()
    assert len(lines) == 2, err
    assert " metrics-database-error " in lines[0] and " metrics-database-restored" in lines[1]


def test_once_prints_the_page_and_bad_listen_is_one_line(sqlite_app: App) -> None:
    result = sqlite_app.ictq("metrics", "--once")
    assert result.returncode == 0 and value(parse(result.stdout), "ictq_up") == 1
    port = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        taken = sqlite_app.ictq("metrics", "--listen", f"127.0.0.1:{port}")
    assert taken.returncode == 1 and taken.stderr.startswith("ictq: error: cannot listen on 127.0.0.1:")
    storage = sqlite_app.storage()
    with storage._translated():
        storage.connection.cursor().execute("DROP TABLE ictq_worker_stats")
    broken = sqlite_app.ictq("metrics", "--once")
    assert broken.returncode == 1 and value(parse(broken.stdout), "ictq_up") == 0
    assert broken.stderr.startswith("ictq: error: the database did not answer: ") and "ictq migrate" in broken.stderr
    assert len(broken.stderr.strip().splitlines()) == 1
    bad = sqlite_app.ictq("metrics", "--listen", "here")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "HOST:PORT" in bad.stderr
