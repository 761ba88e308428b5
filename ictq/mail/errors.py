"""What a failed send means: try again later (connection trouble, a 4xx reply) or give up now
(a 5xx reply, a certificate that does not verify, a server that lacks what we need).

The reason is one line for ``failed_jobs`` and the log. It never holds the SMTP password: the
password and the forms it travels in (AUTH PLAIN and AUTH LOGIN base64) are masked.
"""

from __future__ import annotations

import base64
import smtplib
import ssl
from dataclasses import dataclass

from ictq.logs import redact

# Everything a send can raise that is about the mail server, not about our code.
SEND_ERRORS: tuple[type[BaseException], ...] = (smtplib.SMTPException, OSError)


@dataclass(frozen=True)
class SendProblem:
    permanent: bool
    reason: str


def classify(exc: BaseException, username: str = "", password: str = "") -> SendProblem:
    """Whether ``exc`` (from smtplib or the socket) is worth retrying, and why it happened."""
    permanent, reason = _classify(exc)
    return SendProblem(permanent, redact(" ".join(reason.split()), password_forms(username, password)))


def _classify(exc: BaseException) -> tuple[bool, str]:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        replies = [(code, _text(msg), rcpt) for rcpt, (code, msg) in exc.recipients.items()]
        permanent = any(code >= 500 for code, _, _ in replies)
        return permanent, "; ".join(f"recipient {rcpt} refused: {code} {text}" for code, text, rcpt in replies)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return exc.smtp_code >= 500, f"SMTP authentication failed: {exc.smtp_code} {_text(exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPResponseException):
        stage = _STAGES.get(type(exc), "the server replied")
        return exc.smtp_code >= 500, f"{stage}: {exc.smtp_code} {_text(exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return True, f"the mail server does not support what is needed: {exc}"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return False, f"the mail server closed the connection: {exc or 'unexpectedly'}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return True, (f"the mail server's TLS certificate was not accepted: {exc.verify_message or exc} "
                      "(set MAIL_CA_FILE, or MAIL_VERIFY_PEER=false for a test server)")
    if isinstance(exc, smtplib.SMTPException):  # what smtplib could not do with this server
        return True, f"{type(exc).__name__}: {exc}"
    if isinstance(exc, OSError):
        return False, f"cannot talk to the mail server: {type(exc).__name__}: {exc.strerror or exc}"
    return True, f"{type(exc).__name__}: {exc}"


_STAGES: dict[type[BaseException], str] = {
    smtplib.SMTPConnectError: "the mail server refused the connection",
    smtplib.SMTPHeloError: "the mail server refused EHLO",
    smtplib.SMTPSenderRefused: "the sender was refused",
    smtplib.SMTPDataError: "the message was refused",
}


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def password_forms(username: str, password: str) -> tuple[str, ...]:
    """The password as typed and as AUTH PLAIN / AUTH LOGIN send it (base64)."""
    if not password:
        return ()
    forms = {
        password,
        base64.b64encode(password.encode()).decode(),
        base64.b64encode(f"\0{username}\0{password}".encode()).decode(),
    }
    return tuple(sorted(forms, key=len, reverse=True))
