from __future__ import annotations

from pathlib import Path

import pytest

from ictq.config import settings_from_values
from ictq.errors import ConfigError
from ictq.mail.settings import MailSettings, Security, mail_settings

BASE = {"MAIL_FROM_ADDRESS": "noreply@ict.example"}


def read(tmp_path: Path, **values: str) -> MailSettings:
    return mail_settings(settings_from_values({**BASE, **values}, app_dir=tmp_path))


def test_defaults_follow_laravel(tmp_path: Path) -> None:
    mail = read(tmp_path, APP_NAME="ICT Portal")
    assert mail.mailer == "log"
    assert (mail.host, mail.port, mail.security) == ("127.0.0.1", 25, Security.NONE)
    assert mail.verify_peer is True and mail.ca_file is None
    assert mail.timeout == 30
    assert mail.from_name == "ICT Portal" and mail.app_name == "ICT Portal"
    assert mail.locale == "ru" and mail.app_url == "http://localhost"
    assert mail.backoff is None and mail.queue is None


@pytest.mark.parametrize(
    ("values", "security", "port"),
    [
        ({"MAIL_ENCRYPTION": "tls"}, Security.STARTTLS, 587),
        ({"MAIL_ENCRYPTION": "ssl"}, Security.TLS, 465),
        ({"MAIL_ENCRYPTION": "null"}, Security.NONE, 25),
        ({"MAIL_ENCRYPTION": ""}, Security.NONE, 25),
        ({"MAIL_SCHEME": "smtps"}, Security.TLS, 465),
        ({"MAIL_SCHEME": "smtps", "MAIL_ENCRYPTION": "tls"}, Security.TLS, 465),
        ({"MAIL_SCHEME": "null", "MAIL_ENCRYPTION": "TLS"}, Security.STARTTLS, 587),
        ({"MAIL_ENCRYPTION": "tls", "MAIL_PORT": "2525"}, Security.STARTTLS, 2525),
    ],
)
def test_encryption_and_scheme(tmp_path: Path, values: dict[str, str], security: Security, port: int) -> None:
    mail = read(tmp_path, **values)
    assert (mail.security, mail.port) == (security, port)


def test_laravel_nulls_are_empty(tmp_path: Path) -> None:
    mail = read(tmp_path, MAIL_USERNAME="null", MAIL_PASSWORD="null", MAIL_HOST="(null)", MAIL_FROM_NAME="null")
    assert (mail.username, mail.password, mail.host) == ("", "", "127.0.0.1")
    assert mail.from_name == "ICT"


def test_the_password_is_not_shown(tmp_path: Path) -> None:
    mail = read(tmp_path, MAIL_MAILER="smtp", MAIL_USERNAME="ict", MAIL_PASSWORD=" s3cret pass ")
    assert mail.password == " s3cret pass "  # kept as written: spaces may be part of it
    assert "s3cret" not in repr(mail) and "s3cret" not in mail.describe()
    assert mail.describe() == "smtp://ict@127.0.0.1:25 (none)"


def test_describe_says_when_certificates_are_not_checked(tmp_path: Path) -> None:
    mail = read(tmp_path, MAIL_MAILER="smtp", MAIL_ENCRYPTION="tls", MAIL_VERIFY_PEER="false")
    assert mail.describe() == "smtp://127.0.0.1:587 (starttls, certificate not verified)"
    assert read(tmp_path).describe().startswith("log ")


def test_ca_file_is_relative_to_the_app(tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_text("x")
    assert read(tmp_path, MAIL_CA_FILE="certs/ca.pem").ca_file == tmp_path / "certs" / "ca.pem"


def test_backoff_queue_and_url(tmp_path: Path) -> None:
    mail = read(tmp_path, MAIL_BACKOFF="5, 30,120", MAIL_QUEUE="emails", APP_URL="https://ict.example/")
    assert mail.backoff == (5, 30, 120) and mail.queue == "emails" and mail.app_url == "https://ict.example"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"MAIL_MAILER": "ses"}, "MAIL_MAILER='ses' is not supported (use one of: smtp, log)"),
        ({"MAIL_ENCRYPTION": "yes"}, "MAIL_ENCRYPTION='yes' is not supported"),
        ({"MAIL_SCHEME": "smtp+tls"}, "MAIL_SCHEME='smtp+tls' is not supported"),
        ({"MAIL_PORT": "0"}, "MAIL_PORT=0 is out of range (1 to 65535)"),
        ({"MAIL_PORT": "25a"}, "MAIL_PORT='25a' is not a whole number"),
        ({"MAIL_TIMEOUT": "-1"}, "MAIL_TIMEOUT=-1 is out of range"),
        ({"MAIL_VERIFY_PEER": "sometimes"}, "MAIL_VERIFY_PEER='sometimes' is not true or false"),
        ({"MAIL_PASSWORD": "secret"}, "MAIL_PASSWORD is set but MAIL_USERNAME is empty"),
        ({"MAIL_FROM_ADDRESS": "null"}, "MAIL_FROM_ADDRESS is required"),
        ({"MAIL_FROM_ADDRESS": "noreply"}, "MAIL_FROM_ADDRESS='noreply' is not a valid address (it has no @domain)"),
        ({"MAIL_CA_FILE": "missing.pem"}, "MAIL_CA_FILE: no file at"),
        ({"MAIL_BACKOFF": "1,x"}, "MAIL_BACKOFF='1,x' is not whole seconds"),
        ({"MAIL_BACKOFF": "-5"}, "is not whole seconds (0 to 31536000"),
        ({"APP_URL": "ftp://ict.example"}, "APP_URL='ftp://ict.example' is not an http(s) URL"),
    ],
)
def test_bad_values_name_their_key(tmp_path: Path, values: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        read(tmp_path, **values)
    assert message in str(caught.value)
    assert "secret" not in str(caught.value)
