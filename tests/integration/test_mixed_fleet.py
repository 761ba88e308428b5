"""Mixed fleets, proven with Laravel itself: the real Laravel application of tests/laravel_app
(Laravel 8.83 on PHP 8.2) and ictq share one .env, one database and its jobs and failed_jobs
tables, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

import tests.support.jobs  # noqa: F401 - registers the test jobs for the in-process client
from tests.support.app import count_rows, rows, wait_for
from tests.support.laravel_app import LaravelApp, laravel_app
from tests.support.smtp import SmtpServer, smtp_fixture, smtp_servers_fixture  # noqa: F401 - fixtures

PHP_DRAIN = ("queue:work", "database", "--stop-when-empty", "--tries=1", "--sleep=1")


@pytest.fixture
def laravel(dialect: str, tmp_path: Path) -> Iterator[LaravelApp]:
    with laravel_app(dialect, tmp_path / "app") as application:
        yield application


def drain_php(app: LaravelApp, queue: str) -> str:
    """Run one ``php artisan queue:work`` until the queue is empty; return what it printed."""
    done = app.php(*PHP_DRAIN, f"--queue={queue}", timeout=180)
    return done.stdout


def drain_ictq(app: LaravelApp, queue: str) -> None:
    done = app.ictq("work", "--queue", queue, "--stop-when-empty", "--sleep", "0.1", timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr


def failed_rows(app: LaravelApp) -> list[tuple[int, str, str, str]]:
    """``(id, uuid, queue, payload)`` of every failed job, oldest first."""
    with closing(app.storage()) as storage:
        return [(int(r[0]), str(r[1]), str(r[2]), str(r[3]))
                for r in rows(storage, "SELECT id, uuid, queue, payload FROM failed_jobs ORDER BY id")]


def job_payloads(app: LaravelApp, queue: str) -> list[str]:
    with closing(app.storage()) as storage:
        return [str(r[0]) for r in rows(storage, f"SELECT payload FROM jobs WHERE queue = '{queue}' ORDER BY id")]


def table_count(app: LaravelApp, table: str, where: str = "1=1") -> int:
    with closing(app.storage()) as storage:
        return count_rows(storage, table, where)


def _columns(app: LaravelApp, table: str) -> str:
    with closing(app.storage()) as storage:
        if app.dialect == "sqlite":
            found = rows(storage, f"SELECT name, type, \"notnull\" FROM pragma_table_info('{table}') ORDER BY cid")
        elif app.dialect == "pgsql":
            found = rows(storage, "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                                  f"WHERE table_name = '{table}' ORDER BY ordinal_position")
        else:
            found = rows(storage, "SELECT column_name, column_type, is_nullable FROM information_schema.columns "
                                  f"WHERE table_schema = DATABASE() AND table_name = '{table}' "
                                  "ORDER BY ordinal_position")
    return repr(found)


# -- adoption and ops commands on PHP rows -------------------------------------------------------

def test_ictq_adopts_the_tables_laravel_made_and_leaves_them_as_laravel_made_them(dialect: str, tmp_path: Path
                                                                                   ) -> None:
    with laravel_app(dialect, tmp_path / "app", adopt=False) as app:
        before = {table: _columns(app, table) for table in ("jobs", "failed_jobs")}
        for _ in range(2):  # idempotent
            adopted = app.ictq("migrate")
            assert adopted.returncode == 0, adopted.stdout + adopted.stderr
        assert {table: _columns(app, table) for table in ("jobs", "failed_jobs")} == before
        assert "Nothing to migrate" in app.php("migrate", "--force").stdout
        if dialect == "sqlite":  # Laravel's rollback journal stays (see test_sqlite_* below)
            with sqlite3.connect(app.settings.db.database) as conn:
                assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        # Both sides dispatch into the adopted tables and each drains its own.
        app.php("app:dispatch", "ok", "--count=3", "--queue=php", "--tag=adopt")
        app.client().dispatch("test.record", {"n": 1}, queue="py")
        assert "Processed:  App\\Jobs\\Record" in drain_php(app, "php")
        drain_ictq(app, "py")
        assert sorted(app.php_ran()) == ["adopt-1", "adopt-2", "adopt-3"]
        assert app.executions() == ["1"]
        assert table_count(app, "jobs") == 0


def test_every_ictq_ops_command_reads_and_handles_php_rows(laravel: LaravelApp) -> None:
    app = laravel
    app.php("app:dispatch", "ok", "--count=2", "--queue=php", "--tag=ok")
    app.php("app:dispatch", "fail", "--count=2", "--queue=php", "--tag=bad")
    size = json.loads(app.ictq("size", "--queue", "php", "--json").stdout)
    assert [(q["queue"], q["pending"]) for q in size["queues"]] == [("php", 4)]
    listed = app.ictq("list", "--queue", "php")
    assert listed.returncode == 0 and listed.stdout.count("App\\Jobs\\Record") == 2, listed.stdout
    assert listed.stdout.count("App\\Jobs\\Fails") == 2
    drain_php(app, "php")
    assert sorted(app.php_ran()) == ["ok-1", "ok-2"]

    failed = app.ictq("failed")
    assert failed.returncode == 0 and failed.stdout.count("App\\Jobs\\Fails") == 2, failed.stdout
    assert "deliberate failure of bad-1" in failed.stdout
    grouped = app.ictq("failed", "--group")
    assert grouped.returncode == 0 and "App\\Jobs\\Fails" in grouped.stdout and " 2 " in f" {grouped.stdout} "
    shown = app.ictq("failed", "--json")
    entries = json.loads(shown.stdout)
    assert {entry["name"] for entry in entries} == {"App\\Jobs\\Fails"}

    (first_id, first_uuid, _, first_payload), (second_id, _, _, _) = failed_rows(app)
    detail = app.ictq("failed", "show", str(first_id))
    assert detail.returncode == 0 and "RuntimeException" in detail.stdout and "#0 " in detail.stdout, detail.stdout
    status = app.ictq("status")
    assert status.returncode == 0 and "php" in status.stdout, status.stdout
    health = app.ictq("health", "--max-failed-per-hour", "10", "--min-workers", "0")  # PHP workers leave no beat
    assert health.returncode == 0 and health.stdout.startswith("ICTQ OK") and "failed_1h=2;" in health.stdout
    metrics = app.ictq("metrics", "--once")
    assert metrics.returncode == 0 and 'queue="php"' in metrics.stdout, metrics.stdout[:500]
    retried = app.ictq("retry", first_uuid)
    assert retried.returncode == 0, retried.stderr
    assert job_payloads(app, "php") == [first_payload]  # byte for byte: PHP runs it as it was
    forgot = app.ictq("forget", str(second_id))
    assert forgot.returncode == 0 and table_count(app, "failed_jobs") == 0
    drain_php(app, "php")  # the retried job ran (and failed) in PHP again
    (again_id, again_uuid, _, _), = failed_rows(app)
    assert again_uuid == first_uuid and again_id != first_id
    pruned = app.ictq("prune-failed", "--hours", "0")
    assert pruned.returncode == 0 and table_count(app, "failed_jobs") == 0
    app.php("app:dispatch", "ok", "--count=3", "--queue=php", "--tag=clear")
    cleared = app.ictq("clear", "--queue", "php", "--force")
    assert cleared.returncode == 0 and table_count(app, "jobs") == 0


def test_laravels_commands_handle_ictq_failed_rows(laravel: LaravelApp) -> None:
    app = laravel
    client = app.client()
    client.dispatch("test.boom", {"message": "first"}, queue="py")
    client.dispatch("test.boom", {"message": "second"}, queue="py")
    client.dispatch("test.boom", {"message": "third"}, queue="py")
    drain_ictq(app, "py")
    ids = failed_rows(app)
    assert len(ids) == 3
    listed = app.php("queue:failed").stdout
    assert listed.count("test.boom") == 3 and all(row[1] in listed for row in ids)
    app.php("queue:forget", ids[0][1])
    assert [row[1] for row in failed_rows(app)] == [ids[1][1], ids[2][1]]
    _wait_past(int(time.time()))  # Laravel prunes rows failed before now, to the second
    app.php("queue:prune-failed", "--hours=0")
    assert table_count(app, "failed_jobs") == 0
    client.dispatch("test.boom", {"message": "fourth"}, queue="py")
    drain_ictq(app, "py")
    app.php("queue:flush")
    assert table_count(app, "failed_jobs") == 0


# -- retries both ways ----------------------------------------------------------------------------

def test_ictq_retry_puts_a_php_job_back_for_php_workers(laravel: LaravelApp) -> None:
    app = laravel
    broken = app.root / "storage" / "app" / "broken"
    broken.touch()
    app.php("app:dispatch", "ok", "--queue=php", "--tag=back")
    drain_php(app, "php")
    assert app.php_ran() == [] and len(failed_rows(app)) == 1
    broken.unlink()
    retried = app.ictq("retry", "all")
    assert retried.returncode == 0 and "re-queued 1 failed job(s)" in retried.stdout, retried.stderr
    drain_php(app, "php")
    assert app.php_ran() == ["back-1"] and table_count(app, "failed_jobs") == 0


def test_php_queue_retry_of_an_ictq_job_runs_in_ictq_whatever_php_did_to_its_json(laravel: LaravelApp) -> None:
    """PHP decodes JSON objects to arrays and writes an empty one back as [] (issue: "data":[])."""
    app = laravel
    (app.out / "broken").touch()
    client = app.client()
    client.dispatch("test.gate", {}, queue="py")
    client.dispatch("test.gate", {"tag": "nested", "meta": {}}, queue="py")
    client.dispatch("test.gate", {"tag": "full", "meta": {"a": 1}}, queue="py")
    drain_ictq(app, "py")
    assert len(failed_rows(app)) == 3
    (app.out / "broken").unlink()
    app.php("queue:retry", "all")
    payloads = job_payloads(app, "py")
    assert len(payloads) == 3 and any('"data":[]' in text for text in payloads), payloads
    drain_ictq(app, "py")
    assert sorted(app.executions("gate")) == ["-:NoneType", "full:dict", "nested:list"]
    assert table_count(app, "failed_jobs") == 0 and table_count(app, "jobs") == 0


def _wait_past(deadline: int) -> None:
    wait_for(lambda: time.time() > deadline + 1, timeout=30, what=f"the clock past {deadline}")


def _failed_past_its_deadline(app: LaravelApp, tag: str) -> tuple[int, str]:
    """A PHP job with ``retryUntil`` (one second) that failed, once its deadline has passed and
    it would run again: ``(failed job id, payload)``."""
    broken = app.root / "storage" / "app" / "broken"
    broken.touch()
    app.php("app:dispatch", "deadline", "--queue=php", f"--tag={tag}", "--window=1")
    drain_php(app, "php")
    (failed_id, _, _, payload), = failed_rows(app)
    _wait_past(json.loads(payload)["retryUntil"])
    broken.unlink()
    return failed_id, payload


def test_a_php_job_past_its_retry_until_is_refused_unless_given_a_new_deadline(laravel: LaravelApp) -> None:
    app = laravel
    failed_id, _ = _failed_past_its_deadline(app, "late")

    refused = app.ictq("retry", str(failed_id))
    assert refused.returncode == 1
    assert "php artisan queue:retry" in refused.stderr and "--deadline" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr
    assert [row[0] for row in failed_rows(app)] == [failed_id] and table_count(app, "jobs") == 0

    before = int(time.time())
    renewed = app.ictq("retry", str(failed_id), "--deadline", "120")
    assert renewed.returncode == 0, renewed.stderr
    (text,) = job_payloads(app, "php")
    assert json.loads(text)["retryUntil"] >= before + 120
    drain_php(app, "php")
    assert app.php_ran() == ["late-1"] and table_count(app, "failed_jobs") == 0


def test_without_the_fix_php_fails_a_job_put_back_with_its_old_deadline(laravel: LaravelApp) -> None:
    """The breakage itself, with Laravel: a payload put back byte for byte fails on arrival."""
    app = laravel
    failed_id, payload = _failed_past_its_deadline(app, "stale")
    # What ictq retry did before: the failed row out, the payload back byte for byte.
    assert app.ictq("forget", str(failed_id)).returncode == 0
    _push(app, "php", payload)
    drain_php(app, "php")
    assert app.php_ran() == []
    (exception,) = _exceptions(app)
    assert "MaxAttemptsExceededException" in exception and "too many times or run too long" in exception


def _push(app: LaravelApp, queue: str, payload: str) -> None:
    from ictq.db.jobs import JobsRepository

    with closing(app.storage()) as storage:
        JobsRepository(storage).requeue(queue, payload, int(time.time()))


def _exceptions(app: LaravelApp) -> list[str]:
    with closing(app.storage()) as storage:
        return [str(r[0]) for r in rows(storage, "SELECT exception FROM failed_jobs ORDER BY id")]


def test_an_ictq_job_with_retry_until_gets_its_window_again_on_retry(laravel: LaravelApp) -> None:
    app = laravel
    (app.out / "broken").touch()
    app.client().dispatch("test.deadline", {"tag": "window"}, queue="py")
    drain_ictq(app, "py")
    (failed_id, _, _, payload), = failed_rows(app)
    fields = json.loads(payload)
    assert fields["retryUntil"] - fields["createdAt"] == 2
    _wait_past(fields["retryUntil"])
    (app.out / "broken").unlink()
    before = int(time.time())
    retried = app.ictq("retry", str(failed_id))
    assert retried.returncode == 0, retried.stderr
    (text,) = job_payloads(app, "py")
    renewed = json.loads(text)
    assert renewed["retryUntil"] - renewed["createdAt"] == 2 and renewed["createdAt"] >= before
    assert {k: v for k, v in renewed.items() if k not in ("retryUntil", "createdAt")} == \
        {k: v for k, v in fields.items() if k not in ("retryUntil", "createdAt")}
    drain_ictq(app, "py")
    assert app.executions("deadline") == ["window"]


# -- workers side by side -------------------------------------------------------------------------

@pytest.mark.parametrize("dialect", ["pgsql", "mysql"])
def test_php_and_ictq_workers_drain_their_queues_together_nothing_lost_nothing_twice(laravel: LaravelApp) -> None:
    app = laravel
    count = 150
    app.php("app:dispatch", "ok", f"--count={count}", "--queue=php", "--tag=php")
    app.client().dispatch_many("test.mark", [{"n": n} for n in range(count)], queue="py")
    workers = [app.php_worker("--queue=php", "--sleep=1", "--tries=1") for _ in range(2)]
    workers += [app.worker("--queue", "py", "--sleep", "0.1") for _ in range(2)]
    wait_for(lambda: table_count(app, "jobs") == 0, timeout=240, what="both queues drained")
    for worker in workers:
        LaravelApp.stop(worker)
    assert sorted(app.php_ran()) == sorted(f"php-{n}" for n in range(1, count + 1))
    marks = [line.split(":")[0] for line in app.executions("marks")]
    assert sorted(marks, key=int) == [str(n) for n in range(count)]
    assert table_count(app, "failed_jobs") == 0
    assert "database is locked" not in app.laravel_log() and "Exception" not in app.laravel_log()


def test_an_ictq_worker_meeting_a_php_job_fails_it_with_a_reason_and_php_can_take_it_back(
        laravel: LaravelApp, smtp: SmtpServer) -> None:
    app = laravel
    app.write_env(MAIL_MAILER="smtp", MAIL_HOST="127.0.0.1", MAIL_PORT=str(smtp.port))
    to = f"user-{uuid.uuid4().hex[:8]}@example.com"
    app.php("app:dispatch", "reset", "--queue=shared", f"--to={to}")
    app.client().dispatch("test.record", {"n": 7}, queue="shared")
    drain_ictq(app, "shared")
    assert app.executions() == ["7"]  # it carried on after the PHP job
    (_, job_uuid, queue, _), = failed_rows(app)
    (exception,) = _exceptions(app)
    assert queue == "shared" and "App\\Notifications\\ResetPassword is a Laravel (PHP) job" in exception
    app.php("queue:retry", job_uuid)
    drain_php(app, "shared")
    (received,) = smtp.wait_for(1)
    assert received.message["To"] == to and received.message["Subject"] == "Reset Password Notification"
    assert "reset-password/" in received.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert table_count(app, "failed_jobs") == 0 and table_count(app, "jobs") == 0


# -- one restart, one pause for both kinds of worker ----------------------------------------------

def _ran_once(app: LaravelApp, queue: str) -> None:
    """Make sure a PHP worker on ``queue`` is in its loop (it read the restart signal at start)."""
    tag = f"ready{uuid.uuid4().hex[:6]}"
    app.php("app:dispatch", "ok", f"--queue={queue}", f"--tag={tag}")
    wait_for(lambda: f"{tag}-1" in app.php_ran(), timeout=60, what="the PHP worker ran a job")


def _start_workers(app: LaravelApp, php: bool, ictq: bool) -> list[subprocess.Popen[str]]:
    """A PHP worker on ``php`` and/or an ictq worker on ``py``, each past its first job."""
    workers = []
    if php:
        workers.append(app.php_worker("--queue=php", "--sleep=1"))
        _ran_once(app, "php")
    if ictq:
        workers.append(app.worker("--queue", "py", "--sleep", "0.1"))
        done = len(app.executions())
        app.client().dispatch("test.record", {"n": done + 1}, queue="py")
        wait_for(lambda: len(app.executions()) > done, timeout=60, what="the ictq worker ran a job")
    return workers


@pytest.mark.parametrize("store", ["file", "database", "redis"])
def test_one_restart_command_stops_php_and_ictq_workers_alike(dialect: str, store: str, tmp_path: Path) -> None:
    """On SQLite the two kinds never run together (test_sqlite_*): each is checked alone."""
    prefix = f"ictq_test_{uuid.uuid4().hex[:10]}_"
    together = dialect != "sqlite"
    with laravel_app(dialect, tmp_path / "app", CACHE_DRIVER=store, REDIS_PREFIX=prefix) as app:
        try:
            workers = _start_workers(app, php=True, ictq=together)
            restarted = app.ictq("restart")
            assert restarted.returncode == 0 and f"through its {store} cache" in restarted.stdout, restarted.stderr
            assert [worker.wait(timeout=60) for worker in workers] == [0] * len(workers)
            stamp = json.loads(app.php("app:cache-get", "illuminate:queue:restart").stdout)
            assert int(stamp) >= int(time.time()) - 120
            status = json.loads(app.ictq("status", "--json").stdout)["laravel"]
            assert status["store"] == store and status["reachable"] and status["restart_requested_at"]

            workers = _start_workers(app, php=together, ictq=True)
            wait_for(lambda: time.time() >= int(stamp) + 1, timeout=30, what="a new second for queue:restart")
            assert "Broadcasting queue restart signal" in app.php("queue:restart").stdout
            assert [worker.wait(timeout=60) for worker in workers] == [0] * len(workers)
            assert "restart requested (php artisan queue:restart)" in app.log_text()
        finally:
            if store == "redis":
                import redis

                client = redis.Redis(db=1)
                client.delete(*client.keys(f"{prefix}*"))


def test_a_pause_reaches_laravel_and_laravels_pause_reaches_ictq_workers(laravel: LaravelApp) -> None:
    app = laravel
    key = "illuminate:queue:paused:database:{}"
    assert app.ictq("pause", "php").returncode == 0
    assert app.php("app:cache-get", key.format("php")).stdout.strip() == "true"
    resumed = app.ictq("resume", "php")
    assert resumed.returncode == 0 and "resumed php" in resumed.stdout
    assert app.php("app:cache-get", key.format("php")).stdout.strip() == "null"

    app.php("app:cache-put", key.format("py"), "true")  # what Laravel 11's queue:pause database:py stores
    client = app.client()
    client.dispatch("test.record", {"n": 1}, queue="py")
    client.dispatch("test.record", {"n": 2}, queue="other")
    worker = app.worker("--queue", "py,other", "--sleep", "0.1")
    wait_for(lambda: app.executions() == ["2"], timeout=60, what="the job of the queue not paused")
    assert table_count(app, "jobs", "queue = 'py' AND reserved_at IS NULL") == 1
    app.php("cache:forget", key.format("py"))
    wait_for(lambda: app.executions() == ["2", "1"], timeout=60, what="the paused queue's job after resume")
    LaravelApp.stop(worker)


# -- SQLite: ictq workers refuse to share the file with PHP workers -------------------------------

def test_sqlite_ictq_workers_refuse_to_run_beside_php_workers(tmp_path: Path) -> None:
    with laravel_app("sqlite", tmp_path / "app") as app:
        php = app.php_worker("--queue=php", "--sleep=1")
        _ran_once(app, "php")
        refused = app.ictq("work", "--queue", "py", "--once")
        assert refused.returncode != 0 and "Traceback" not in refused.stderr
        assert re.fullmatch(r"ictq: error: PHP queue workers use this SQLite database too \(php artisan "
                            rf"queue:work, pid {php.pid}\): .*PostgreSQL or MariaDB\n", refused.stderr), refused.stderr
        LaravelApp.stop(php)

        # An ictq worker already running when PHP workers start stops by itself, leaving nothing
        # reserved, and says why.
        app.client().dispatch_many("test.record", [{"n": n} for n in range(20)], queue="py")
        ictq = app.worker("--queue", "py", "--sleep", "0.1")
        wait_for(lambda: len(app.executions()) == 20, timeout=60, what="the ictq worker drained its queue")
        php = app.php_worker("--queue=php", "--sleep=1")
        assert ictq.wait(timeout=60) == 1
        assert "PHP queue workers use this SQLite database too" in app.log_text()
        assert table_count(app, "jobs", "reserved_at IS NOT NULL") == 0
        LaravelApp.stop(php)


def test_sqlite_laravels_file_keeps_its_journal_and_php_workers_alone_drain_it(tmp_path: Path) -> None:
    with laravel_app("sqlite", tmp_path / "app") as app:
        app.client().dispatch("test.record", {"n": 1}, queue="py")
        drain_ictq(app, "py")  # ictq's own connections too leave Laravel's journal mode alone
        with sqlite3.connect(app.settings.db.database) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        app.php("app:dispatch", "ok", "--count=50", "--queue=php", "--tag=alone")
        drain_php(app, "php")
        assert sorted(app.php_ran(), key=lambda tag: int(tag.split("-")[1])) == [f"alone-{n}" for n in range(1, 51)]
        assert table_count(app, "jobs") == 0
