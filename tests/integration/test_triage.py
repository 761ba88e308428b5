"""Failed-job triage on each database: real workers fail real jobs; ops group, retry and forget."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from tests.support import laravel
from tests.support.app import App, count_rows, rows
from tests.support.failed import add_failed


def ok(app: App, *args: str) -> str:
    result = app.ictq(*args)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def grouped(app: App, *args: str) -> list[dict[str, object]]:
    return list(json.loads(ok(app, "failed", "--group", "--json", *args)))


def make_failures(app: App) -> None:
    """5 x ValueError (different numbers), 2 x another message, 1 unknown job, 1 Laravel failure."""
    client = app.client()
    client.dispatch_many("test.boom", [{"message": f"order {1000 + i} not found for 10.0.0.{i}"} for i in range(5)])
    client.dispatch_many("test.boom", [{"message": f"card declined after {i}.5s"} for i in range(2)])
    client.dispatch("test.boom", {"message": "order 9 not found for 10.0.0.9"}, queue="emails")
    storage = app.storage()
    add_failed(storage, laravel.job_payload()[1], laravel.php_exception(),
               failed_at=datetime.now(timezone.utc) - timedelta(hours=2), uuid="php-1")
    result = app.ictq("work", "--stop-when-empty", "--queue", "default,emails")
    assert result.returncode == 0, result.stderr
    assert count_rows(storage, "failed_jobs") == 9


def test_failed_group_counts_signatures_with_first_and_last_seen(app: App) -> None:
    make_failures(app)
    groups = grouped(app)
    summary = [(g["job"], g["signature"], g["count"]) for g in groups]
    assert summary[0] == ("test.boom", "builtins.ValueError: order <n> not found for <ip>", 6)
    assert ("test.boom", "builtins.ValueError: card declined after <n>s", 2) in summary
    php = [g for g in groups if g["job"] == "App\\Jobs\\SendWelcomeEmail"]
    assert len(php) == 1 and str(php[0]["signature"]).startswith(
        "Symfony\\Component\\Mailer\\Exception\\TransportException: Connection could not be established")
    assert groups[0]["queues"] == ["default", "emails"]
    assert str(groups[0]["first_seen"]) <= str(groups[0]["last_seen"])
    assert str(php[0]["first_seen"]) < str(groups[0]["first_seen"])  # two hours older
    assert [g["count"] for g in grouped(app, "--queue", "emails")] == [1]
    text = ok(app, "failed", "--group")
    assert text.splitlines()[0].split()[:3] == ["group", "count", "job"]
    assert f"{groups[0]['group']}  6" in text


def test_retry_a_group_with_dry_run_first(app: App) -> None:
    make_failures(app)
    big = grouped(app)[0]
    storage = app.storage()
    dry = ok(app, "retry", "--group", str(big["group"]), "--dry-run")
    assert dry.count("would re-queue failed job") == 6 and "would re-queue 6 failed job(s) (dry run)" in dry
    assert count_rows(storage, "failed_jobs") == 9 and count_rows(storage, "jobs") == 0
    assert "re-queued 6 failed job(s)" in ok(app, "retry", "--group", str(big["group"])[:6])
    assert count_rows(storage, "failed_jobs") == 3 and count_rows(storage, "jobs") == 6
    assert sorted(r[0] for r in rows(storage, "SELECT queue FROM jobs")) == ["default"] * 5 + ["emails"]
    assert all(g["group"] != big["group"] for g in grouped(app))
    # the jobs run again (and fail again: the same group comes back, with the same id)
    assert app.ictq("work", "--stop-when-empty", "--queue", "default,emails").returncode == 0
    assert grouped(app)[0]["group"] == big["group"]


def test_forget_a_group_and_errors_are_one_line(app: App) -> None:
    make_failures(app)
    groups = {g["signature"]: g for g in grouped(app)}
    card = groups["builtins.ValueError: card declined after <n>s"]
    storage = app.storage()
    assert "would forget 2 failed job(s)" in ok(app, "forget", "--group", str(card["group"]), "--dry-run")
    assert count_rows(storage, "failed_jobs") == 9
    assert "forgot 2 failed job(s) of group" in ok(app, "forget", "--group", str(card["group"]))
    assert count_rows(storage, "failed_jobs") == 7
    for args, needle in ((("forget", "--group", "ffffffffff"), "no group of failed jobs with id ffffffffff"),
                         (("retry", "--group", "ab"), "too short"),
                         (("forget",), "name one failed job"),
                         (("forget", "1", "--group", "abcd"), "not both")):
        result = app.ictq(*args)
        assert result.returncode != 0 and needle in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert count_rows(storage, "failed_jobs") == 7
