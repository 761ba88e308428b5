# ruff: noqa: RUF001 - Russian text on purpose
from __future__ import annotations

from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from ictq.config import settings_from_values
from ictq.mail import templates
from ictq.mail.compose import compose
from ictq.mail.settings import MailSettings, mail_settings
from ictq.mail.templates import RenderError

UUID = "6f1c7a52-0d4e-4b7e-9a53-0b8f0a1c2d3e"


@pytest.fixture
def mail(tmp_path: Path) -> MailSettings:
    values = {"MAIL_FROM_ADDRESS": "noreply@ict.example", "MAIL_FROM_NAME": "ИКТ Портал",
              "APP_NAME": "ICT", "APP_URL": "https://ict.example"}
    return mail_settings(settings_from_values(values, app_dir=tmp_path))


def sent_form(message: EmailMessage) -> EmailMessage:
    """The message as a receiver parses it from the bytes on the wire."""
    parsed = message_from_bytes(message.as_bytes(), policy=default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def bodies(message: EmailMessage) -> tuple[str, str]:
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


@pytest.mark.parametrize(
    ("locale", "subject", "button"),
    [("ru", "ICT: сброс пароля", "Сбросить пароль"), ("en", "ICT: reset your password", "Reset password")],
)
def test_password_reset(mail: MailSettings, locale: str, subject: str, button: str) -> None:
    composed = compose("password_reset", mail, "user+1@example.com", {"token": "abc/def", "expire": 30},
                       locale, UUID)
    message = sent_form(composed.message)
    assert message["Subject"] == subject
    assert message["From"] == "ИКТ Портал <noreply@ict.example>"
    assert message["To"] == "user+1@example.com"
    assert message["Message-ID"] == f"<{UUID}@ict.example>" == composed.message_id
    assert message["Content-Language"] == locale
    assert parsedate_to_datetime(message["Date"]).tzinfo is not None
    text, html = bodies(message)
    link = "https://ict.example/reset-password/abc/def?email=user%2B1%40example.com"
    assert link in text and f'href="{link}"' in html
    assert "30" in text and button in html and f'<html lang="{locale}">' in html


def test_account_activation_and_escaping(mail: MailSettings) -> None:
    composed = compose("account_activation", mail, "new@example.com", {"token": "t1", "name": "<b>Bob</b>"},
                       "en", UUID)
    text, html = bodies(sent_form(composed.message))
    assert "https://ict.example/activate/t1" in text
    assert "Hello <b>Bob</b>," in text
    assert "&lt;b&gt;Bob&lt;/b&gt;" in html and "<b>Bob</b>" not in html


def test_a_link_can_be_given_outright(mail: MailSettings) -> None:
    composed = compose("account_activation", mail, "new@example.com", {"url": "https://sso.example/x?a=1&b=2"},
                       "ru", UUID)
    text, html = bodies(sent_form(composed.message))
    assert "https://sso.example/x?a=1&b=2" in text and 'href="https://sso.example/x?a=1&amp;b=2"' in html


def test_app_locale_is_the_default(mail: MailSettings) -> None:
    assert compose("password_reset", mail, "u@example.com", {"token": "t"}, None, UUID).locale == "ru"


def test_the_message_id_is_stable_per_job(mail: MailSettings) -> None:
    first = compose("password_reset", mail, "u@example.com", {"token": "t"}, None, UUID)
    again = compose("password_reset", mail, "u@example.com", {"token": "t"}, None, UUID)
    other = compose("password_reset", mail, "u@example.com", {"token": "t"}, None, UUID.replace("6f", "7f"))
    assert first.message["Message-ID"] == again.message["Message-ID"] != other.message["Message-ID"]


@pytest.mark.parametrize(
    ("params", "locale", "reason"),
    [
        ({}, "ru", "'token' is undefined"),
        ({"token": "t"}, "de", "no template de/password_reset.subject.txt"),
        ({"token": "t"}, "../en", "is not a locale"),
    ],
)
def test_render_errors_say_what_is_missing(mail: MailSettings, params: dict[str, str], locale: str,
                                           reason: str) -> None:
    with pytest.raises(RenderError) as caught:
        compose("password_reset", mail, "u@example.com", params, locale, UUID)
    assert reason in str(caught.value)


def test_application_templates_come_first(mail: MailSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(templates, "_extra_dirs", [])
    folder = tmp_path / "mail" / "en"
    folder.mkdir(parents=True)
    (folder / "password_reset.subject.txt").write_text("{{ app_name }}\n  new password \n")
    templates.add_template_dir(tmp_path / "mail")
    composed = compose("password_reset", mail, "u@example.com", {"token": "t"}, "en", UUID)
    assert composed.message["Subject"] == "ICT new password"
    text, _ = bodies(sent_form(composed.message))
    assert "https://ict.example/reset-password/t" in text  # the built-in body is still used
    with pytest.raises(RenderError, match="does not exist"):
        templates.add_template_dir(tmp_path / "nowhere")
