"""A real SMTP server for the tests: aiosmtpd on 127.0.0.1, on a free port.

It speaks plain SMTP, STARTTLS or implicit TLS (with a self-signed certificate made here),
can require AUTH, can answer MAIL / RCPT / DATA with scripted replies (4xx, 5xx), can hold a
DATA reply until the test lets it go, counts the client connections, and can be stopped and
started again on the same port. Everything it received is kept in :attr:`SmtpServer.received`.
"""

from __future__ import annotations

import asyncio
import datetime
import email
import email.policy
import ipaddress
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

MODES = ("plain", "starttls", "tls")
FROM_ADDRESS = "noreply@ict.example.test"


@dataclass(frozen=True)
class Received:
    """One message the server accepted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes
    tls: bool
    login: str | None

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path


def make_certificate(folder: Path) -> Certificate:
    """A self-signed certificate for 127.0.0.1 and localhost."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    paths = Certificate(folder / "smtp-cert.pem", folder / "smtp-key.pem")
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    return paths


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _CountingSMTP(SMTP):
    """aiosmtpd's SMTP, telling its owner about every connection and EHLO."""

    def __init__(self, handler: Any, owner: SmtpServer, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._owner = owner

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._owner._transports.append(transport)

    async def smtp_EHLO(self, hostname: str) -> None:
        self._owner._clients.add(self)
        await super().smtp_EHLO(hostname)


class _Controller(Controller):
    def __init__(self, owner: SmtpServer, **kwargs: Any) -> None:
        super().__init__(owner, **kwargs)
        self._owner = owner

    def factory(self) -> SMTP:
        return _CountingSMTP(self.handler, self._owner, **self.SMTP_kwargs)


class SmtpServer:
    """The server and its handler (aiosmtpd calls the ``handle_*`` methods)."""

    def __init__(self, mode: str = "plain", certificate: Certificate | None = None,
                 users: dict[str, str] | None = None) -> None:
        assert mode in MODES
        assert mode == "plain" or certificate is not None, "TLS modes need a certificate"
        self.mode = mode
        self.certificate = certificate
        self.users = users
        self.host = "127.0.0.1"
        self.port = free_port()
        self.received: list[Received] = []
        self.logins: list[tuple[str, bool]] = []
        self.replies: dict[str, deque[str]] = {"MAIL": deque(), "RCPT": deque(), "DATA": deque()}
        self.rejected_rcpt: dict[str, str] = {}
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._release.set()
        self._held = threading.Event()
        self._clients: set[SMTP] = set()
        self._transports: list[asyncio.BaseTransport] = []
        self._controller: _Controller | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        assert self._controller is None
        kwargs: dict[str, Any] = {"hostname": self.host, "port": self.port, "ready_timeout": 10}
        if self.mode != "plain":
            assert self.certificate is not None
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.certificate.cert, self.certificate.key)
            kwargs["tls_context" if self.mode == "starttls" else "ssl_context"] = context
        if self.users is not None:
            kwargs["authenticator"] = self._authenticate
            kwargs["auth_required"] = True
            kwargs["auth_require_tls"] = self.mode == "starttls"
        self._controller = _Controller(self, **kwargs)
        self._controller.start()

    def stop(self) -> None:
        """Stop listening and drop every open connection."""
        controller, self._controller = self._controller, None
        if controller is None:
            return
        self.release_data()
        controller.loop.call_soon_threadsafe(self._drop_connections)
        controller.stop()

    def _drop_connections(self) -> None:
        for transport in self._transports:
            transport.abort()  # type: ignore[attr-defined]
        self._transports.clear()

    # -- what the tests script and read -------------------------------------------------

    @property
    def connections(self) -> int:
        """Client connections that said EHLO (the start-up probe does not count)."""
        return len(self._clients)

    def reply(self, stage: str, *replies: str) -> None:
        """Answer the next ``stage`` (MAIL, RCPT or DATA) commands with ``replies``, in order."""
        self.replies[stage].extend(replies)

    def hold_data(self) -> None:
        """Keep the next DATA replies back until :meth:`release_data`."""
        self._held.clear()
        self._release.clear()

    def wait_held(self, timeout: float = 20) -> None:
        assert self._held.wait(timeout), "no message reached the held DATA stage"

    def release_data(self) -> None:
        self._release.set()

    def messages(self) -> list[EmailMessage]:
        with self._lock:
            return [item.message for item in self.received]

    def wait_for(self, count: int, timeout: float = 30) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.02)
        raise AssertionError(f"the SMTP server received {len(self.received)} message(s), expected {count}")

    def env(self, **extra: str) -> dict[str, str]:
        """``.env`` lines that point ictq at this server."""
        values = {
            "MAIL_MAILER": "smtp",
            "MAIL_HOST": self.host,
            "MAIL_PORT": str(self.port),
            "MAIL_ENCRYPTION": {"plain": "null", "starttls": "tls", "tls": "ssl"}[self.mode],
            "MAIL_FROM_ADDRESS": FROM_ADDRESS,
            "MAIL_FROM_NAME": "ICT Test",
            "MAIL_TIMEOUT": "5",
            "MAIL_BACKOFF": "1",
            "APP_URL": "https://ict.example.test",
        }
        if self.certificate is not None:
            values["MAIL_CA_FILE"] = str(self.certificate.cert)
        values.update(extra)
        return values

    # -- aiosmtpd handler hooks ---------------------------------------------------------

    def _scripted(self, stage: str) -> str | None:
        with self._lock:
            return self.replies[stage].popleft() if self.replies[stage] else None

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          mail_options: list[str]) -> str:
        reply = self._scripted("MAIL")
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        reply = self._scripted("RCPT") or self.rejected_rcpt.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self._held.set()
        while not self._release.is_set():
            await asyncio.sleep(0.02)
        reply = self._scripted("DATA")
        if reply:
            return reply
        assert server.transport is not None and isinstance(envelope.content, bytes)
        login = session.auth_data if isinstance(session.auth_data, str) else None
        item = Received(str(envelope.mail_from), tuple(envelope.rcpt_tos), envelope.content,
                        server.transport.get_extra_info("ssl_object") is not None, login)
        with self._lock:
            self.received.append(item)
        return "250 2.0.0 OK: queued"

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                      auth_data: Any) -> AuthResult:
        assert self.users is not None
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user, password = auth_data.login.decode(), auth_data.password.decode()
        ok = self.users.get(user) == password
        with self._lock:
            self.logins.append((user, ok))
        return AuthResult(success=ok, handled=False, auth_data=user if ok else None)


@pytest.fixture(scope="session", name="certificate")
def certificate_fixture(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(name="smtp_servers")
def smtp_servers_fixture() -> Iterator[list[SmtpServer]]:
    """Servers a test starts (``start_server``); all stopped at teardown."""
    servers: list[SmtpServer] = []
    yield servers
    for server in servers:
        server.stop()


def start_server(servers: list[SmtpServer], mode: str = "plain", certificate: Certificate | None = None,
                 users: dict[str, str] | None = None) -> SmtpServer:
    server = SmtpServer(mode, certificate, users)
    server.start()
    servers.append(server)
    return server


@pytest.fixture(name="smtp")
def smtp_fixture(smtp_servers: list[SmtpServer]) -> SmtpServer:
    """A plain SMTP server, no AUTH."""
    return start_server(smtp_servers)


WORKER_ARGS = ("--sleep", "0.1")


def use_server(app: Any, server: SmtpServer, **extra: str) -> None:
    """Point ``app``'s ``.env`` at ``server``; workers load the notifications via ICTQ_JOBS."""
    app.write_env(**server.env(**{"ICTQ_JOBS": "tests.support.jobs,ictq.mail", **extra}))
