"""Notifications: e-mails sent by queued jobs, one job name (``mail.NAME``) per notification.

The built-in ones are ``password_reset`` and ``account_activation``; an application registers
its own with :func:`register` (and its templates with ``templates=``), then queues them with
:func:`notify`. Importing this module (``ICTQ_JOBS=ictq.mail``) registers the built-ins in a worker.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ictq import jobs
from ictq.client import Client, Delay, default_client
from ictq.errors import ConfigError, DispatchError, InvalidAddress, RenderError
from ictq.jobs import Dispatched
from ictq.mail.compose import compose
from ictq.mail.delivery import Notification, deliver
from ictq.mail.settings import mail_settings
from ictq.mail.templates import add_template_dir

DEFAULT_TRIES = 5
DEFAULT_BACKOFF = (10, 60, 300, 900)
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


_registry: dict[str, Notification] = {}


def register(
    name: str,
    *,
    templates: str | Path | None = None,
    tries: int = DEFAULT_TRIES,
    backoff: int | Sequence[int] = DEFAULT_BACKOFF,
    queue: str | None = None,
    timeout: int | None = None,
) -> Notification:
    """Register the notification ``name``, rendered from ``LOCALE/NAME.{subject.txt,txt,html}``.

    ``templates`` is a directory searched before the built-in templates. ``tries`` counts
    every attempt (0 = unlimited); ``backoff`` is the wait before each retry after a temporary
    failure (MAIL_BACKOFF overrides it for every notification).
    """
    if not _NAME.match(name):
        raise ConfigError(f"notification name {name!r}: use lower-case letters, digits and _")
    if templates is not None:
        try:
            add_template_dir(templates)
        except RenderError as exc:
            raise ConfigError(f"notification {name}: {exc}") from None
    delays = (backoff,) if isinstance(backoff, int) else tuple(backoff)
    notification = Notification(name, tries, delays, queue)

    def handler(to: str, params: dict[str, Any] | None = None, locale: str | None = None) -> None:
        deliver(notification, to, params or {}, locale)

    handler.__qualname__ = f"notification[{name}]"
    jobs.job(notification.job_name, queue=queue, tries=tries, backoff=delays, timeout=timeout)(handler)
    _registry[name] = notification
    return notification


def get(name: str) -> Notification:
    try:
        return _registry[name]
    except KeyError:
        known = ", ".join(sorted(_registry)) or "none"
        raise DispatchError(f"no notification named {name!r} (registered: {known})") from None


def registered() -> list[str]:
    return sorted(_registry)


def notify(
    name: str,
    to: str,
    params: Mapping[str, Any] | None = None,
    *,
    locale: str | None = None,
    client: Client | None = None,
    delay: Delay = None,
) -> Dispatched:
    """Queue the notification ``name`` to ``to``.

    It is rendered once before it is queued, so a bad address, an unknown locale or a
    missing template parameter is an error here rather than a failed job later.
    """
    notification = get(name)
    client = client or default_client()
    address, values = to.strip(), dict(params or {})
    settings = mail_settings(client.settings)
    try:
        compose(name, settings, address, values, locale, str(uuid.uuid4()))
    except InvalidAddress as exc:
        raise DispatchError(f"{to!r} is not a valid e-mail address: {exc}") from None
    except RenderError as exc:
        raise DispatchError(f"cannot render notification {name}: {exc}") from None
    queue = notification.queue or settings.queue
    data = {"to": address, "params": values, "locale": locale}
    return client.dispatch(notification.job_name, data, queue=queue, delay=delay)


PASSWORD_RESET = register("password_reset")
ACCOUNT_ACTIVATION = register("account_activation")
