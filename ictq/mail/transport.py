"""Transports: SMTP with a connection kept open across jobs, and the log mailer.

A worker sends many mails in a row, so :class:`SmtpTransport` keeps its connection (with TLS
and AUTH done once) and checks it with NOOP before reuse: a connection the server dropped
while idle is replaced before the message is sent, so a dropped connection never costs a job
an attempt. After any failure the connection is thrown away and the next send opens a new one.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import smtplib
import ssl
import threading
from collections.abc import Callable
from email.message import EmailMessage
from typing import Protocol

from ictq import logs
from ictq.mail.settings import MailSettings, Security


class Transport(Protocol):
    def send(self, message: EmailMessage) -> None: ...

    def close(self) -> None: ...


class SmtpTransport:
    """Sends over one SMTP connection, reopened when needed. One per thread."""

    def __init__(self, settings: MailSettings, logger: logging.Logger | None = None) -> None:
        self.settings = settings
        self.logger = logger or logging.getLogger(logs.LOGGER_NAME)
        self.connections_opened = 0
        self._conn: smtplib.SMTP | None = None

    def send(self, message: EmailMessage) -> None:
        """Send ``message``; smtplib's and the socket's exceptions propagate (see :mod:`.errors`)."""
        try:
            conn = self._usable_connection()
            conn.send_message(message)
        except BaseException:
            self._discard()  # after any failure (or an interrupting timeout) the session state is unknown
            raise

    def close(self) -> None:
        """Say QUIT and close; the next send reconnects."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                conn.close()

    def _usable_connection(self) -> smtplib.SMTP:
        if self._conn is not None:
            try:
                code, _ = self._conn.noop()
                if code == 250:
                    return self._conn
            except (smtplib.SMTPException, OSError):
                pass
            self._discard()
            logs.event(self.logger, logging.INFO, "smtp-reconnect", reason="the connection was closed")
        self._conn = self._open()
        return self._conn

    def _open(self) -> smtplib.SMTP:
        s = self.settings
        conn: smtplib.SMTP
        if s.security is Security.TLS:
            conn = smtplib.SMTP_SSL(s.host, s.port, local_hostname=s.ehlo_domain, timeout=s.timeout,
                                    context=tls_context(s))
        else:
            conn = smtplib.SMTP(s.host, s.port, local_hostname=s.ehlo_domain, timeout=s.timeout)
        try:
            conn.ehlo()
            if s.security is Security.STARTTLS:
                conn.starttls(context=tls_context(s))
                conn.ehlo()
            if s.username:
                conn.login(s.username, s.password)
        except BaseException:
            conn.close()
            raise
        self.connections_opened += 1
        logs.event(self.logger, logging.INFO, "smtp-connected", server=s.describe())
        return conn

    def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def tls_context(settings: MailSettings) -> ssl.SSLContext:
    """Certificates verified against the system's CAs (or MAIL_CA_FILE) unless MAIL_VERIFY_PEER=false."""
    context = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
    if not settings.verify_peer:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class LogTransport:
    """``MAIL_MAILER=log``: the whole message goes to the log instead of a mail server."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger(logs.LOGGER_NAME)

    def send(self, message: EmailMessage) -> None:
        text = message.as_string().replace("\r\n", "\n")
        self.logger.info("mail-logged message_id=%s\n%s", message["Message-ID"], text)

    def close(self) -> None:
        pass


_local = threading.local()


def transport_for(settings: MailSettings, factory: Callable[[MailSettings], Transport] | None = None) -> Transport:
    """This thread's transport for ``settings`` (kept, with its connection, between jobs)."""
    current: tuple[MailSettings, Transport] | None = getattr(_local, "transport", None)
    if current is not None and current[0] == settings:
        return current[1]
    if current is not None:
        current[1].close()
        _opened.remove(current[1])
    transport = (factory or _default_factory)(settings)
    _local.transport = (settings, transport)
    _opened.append(transport)
    return transport


def _default_factory(settings: MailSettings) -> Transport:
    return LogTransport() if settings.mailer == "log" else SmtpTransport(settings)


_opened: list[Transport] = []


@atexit.register
def _close_all() -> None:
    """A worker that exits says QUIT to its mail server."""
    while _opened:
        transport = _opened.pop()
        with contextlib.suppress(Exception):  # exiting anyway
            transport.close()


__all__ = ["LogTransport", "SmtpTransport", "Transport", "tls_context", "transport_for"]
