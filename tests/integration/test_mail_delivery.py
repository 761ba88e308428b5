# ruff: noqa: RUF001 - Russian text on purpose
"""Notifications through the queue to a real SMTP server, sent by real workers."""

from __future__ import annotations

import re
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

import pytest

import ictq.mail
from tests.support.app import App, count_rows, rows
from tests.support.smtp import (  # noqa: F401 - fixtures
    FROM_ADDRESS,
    WORKER_ARGS,
    SmtpServer,
    smtp_fixture,
    smtp_servers_fixture,
    use_server,
)

QUEUED = re.compile(r"^queued ([\w.]+) id=(\d+) uuid=([0-9a-f-]{36}) queue=(\S+) to=(\S+)$", re.MULTILINE)
SUBJECTS = {
    "ru": {"ICT: сброс пароля", "ICT: активация учётной записи"},
    "en": {"ICT: reset your password", "ICT: activate your account"},
}


def parts(message: EmailMessage) -> tuple[str, str]:
    assert message.get_content_type() == "multipart/alternative"
    kinds = [part.get_content_type() for part in message.iter_parts()]
    assert kinds == ["text/plain", "text/html"]
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def test_test_email_sends_both_notifications_through_the_queue(app: App, smtp: SmtpServer) -> None:
    use_server(app, smtp)
    app.worker(*WORKER_ARGS)
    result = app.ictq("test-email", "--email=user@example.test", "--wait", "30")
    assert result.returncode == 0, result.stdout + result.stderr
    queued = {name: uuid for name, _, uuid, _, _ in QUEUED.findall(result.stdout)}
    assert set(queued) == {"mail.password_reset", "mail.account_activation"}
    assert "sent mail.password_reset" in result.stdout and "sent mail.account_activation" in result.stdout

    received = smtp.wait_for(2)
    assert len(received) == 2
    by_subject = {item.message["Subject"]: item for item in received}
    assert set(by_subject) == SUBJECTS["ru"]
    for item in received:
        message = item.message
        assert item.rcpt_tos == ("user@example.test",)
        assert item.mail_from == FROM_ADDRESS
        assert message["To"] == "user@example.test"
        assert message["From"] == f"ICT Test <{FROM_ADDRESS}>"
        assert message["Content-Language"] == "ru"
        assert parsedate_to_datetime(message["Date"]) is not None
        assert message["Message-ID"] in {f"<{uuid}@ict.example.test>" for uuid in queued.values()}
    reset_text, reset_html = parts(by_subject["ICT: сброс пароля"].message)
    link = re.search(r"https://ict\.example\.test/reset-password/([\w-]+)\?email=user%40example\.test", reset_text)
    assert link is not None, reset_text
    assert link.group(0) in reset_html and "Сбросить пароль" in reset_html
    activation_text, activation_html = parts(by_subject["ICT: активация учётной записи"].message)
    assert f"https://ict.example.test/activate/{link.group(1)}" in activation_text
    assert f'href="https://ict.example.test/activate/{link.group(1)}"' in activation_html

    storage = app.storage()
    assert count_rows(storage, "jobs") == 0
    assert count_rows(storage, "failed_jobs") == 0
    assert sorted(r[0] for r in rows(storage, "SELECT job_uuid FROM ictq_mail_sent")) == sorted(queued.values())


@pytest.mark.parametrize("locale", ["en", "ru"])
def test_app_locale_chooses_the_language(sqlite_app: App, smtp: SmtpServer, locale: str) -> None:
    use_server(sqlite_app, smtp, APP_LOCALE=locale, APP_NAME="ICT")
    sqlite_app.worker(*WORKER_ARGS)
    result = sqlite_app.ictq("test-email", "--email=user@example.test", "--wait", "30")
    assert result.returncode == 0, result.stdout + result.stderr
    messages = [item.message for item in smtp.wait_for(2)]
    assert {m["Subject"] for m in messages} == SUBJECTS[locale]
    assert {m["Content-Language"] for m in messages} == {locale}
    html = [parts(m)[1] for m in messages]
    assert all(f'<html lang="{locale}">' in page for page in html)


def test_locale_option_overrides_app_locale(sqlite_app: App, smtp: SmtpServer) -> None:
    use_server(sqlite_app, smtp, APP_LOCALE="ru")
    sqlite_app.worker(*WORKER_ARGS)
    result = sqlite_app.ictq("test-email", "--email=user@example.test", "--locale", "en", "--wait", "30")
    assert result.returncode == 0, result.stdout + result.stderr
    assert {item.message["Subject"] for item in smtp.wait_for(2)} == SUBJECTS["en"]


def test_log_mailer_writes_the_message_to_the_log(sqlite_app: App, smtp: SmtpServer) -> None:
    use_server(sqlite_app, smtp, MAIL_MAILER="log")
    sqlite_app.worker(*WORKER_ARGS)
    result = sqlite_app.ictq("test-email", "--email=user@example.test", "--wait", "30")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "mailer: log" in result.stdout
    log = sqlite_app.log_text()
    assert log.count("mail-logged message_id=") == 2
    assert "Subject: ICT: =?utf-8?" in log and "Content-Type: multipart/alternative" in log
    assert smtp.received == [] and smtp.connections == 0


