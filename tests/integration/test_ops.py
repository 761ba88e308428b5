"""The ops commands, run as ops run them (``ictq ...`` processes), on each database."""

from __future__ import annotations

import json
import signal
from datetime import datetime, timedelta, timezone

import pytest

from ictq.db import NewJob
from tests.support import laravel
from tests.support.app import App, count_rows, rows, wait_for
from tests.support.failed import Failure, add_failed, add_failures


def ok(app: App, *args: str) -> str:
    result = app.ictq(*args)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def test_size_counts_pending_delayed_reserved_and_failed(app: App) -> None:
    client = app.client()
    client.dispatch_many("test.record", [{"n": i} for i in range(3)])
    client.dispatch("test.record", {"n": 9}, delay=600)
    client.dispatch("test.record", {"n": 10}, queue="emails")
    storage = app.storage()
    import time

    storage.claim("default", int(time.time()), 90, 1)
    add_failed(storage, laravel.job_payload()[1], laravel.php_exception(), queue="emails")
    data = json.loads(ok(app, "size", "--json"))
    by_queue = {q["queue"]: q for q in data["queues"]}
    assert {k: by_queue["default"][k] for k in ("pending", "delayed", "reserved", "size", "failed")} == {
        "pending": 2, "delayed": 1, "reserved": 1, "size": 4, "failed": 0}
    assert (by_queue["emails"]["pending"], by_queue["emails"]["failed"]) == (1, 1)
    assert data["total"]["size"] == 5 and data["total"]["failed"] == 1
    text = ok(app, "size", "--queue", "emails")
    assert text.splitlines()[0].split() == ["queue", "size", "pending", "delayed", "reserved", "oldest", "failed",
                                            "failed/1h"]
    assert text.splitlines()[1].split()[:4] == ["emails", "1", "1", "0"]


def test_list_shows_laravels_display_name_and_states(app: App) -> None:
    storage = app.storage()
    _, php = laravel.notification_payload()
    storage.push(NewJob("default", php, 0, 0))
    app.client().dispatch("test.record", {"n": 1}, delay=300)
    listed = json.loads(ok(app, "list", "--json"))
    assert [(j["name"], j["state"]) for j in listed] == [
        ("Illuminate\\Auth\\Notifications\\ResetPassword", "pending"), ("test.record", "delayed")]
    assert listed[1]["available_in"] > 250
    delayed = json.loads(ok(app, "list", "--state", "delayed", "--json"))
    assert [j["name"] for j in delayed] == ["test.record"]
    assert "ResetPassword" in ok(app, "list")


def test_clear_keeps_running_jobs_unless_told(app: App) -> None:
    import time

    app.client().dispatch_many("test.record", [{"n": i} for i in range(4)])
    app.client().dispatch("test.record", {"n": 9}, queue="other")
    app.storage().claim("default", int(time.time()), 90, 1)
    refused = app.ictq("clear")
    assert refused.returncode != 0 and "--force" in refused.stderr
    assert "cleared 3 job(s) from default (reserved jobs kept)" in ok(app, "clear", "--force")
    assert count_rows(app.storage(), "jobs") == 2
    assert "cleared 1 job(s)" in ok(app, "clear", "--force", "--include-reserved")
    assert rows(app.storage(), "SELECT queue FROM jobs") == [("other",)]


def test_failed_lists_and_shows_php_and_python_failures(app: App) -> None:
    storage = app.storage()
    _, php = laravel.job_payload()
    add_failed(storage, php, laravel.php_exception(), queue="emails")
    app.client().dispatch("test.boom", {"message": "kaput"})
    assert app.ictq("work", "--stop-when-empty").returncode == 0
    listed = json.loads(ok(app, "failed", "--json"))
    assert [(f["name"], f["queue"]) for f in listed] == [
        ("test.boom", "default"), ("App\\Jobs\\SendWelcomeEmail", "emails")]
    assert listed[1]["exception"].startswith("Symfony\\Component\\Mailer\\Exception\\TransportException: Connection")
    assert "Stack trace" not in listed[1]["exception"]
    assert [f["name"] for f in json.loads(ok(app, "failed", "--queue", "emails", "--json"))] == [
        "App\\Jobs\\SendWelcomeEmail"]
    shown = ok(app, "failed", "show", listed[1]["uuid"])
    assert "#5 {main}" in shown and php in shown
    assert json.loads(ok(app, "failed", "show", str(listed[0]["id"]), "--json"))["exception"].startswith(
        "builtins.ValueError: kaput")
    missing = app.ictq("failed", "show", "12345")
    assert missing.returncode == 1 and missing.stderr.strip() == "ictq: error: no failed job with id 12345"


def test_retry_puts_a_laravel_job_back_byte_for_byte(app: App) -> None:
    storage = app.storage()
    job_uuid, php = laravel.notification_payload()
    add_failed(storage, php, laravel.php_exception())
    out = ok(app, "retry", job_uuid)
    assert "re-queued 1 failed job(s)" in out and "ResetPassword" in out
    ((payload, attempts, reserved_at, queue),) = rows(storage, "SELECT payload, attempts, reserved_at, queue FROM jobs")
    assert payload == php and (attempts, reserved_at, queue) == (0, None, "default")
    assert count_rows(storage, "failed_jobs") == 0


