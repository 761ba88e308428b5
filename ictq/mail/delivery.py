"""The body of every notification job: render, check the ledger, send, record.

Outcomes, in the worker's terms:

* a temporary failure (connection refused or lost, a 4xx reply) releases the job with the
  notification's backoff for this attempt (or MAIL_BACKOFF), so a retry never comes sooner than
  the policy says; on the last allowed attempt it fails instead, with the server's reason;
* a permanent failure (a 5xx reply, a certificate that does not verify, a bad address or
  template) fails the job at once, with the reason;
* a message whose Message-ID is in the ledger is not sent again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ictq import logs
from ictq.config import load_settings
from ictq.errors import Fail, InvalidAddress, Release, RenderError
from ictq.jobs import current_job
from ictq.mail.compose import Composed, compose
from ictq.mail.errors import SEND_ERRORS, SendProblem, classify
from ictq.mail.ledger import SentRecord, ledger_for
from ictq.mail.settings import MailSettings, mail_settings
from ictq.mail.transport import transport_for
from ictq.policy import delay_after

logger = logging.getLogger(logs.LOGGER_NAME)
JOB_PREFIX = "mail."


@dataclass(frozen=True)
class Notification:
    """A registered notification and its retry policy."""

    name: str
    tries: int
    backoff: tuple[int, ...]
    queue: str | None

    @property
    def job_name(self) -> str:
        return f"{JOB_PREFIX}{self.name}"


def deliver(notification: Notification, to: str, params: Mapping[str, Any], locale: str | None) -> None:
    context = current_job()
    settings = context.settings if context is not None and context.settings is not None else load_settings()
    mail = mail_settings(settings)
    job_uuid = context.uuid if context is not None and context.uuid else str(uuid.uuid4())
    attempt = context.attempt if context is not None else 1
    try:
        composed = compose(notification.name, mail, to, params, locale, job_uuid)
    except (InvalidAddress, RenderError) as exc:
        raise Fail(f"cannot build notification {notification.name} for {to!r}: {exc}") from None
    ledger = ledger_for(settings)
    if ledger.was_sent(composed.message_id):
        _event(logging.WARNING, "mail-already-sent", notification, composed, job_uuid,
               note="a previous attempt sent it; not sending a second copy")
        return
    try:
        transport_for(mail).send(composed.message)
    except SEND_ERRORS as exc:
        limit = context.max_tries if context is not None else None
        raise outcome(classify(exc, mail.username, mail.password), notification, attempt, mail, limit) from None
    ledger.mark_sent(SentRecord(composed.message_id, job_uuid, notification.name, composed.recipient))
    _event(logging.INFO, "mail-sent", notification, composed, job_uuid, mailer=mail.mailer, attempt=attempt)


def outcome(problem: SendProblem, notification: Notification, attempt: int, mail: MailSettings,
            max_tries: int | None = None) -> Exception:
    """What to raise after a failed send: :class:`Fail` or :class:`Release`.

    ``max_tries`` is the running job's effective limit (payload, job, worker option); without
    a running job, the notification's own.
    """
    if problem.permanent:
        return Fail(problem.reason)
    tries = notification.tries if max_tries is None else max_tries
    if tries and attempt >= tries:
        return Fail(f"{problem.reason} (gave up: attempt {attempt} of {tries})")
    return Release(delay=delay_after(mail.backoff or notification.backoff, attempt), reason=problem.reason)


def _event(level: int, action: str, notification: Notification, composed: Composed, job_uuid: str,
           **fields: Any) -> None:
    logs.event(logger, level, action, notification=notification.name, uuid=job_uuid, to=composed.recipient,
               message_id=composed.message_id, locale=composed.locale, **fields)
