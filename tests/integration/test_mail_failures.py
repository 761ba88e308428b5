"""How SMTP failures end: 4xx and lost connections retry with backoff, 5xx fail at once, and the
password never shows up anywhere."""

from __future__ import annotations

import re
import time
from pathlib import Path

import ictq.mail
from ictq.mail.errors import password_forms
from tests.support.app import App, count_rows, rows, wait_for
from tests.support.smtp import (  # noqa: F401 - fixtures
    WORKER_ARGS,
    Certificate,
    SmtpServer,
    certificate_fixture,
    smtp_fixture,
    smtp_servers_fixture,
    start_server,
    use_server,
)

TEMPORARY = "451 4.3.0 Mail server temporarily rejected message"


def queue_reset(app: App, to: str = "user@example.test") -> ictq.Dispatched:
    client = app.client()
    try:
        return ictq.mail.notify("password_reset", to, {"token": "tok"}, client=client)
    finally:
        client.close()


def job_lines(app: App, action: str, job: ictq.Dispatched) -> list[str]:
    return [line for line in app.log_text().splitlines() if f" {action} " in line and f"uuid={job.uuid}" in line]


def finished(app: App) -> bool:
    return count_rows(app.storage(), "jobs") == 0


def test_4xx_replies_release_the_job_until_the_server_takes_it(sqlite_app: App, smtp: SmtpServer) -> None:
    smtp.reply("DATA", TEMPORARY, TEMPORARY)
    use_server(sqlite_app, smtp)
    sqlite_app.worker(*WORKER_ARGS)
    job = queue_reset(sqlite_app)
    smtp.wait_for(1)
    wait_for(lambda: finished(sqlite_app), what="the job to be deleted")
    released = job_lines(sqlite_app, "released", job)
    assert len(released) == 2
    assert all("delay=1" in line and "451 4.3.0" in line for line in released)
    assert len(job_lines(sqlite_app, "mail-sent", job)) == 1
    assert "attempt=3" in job_lines(sqlite_app, "mail-sent", job)[0]
    assert count_rows(sqlite_app.storage(), "failed_jobs") == 0
    time.sleep(1.5)  # a wrongly repeated job would be back after the 1 s backoff
    assert len(smtp.received) == 1


def test_a_4xx_waits_for_the_notifications_backoff(sqlite_app: App, smtp: SmtpServer) -> None:
    smtp.reply("RCPT", "450 4.2.1 Mailbox busy")
    use_server(sqlite_app, smtp, MAIL_BACKOFF="")  # the built-in policy: 10 s after the first attempt
    sqlite_app.worker(*WORKER_ARGS)
    before = int(time.time())
    job = queue_reset(sqlite_app)
    wait_for(lambda: job_lines(sqlite_app, "released", job), what="the release")
    [(attempts, reserved_at, available_at)] = rows(
        sqlite_app.storage(), f"SELECT attempts, reserved_at, available_at FROM jobs WHERE id = {job.id}")
    assert attempts == 1 and reserved_at is None
    assert available_at >= before + 10
    assert "delay=10" in job_lines(sqlite_app, "released", job)[0]
    assert smtp.received == []


def test_4xx_until_the_tries_run_out_fails_with_the_servers_reply(sqlite_app: App, smtp: SmtpServer) -> None:
    smtp.reply("DATA", *[TEMPORARY] * 5)
    use_server(sqlite_app, smtp, MAIL_BACKOFF="0")
    sqlite_app.worker(*WORKER_ARGS)
    job = queue_reset(sqlite_app)
    wait_for(lambda: count_rows(sqlite_app.storage(), "failed_jobs") == 1, what="the failure")
    [(exception,)] = rows(sqlite_app.storage(), "SELECT exception FROM failed_jobs")
    assert TEMPORARY in exception and "attempt 5 of 5" in exception
    assert len(job_lines(sqlite_app, "released", job)) == 4
    assert smtp.received == [] and not smtp.replies["DATA"]