def test_an_application_adds_its_own_notification(sqlite_app: App, smtp: SmtpServer) -> None:
    root = sqlite_app.root
    for locale, subject in (("en", "Invoice {{ number }} is ready"), ("ru", "Счёт {{ number }} готов")):
        folder = root / "mail_templates" / locale
        folder.mkdir(parents=True)
        (folder / "invoice_ready.subject.txt").write_text(subject + "\n")
        (folder / "invoice_ready.txt").write_text("Invoice {{ number }}: {{ app_url }}/invoices/{{ number }}\n")
        html = '<p><a href="{{ app_url }}/invoices/{{ number }}">{{ number }}</a></p>\n'
        (folder / "invoice_ready.html").write_text(html)
    (root / "app_mail.py").write_text(
        "from pathlib import Path\n\nimport ictq.mail\n\n"
        "ictq.mail.register('invoice_ready', templates=Path(__file__).parent / 'mail_templates', tries=2)\n"
    )
    use_server(sqlite_app, smtp, APP_LOCALE="en", ICTQ_JOBS="app_mail")
    sqlite_app.worker(*WORKER_ARGS)
    data = '{"to": "billing@example.test", "params": {"number": "A<1>"}}'
    result = sqlite_app.ictq("dispatch", "mail.invoice_ready", "--data", data)
    assert result.returncode == 0, result.stderr
    message = smtp.wait_for(1)[0].message
    assert message["Subject"] == "Invoice A<1> is ready"
    text, html = parts(message)
    assert "https://ict.example.test/invoices/A<1>" in text
    assert 'href="https://ict.example.test/invoices/A&lt;1&gt;"' in html


def test_notify_rejects_bad_input_before_queueing(sqlite_app: App, smtp: SmtpServer) -> None:
    use_server(sqlite_app, smtp)
    client = sqlite_app.client()
    with pytest.raises(ictq.DispatchError, match="not a valid e-mail address"):
        ictq.mail.notify("password_reset", "user@", {"token": "t"}, client=client)
    with pytest.raises(ictq.DispatchError, match="token"):
        ictq.mail.notify("password_reset", "user@example.test", {}, client=client)
    with pytest.raises(ictq.DispatchError, match="'xx'"):
        ictq.mail.notify("password_reset", "user@example.test", {"token": "t"}, locale="xx", client=client)
    with pytest.raises(ictq.DispatchError, match="no notification named"):
        ictq.mail.notify("welcome", "user@example.test", client=client)
    assert count_rows(client.storage, "jobs") == 0
    client.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--email=not-an-address"], "it has no @domain"),
        (["--email=user@exa mple.test"], "whitespace"),
        (["--email=user@-bad.test"], "not a valid host name"),
        (["--email="], "it is empty"),
    ],
)
def test_test_email_rejects_a_bad_address(sqlite_app: App, smtp: SmtpServer, args: list[str], message: str) -> None:
    use_server(sqlite_app, smtp)
    result = sqlite_app.ictq("test-email", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stderr.startswith("ictq: error: ") and len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""
    assert count_rows(sqlite_app.storage(), "jobs") == 0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MAIL_PORT": "smtp"}, "MAIL_PORT='smtp' is not a whole number"),
        ({"MAIL_MAILER": "sendmail"}, "MAIL_MAILER='sendmail' is not supported"),
        ({"MAIL_ENCRYPTION": "starttls-please"}, "MAIL_ENCRYPTION='starttls-please' is not supported"),
        ({"MAIL_FROM_ADDRESS": ""}, "MAIL_FROM_ADDRESS is required"),
        ({"MAIL_VERIFY_PEER": "maybe"}, "MAIL_VERIFY_PEER='maybe' is not true or false"),
        ({"APP_URL": "ict.example"}, "APP_URL='ict.example' is not an http(s) URL"),
        ({"APP_LOCALE": "de"}, "is 'de' a supported locale?"),
    ],
)
def test_test_email_rejects_bad_settings(sqlite_app: App, smtp: SmtpServer, env: dict[str, str], message: str) -> None:
    use_server(sqlite_app, smtp, **env)
    result = sqlite_app.ictq("test-email", "--email=user@example.test")
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert count_rows(sqlite_app.storage(), "jobs") == 0


def test_test_email_wait_says_when_no_worker_sent_them(sqlite_app: App, smtp: SmtpServer) -> None:
    use_server(sqlite_app, smtp)
    result = sqlite_app.ictq("test-email", "--email=user@example.test", "--wait", "1")
    assert result.returncode == 3
    assert "not sent yet mail.password_reset: queued, 0 attempt(s) so far" in result.stdout
    assert "is a worker running" in result.stderr