def test_retry_all_range_and_queue(app: App) -> None:
    storage = app.storage()
    for i in range(6):
        add_failed(storage, laravel.job_payload()[1], f"E{i}", queue="emails" if i % 2 else "default")
    ids = [row[0] for row in rows(storage, "SELECT id FROM failed_jobs ORDER BY id")]
    assert "re-queued 2 failed job(s)" in ok(app, "retry", "--range", f"{ids[0]}-{ids[2]}", "--queue", "default")
    assert "re-queued 3 failed job(s)" in ok(app, "retry", "all", "--queue", "emails")
    assert "re-queued 1 failed job(s)" in ok(app, "retry", "all")
    assert count_rows(storage, "failed_jobs") == 0 and count_rows(storage, "jobs") == 6
    bad = app.ictq("retry")
    assert bad.returncode == 2 and "say 'all'" in bad.stderr


def test_forget_and_flush(app: App) -> None:
    storage = app.storage()
    old = datetime.now(timezone.utc) - timedelta(hours=30)
    for i in range(4):
        add_failed(storage, laravel.job_payload()[1], f"E{i}", failed_at=old if i < 2 else None)
    first_uuid = rows(storage, "SELECT uuid FROM failed_jobs ORDER BY id")[0][0]
    assert "forgot failed job" in ok(app, "forget", first_uuid)
    assert "deleted 1 failed job(s) older than 24h" in ok(app, "flush", "--hours", "24")
    assert "deleted 2 failed job(s)" in ok(app, "flush")
    assert count_rows(storage, "failed_jobs") == 0


def test_prune_failed_on_100k_rows(app: App) -> None:
    storage = app.storage()
    now = datetime.now(timezone.utc)
    text = '{"uuid":"%s","displayName":"x","job":"x","data":{}}'
    add_failures(storage, (Failure(text % f"u-{i}", "E", failed_at=now - timedelta(hours=48 if i % 2 else 1))
                           for i in range(100_000)))
    assert "pruned 50000 failed job(s) older than 24h" in ok(app, "prune-failed", "--hours=24")
    assert count_rows(storage, "failed_jobs") == 50_000


def test_restart_is_obeyed_by_every_worker_after_its_job(app: App) -> None:
    app.client().dispatch("test.slow", {"n": 1, "seconds": 2})
    busy = app.worker("--sleep", "0.1", "--name", "busy")
    wait_for(lambda: app.executions("started"), what="the job to start")
    idle = app.worker("--sleep", "0.1", "--name", "idle")
    wait_for(lambda: "worker=idle pid" in app.log_text(), what="the idle worker")
    ok(app, "restart")
    assert idle.wait(timeout=15) == 0 and busy.wait(timeout=15) == 0
    assert app.executions("record") == ["1"]
    assert app.log_text().count('reason="restart requested (ictq restart)"') == 2
    later = app.worker("--sleep", "0.1", "--name", "later")
    app.client().dispatch("test.record", {"n": 2})
    wait_for(lambda: app.executions("record") == ["1", "2"], what="a worker started after the restart")
    assert later.poll() is None
    later.send_signal(signal.SIGTERM)
    assert later.wait(timeout=15) == 0
    assert "last restart signal: 20" in ok(app, "status")


def test_pause_and_resume_a_queue_across_workers(app: App) -> None:
    # Paused before the worker starts (it reads the flags at start-up, then at most once a
    # second): waiting for a re-read would depend on the machine's pace.
    assert "paused emails" in ok(app, "pause", "emails")
    proc = app.worker("--queue", "emails,default", "--sleep", "0.1")
    wait_for(lambda: "worker-started" in app.log_text(), what="the worker")
    import time

    client = app.client()
    client.dispatch("test.record", {"n": 1}, queue="emails")
    client.dispatch("test.record", {"n": 2}, queue="default")
    wait_for(lambda: app.executions() == ["2"], what="the default queue")
    time.sleep(1.0)
    assert app.executions() == ["2"]
    assert "paused queues: emails" in ok(app, "status")
    assert "resumed emails" in ok(app, "resume", "emails")
    wait_for(lambda: app.executions() == ["2", "1"], what="the resumed queue")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0


def test_monitor_exits_non_zero_over_max(app: App) -> None:
    app.client().dispatch_many("test.record", [{"n": i} for i in range(3)], queue="emails")
    fine = app.ictq("monitor", "emails,default", "--max=5")
    assert fine.returncode == 0 and fine.stdout.startswith("OK   emails: size=3 pending=3")
    over = app.ictq("monitor", "emails", "--max=2")
    assert over.returncode == 1 and over.stdout.startswith("OVER emails: size=3")


def test_php_jobs_are_left_alone_on_other_queues_and_failed_on_ours(app: App) -> None:
    storage = app.storage()
    _, on_theirs = laravel.job_payload()
    _, on_ours = laravel.notification_payload()
    storage.push(NewJob("php", on_theirs, 0, 0))
    storage.push(NewJob("default", on_ours, 0, 0))
    assert app.ictq("work", "--stop-when-empty").returncode == 0
    assert rows(storage, "SELECT queue, payload, attempts FROM jobs") == [("php", on_theirs, 0)]
    (reason,) = rows(storage, "SELECT exception FROM failed_jobs")[0]
    assert "Illuminate\\Auth\\Notifications\\ResetPassword is a Laravel (PHP) job" in reason


@pytest.mark.parametrize("command", ["size", "list", "failed", "status", "monitor default", "restart"])
def test_ops_commands_need_migrated_tables_and_say_so(sqlite_app: App, command: str) -> None:
    storage = sqlite_app.storage()
    for table in ("jobs", "failed_jobs", "ictq_control"):
        storage.connection.cursor().execute(f"DROP TABLE {table}")
    result = sqlite_app.ictq(*command.split())
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().endswith("(run: ictq migrate)")
