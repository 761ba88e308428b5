"""Building the MIME message: multipart/alternative (plain text + HTML) with the headers a
mail server and a spam filter expect (From, To, Subject, Date, Message-ID, Content-Language).
"""

from __future__ import annotations

from datetime import datetime, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from ictq.mail.templates import Rendered


def message_id(job_uuid: str, from_address: str) -> str:
    """A Message-ID that is the same on every attempt of one job (the job's uuid at the sender's domain)."""
    domain = from_address.rpartition("@")[2]
    if not domain.startswith("["):
        domain = domain.encode("idna").decode("ascii")
    return f"<{job_uuid}@{domain}>"


def build_message(
    rendered: Rendered,
    *,
    sender: str,
    sender_name: str,
    recipient: str,
    msgid: str,
    locale: str,
    now: datetime | None = None,
) -> EmailMessage:
    """The message to send; header values are encoded by the email package (RFC 2047)."""
    message = EmailMessage(policy=SMTP)
    message["From"] = Address(display_name=sender_name, addr_spec=sender)
    message["To"] = Address(addr_spec=recipient)
    message["Subject"] = rendered.subject
    message["Date"] = format_datetime(now or datetime.now(timezone.utc))
    message["Message-ID"] = msgid
    message.set_content(rendered.text, subtype="plain", charset="utf-8")
    message.add_alternative(rendered.html, subtype="html", charset="utf-8")
    message["Content-Language"] = locale  # after the content: set_content() drops Content-* headers
    return message
