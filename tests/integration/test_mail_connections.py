"""A worker keeps one SMTP connection across jobs and replaces it when the server dropped it."""

from __future__ import annotations

import ictq.mail
from tests.support.app import App, count_rows, wait_for
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


def test_one_connection_carries_a_hundred_mails(
    sqlite_app: App, smtp_servers: list[SmtpServer], certificate: Certificate
) -> None:
    server = start_server(smtp_servers, "starttls", certificate, users={"ict": "pass-word-1"})
    use_server(sqlite_app, server, MAIL_USERNAME="ict", MAIL_PASSWORD="pass-word-1")
    client = sqlite_app.client()
    items = [{"to": f"user{n}@example.test", "params": {"token": f"t{n}"}} for n in range(100)]
    client.dispatch_many("mail.password_reset", items)
    client.close()
    sqlite_app.worker(*WORKER_ARGS)
    received = server.wait_for(100, timeout=90)
    assert sorted(rcpt for item in received for rcpt in item.rcpt_tos) == sorted(i["to"] for i in items)
    assert server.connections == 1
    assert [ok for _, ok in server.logins] == [True]
    assert sqlite_app.log_text().count("smtp-connected") == 1
    wait_for(lambda: count_rows(sqlite_app.storage(), "jobs") == 0, what="all jobs deleted")
    assert len(server.received) == 100


def test_a_dropped_connection_is_replaced_without_costing_an_attempt(sqlite_app: App, smtp: SmtpServer) -> None:
    use_server(sqlite_app, smtp)
    sqlite_app.worker(*WORKER_ARGS)
    client = sqlite_app.client()
    ictq.mail.notify("account_activation", "first@example.test", {"token": "a"}, client=client)
    smtp.wait_for(1)
    assert smtp.connections == 1
    smtp.stop()  # drops the worker's open connection
    smtp.start()
    ictq.mail.notify("account_activation", "second@example.test", {"token": "b"}, client=client)
    client.close()
    assert [item.rcpt_tos for item in smtp.wait_for(2)] == [("first@example.test",), ("second@example.test",)]
    assert smtp.connections == 2
    sent = wait_for(lambda: [line for line in sqlite_app.log_text().splitlines() if " mail-sent " in line]
                    if sqlite_app.log_text().count(" mail-sent ") == 2 else None, what="two mail-sent lines")
    assert all("attempt=1" in line for line in sent)
    log = sqlite_app.log_text()
    assert "smtp-reconnect" in log
    assert " released " not in log
