"""Mail settings from the application's ``.env`` (the keys Laravel's ``config/mail.php`` reads).

Every value is validated once, here; a wrong one raises :class:`ictq.ConfigError` naming its
key. As in Laravel, ``null`` and ``(null)`` mean empty and ``true`` / ``false`` are booleans.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from ictq.config import Settings, seconds_list, shown, whole_number
from ictq.errors import ConfigError
from ictq.mail.address import InvalidAddress, parse_address

MAILERS = ("smtp", "log")
DEFAULT_LOCALE = "ru"
DEFAULT_TIMEOUT = 30.0
_NULLS = ("null", "(null)", "empty", "(empty)")
_TRUE = ("1", "true", "(true)", "yes", "on")
_FALSE = ("0", "false", "(false)", "no", "off")


class Security(enum.Enum):
    """How the SMTP connection is protected."""

    NONE = "none"
    STARTTLS = "starttls"  # MAIL_ENCRYPTION=tls: plain connection upgraded with STARTTLS
    TLS = "tls"  # MAIL_ENCRYPTION=ssl / MAIL_SCHEME=smtps: TLS from the first byte


_SECURITY = {
    "": Security.NONE,
    "none": Security.NONE,
    "tls": Security.STARTTLS,
    "starttls": Security.STARTTLS,
    "ssl": Security.TLS,
    "smtps": Security.TLS,
}
_DEFAULT_PORTS = {Security.NONE: 25, Security.STARTTLS: 587, Security.TLS: 465}


@dataclass(frozen=True)
class MailSettings:
    """How to send mail and what the messages say about the application."""

    mailer: str
    host: str
    port: int
    username: str
    password: str = field(repr=False)
    security: Security
    verify_peer: bool
    ca_file: Path | None
    timeout: float
    ehlo_domain: str | None
    from_address: str
    from_name: str
    app_name: str
    app_url: str
    locale: str
    backoff: tuple[int, ...] | None
    queue: str | None

    def describe(self) -> str:
        """Where mail goes, without the password."""
        if self.mailer == "log":
            return "log (messages are written to the log, not sent)"
        user = f"{self.username}@" if self.username else ""
        checks = "" if self.verify_peer or self.security is Security.NONE else ", certificate not verified"
        return f"smtp://{user}{self.host}:{self.port} ({self.security.value}{checks})"


def mail_settings(settings: Settings) -> MailSettings:
    """Read and check the ``MAIL_*`` and ``APP_*`` keys."""
    values = _Values(settings)
    mailer = values.text("MAIL_MAILER", "log").lower()
    if mailer not in MAILERS:
        raise ConfigError(f"MAIL_MAILER={mailer!r} is not supported (use one of: {', '.join(MAILERS)})")
    security = _security(values)
    username = values.text("MAIL_USERNAME")
    password = values.text("MAIL_PASSWORD", strip=False)
    if password and not username:
        raise ConfigError("MAIL_PASSWORD is set but MAIL_USERNAME is empty")
    app_name = values.text("APP_NAME", "ICT")
    return MailSettings(
        mailer=mailer,
        host=values.text("MAIL_HOST", "127.0.0.1"),
        port=values.integer("MAIL_PORT", _DEFAULT_PORTS[security], 1, 65535),
        username=username,
        password=password,
        security=security,
        verify_peer=values.flag("MAIL_VERIFY_PEER", True),
        ca_file=_ca_file(values, settings.app_dir),
        timeout=float(values.integer("MAIL_TIMEOUT", int(DEFAULT_TIMEOUT), 1, 3600)),
        ehlo_domain=values.text("MAIL_EHLO_DOMAIN") or None,
        from_address=_from_address(values),
        from_name=values.text("MAIL_FROM_NAME", app_name),
        app_name=app_name,
        app_url=_app_url(values),
        locale=values.text("APP_LOCALE", DEFAULT_LOCALE),
        backoff=_backoff(values),
        queue=values.text("MAIL_QUEUE") or None,
    )


def _security(values: _Values) -> Security:
    key = "MAIL_SCHEME" if values.text("MAIL_SCHEME") else "MAIL_ENCRYPTION"
    raw = values.text(key).lower()
    if raw not in _SECURITY:
        raise ConfigError(f"{key}={raw!r} is not supported (use tls for STARTTLS, ssl or smtps for TLS, "
                          "or leave it empty)")
    return _SECURITY[raw]


def _from_address(values: _Values) -> str:
    raw = values.text("MAIL_FROM_ADDRESS")
    if not raw:
        raise ConfigError("MAIL_FROM_ADDRESS is required but empty or missing")
    try:
        return parse_address(raw)
    except InvalidAddress as exc:
        raise ConfigError(f"MAIL_FROM_ADDRESS={raw!r} is not a valid address ({exc})") from None


def _app_url(values: _Values) -> str:
    raw = values.text("APP_URL", "http://localhost")
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"APP_URL={raw!r} is not an http(s) URL")
    return raw.rstrip("/")


def _ca_file(values: _Values, app_dir: Path) -> Path | None:
    raw = values.text("MAIL_CA_FILE")
    if not raw:
        return None
    path = Path(raw).expanduser()
    path = path if path.is_absolute() else app_dir / path
    if not path.is_file():
        raise ConfigError(f"MAIL_CA_FILE: no file at {path}")
    return path


def _backoff(values: _Values) -> tuple[int, ...] | None:
    raw = values.text("MAIL_BACKOFF")
    if not raw:
        return None
    try:
        return seconds_list(raw)
    except ValueError as exc:
        raise ConfigError(f"MAIL_BACKOFF={shown(raw)} {exc}") from None


class _Values:
    """Typed access to raw ``.env`` values; each failure names its key."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def text(self, key: str, default: str = "", strip: bool = True) -> str:
        raw = self._settings.get(key)
        value = raw.strip() if strip else raw
        if value.strip().lower() in _NULLS or not value:
            return default
        return value

    def integer(self, key: str, default: int, minimum: int, maximum: int) -> int:
        raw = self.text(key)
        if not raw:
            return default
        try:
            return whole_number(raw, minimum, maximum)
        except ValueError as exc:
            raise ConfigError(f"{key}={shown(raw)} {exc}") from None

    def flag(self, key: str, default: bool) -> bool:
        raw = self.text(key).lower()
        if not raw:
            return default
        if raw in _TRUE:
            return True
        if raw in _FALSE:
            return False
        raise ConfigError(f"{key}={raw!r} is not true or false")
