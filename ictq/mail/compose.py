"""From a notification's name, its parameters and the settings to a ready MIME message."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from ictq.mail.address import parse_address
from ictq.mail.message import build_message, message_id
from ictq.mail.settings import MailSettings
from ictq.mail.templates import RenderError, render

_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:[_-][A-Za-z0-9]{2,8})?$")


@dataclass(frozen=True)
class Composed:
    message: EmailMessage
    message_id: str
    recipient: str
    locale: str


def compose(
    notification: str, settings: MailSettings, to: str, params: Mapping[str, Any], locale: str | None, job_uuid: str
) -> Composed:
    """Render ``notification`` for ``to``; raises InvalidAddress or RenderError on bad input."""
    recipient = parse_address(to)
    chosen = locale or settings.locale
    if not _LOCALE.match(chosen):
        raise RenderError(f"{chosen!r} is not a locale (such as ru or en)")
    context = {
        **params,
        "app_name": settings.app_name,
        "app_url": settings.app_url,
        "locale": chosen,
        "email": recipient,
    }
    rendered = render(notification, chosen, context)
    msgid = message_id(job_uuid, settings.from_address)
    message = build_message(rendered, sender=settings.from_address, sender_name=settings.from_name,
                            recipient=recipient, msgid=msgid, locale=chosen)
    return Composed(message, msgid, recipient, chosen)
