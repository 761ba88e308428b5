"""The SMTP transport against a real aiosmtpd server on 127.0.0.1."""

from __future__ import annotations

import smtplib
import ssl
from pathlib import Path

import pytest

from ictq.config import settings_from_values
from ictq.mail.compose import Composed, compose
from ictq.mail.errors import classify
from ictq.mail.settings import MailSettings, mail_settings
from ictq.mail.transport import SmtpTransport
from tests.support.smtp import (  # noqa: F401 - fixtures
    Certificate,
    SmtpServer,
    certificate_fixture,
    smtp_fixture,
    smtp_servers_fixture,
    start_server,
)


def settings_for(server: SmtpServer, tmp_path: Path, **extra: str) -> MailSettings:
    return mail_settings(settings_from_values(server.env(**extra), app_dir=tmp_path))


def a_message(mail: MailSettings, n: int = 0) -> Composed:
    return compose("account_activation", mail, f"user{n}@example.test", {"token": "t"}, "en", f"uuid-{n}")


def test_the_connection_is_reused(smtp: SmtpServer, tmp_path: Path) -> None:
    transport = SmtpTransport(settings_for(smtp, tmp_path))
    for n in range(5):
        transport.send(a_message(transport.settings, n).message)
    assert len(smtp.received) == 5
    assert smtp.connections == 1 and transport.connections_opened == 1
    transport.close()


def test_a_dropped_connection_is_reopened_before_sending(smtp: SmtpServer, tmp_path: Path) -> None:
    transport = SmtpTransport(settings_for(smtp, tmp_path))
    transport.send(a_message(transport.settings, 1).message)
    smtp.stop()
    smtp.start()
    transport.send(a_message(transport.settings, 2).message)
    assert [r.rcpt_tos for r in smtp.received] == [("user1@example.test",), ("user2@example.test",)]
    assert transport.connections_opened == 2
    transport.close()


def test_after_a_refused_message_the_next_one_goes_through(smtp: SmtpServer, tmp_path: Path) -> None:
    smtp.reply("DATA", "451 4.3.0 later")
    transport = SmtpTransport(settings_for(smtp, tmp_path))
    with pytest.raises(smtplib.SMTPDataError):
        transport.send(a_message(transport.settings, 1).message)
    transport.send(a_message(transport.settings, 2).message)
    assert [r.rcpt_tos for r in smtp.received] == [("user2@example.test",)]


@pytest.mark.parametrize(("mode", "extra"), [
    ("starttls", {}),
    ("starttls", {"MAIL_CA_FILE": "", "MAIL_VERIFY_PEER": "false"}),
    ("tls", {}),
    ("tls", {"MAIL_ENCRYPTION": "", "MAIL_SCHEME": "smtps"}),
])
def test_encrypted_connections(smtp_servers: list[SmtpServer], certificate: Certificate, tmp_path: Path,
                               mode: str, extra: dict[str, str]) -> None:
    server = start_server(smtp_servers, mode, certificate)
    transport = SmtpTransport(settings_for(server, tmp_path, **extra))
    transport.send(a_message(transport.settings).message)
    assert [r.tls for r in server.received] == [True]
    transport.close()


@pytest.mark.parametrize("mode", ["starttls", "tls"])
def test_certificates_are_verified_by_default(smtp_servers: list[SmtpServer], certificate: Certificate,
                                              tmp_path: Path, mode: str) -> None:
    server = start_server(smtp_servers, mode, certificate)
    transport = SmtpTransport(settings_for(server, tmp_path, MAIL_CA_FILE=""))
    with pytest.raises(ssl.SSLCertVerificationError) as caught:
        transport.send(a_message(transport.settings).message)
    assert classify(caught.value).permanent
    assert server.received == []


def test_starttls_is_required_when_configured(smtp: SmtpServer, tmp_path: Path) -> None:
    transport = SmtpTransport(settings_for(smtp, tmp_path, MAIL_ENCRYPTION="tls"))
    with pytest.raises(smtplib.SMTPNotSupportedError) as caught:
        transport.send(a_message(transport.settings).message)
    assert classify(caught.value).permanent
    assert smtp.received == []


def test_a_wrong_password_is_reported_without_it(smtp_servers: list[SmtpServer], certificate: Certificate,
                                                 tmp_path: Path) -> None:
    server = start_server(smtp_servers, "starttls", certificate, users={"ict": "right-one"})
    transport = SmtpTransport(settings_for(server, tmp_path, MAIL_USERNAME="ict", MAIL_PASSWORD="Wr0ng-secret"))
    with pytest.raises(smtplib.SMTPAuthenticationError) as caught:
        transport.send(a_message(transport.settings).message)
    problem = classify(caught.value, "ict", "Wr0ng-secret")
    assert problem.permanent and problem.reason.startswith("SMTP authentication failed: 535")
    assert "Wr0ng-secret" not in problem.reason and "Wr0ng-secret" not in repr(caught.value)
    assert server.logins and {ok for _, ok in server.logins} == {False}