def test_a_5xx_reply_fails_the_job_at_once_with_the_reply(sqlite_app: App, smtp: SmtpServer) -> None:
    reply = "550 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown"
    smtp.rejected_rcpt["nobody@example.test"] = reply
    use_server(sqlite_app, smtp)
    sqlite_app.worker(*WORKER_ARGS)
    result = sqlite_app.ictq("test-email", "--email=nobody@example.test", "--wait", "30")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"failed mail.password_reset: recipient nobody@example.test refused: {reply}" in result.stdout
    assert "failed mail.account_activation" in result.stdout
    assert result.stderr.strip() == "ictq: error: a test e-mail failed (see above and failed_jobs)"
    exceptions = [r[0] for r in rows(sqlite_app.storage(), "SELECT exception FROM failed_jobs")]
    assert len(exceptions) == 2 and all(reply in text for text in exceptions)
    assert " released " not in sqlite_app.log_text()
    assert smtp.received == []


def test_a_server_that_is_down_gets_the_mail_once_it_is_back(sqlite_app: App, smtp: SmtpServer) -> None:
    use_server(sqlite_app, smtp)
    smtp.stop()
    sqlite_app.worker(*WORKER_ARGS)
    job = queue_reset(sqlite_app)
    wait_for(lambda: len(job_lines(sqlite_app, "released", job)) >= 2, what="two refused attempts")
    assert "Connection refused" in job_lines(sqlite_app, "released", job)[0]
    smtp.start()
    assert smtp.wait_for(1)[0].rcpt_tos == ("user@example.test",)
    wait_for(lambda: finished(sqlite_app), what="the job to be deleted")
    assert count_rows(sqlite_app.storage(), "failed_jobs") == 0
    assert len(smtp.received) == 1


def secrets_in(text: str, password: str) -> list[str]:
    return [form for form in password_forms("ict", password) if form in text]


def test_auth_failure_keeps_the_password_out_of_logs_and_failed_jobs(
    sqlite_app: App, smtp_servers: list[SmtpServer], certificate: Certificate
) -> None:
    right, wrong = "c0rrect-Horse-battery", "Wr0ng-Pa55word!"
    server = start_server(smtp_servers, "starttls", certificate, users={"ict": right})
    use_server(sqlite_app, server, MAIL_USERNAME="ict", MAIL_PASSWORD=wrong)
    worker = sqlite_app.worker(*WORKER_ARGS)
    result = sqlite_app.ictq("test-email", "--email=user@example.test", "--wait", "30")
    assert result.returncode == 1
    assert "SMTP authentication failed: 535" in result.stdout
    failed = [r[0] for r in rows(sqlite_app.storage(), "SELECT exception FROM failed_jobs")]
    assert [text.splitlines()[0] for text in failed] == [
        "ictq.errors.Fail: SMTP authentication failed: 535 5.7.8 Authentication credentials invalid"] * 2
    exceptions = "\n".join(failed)
    assert server.logins and not any(ok for _, ok in server.logins)
    worker.terminate()
    out, err = worker.communicate(timeout=20)
    everything = "\n".join([exceptions, sqlite_app.log_text(), result.stdout, result.stderr, out, err,
                            *(p.read_text() for p in Path(sqlite_app.root).rglob("*.log"))])
    assert secrets_in(everything, wrong) == []

    use_server(sqlite_app, server, MAIL_PASSWORD=right)
    sqlite_app.worker(*WORKER_ARGS)
    result = sqlite_app.ictq("test-email", "--email=user@example.test", "--wait", "30")
    assert result.returncode == 0, result.stdout + result.stderr
    assert [(item.login, item.tls) for item in server.wait_for(2)] == [("ict", True), ("ict", True)]
    assert secrets_in(sqlite_app.log_text() + result.stdout + result.stderr, right) == []
    assert re.search(r"smtp-connected server=\"smtp://ict@127\.0\.0\.1:\d+ \(starttls\)\"", sqlite_app.log_text())
