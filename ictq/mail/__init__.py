"""E-mail notifications through the queue.

Queue one::

    import ictq.mail

    ictq.mail.notify("password_reset", "user@example.com", {"token": token})

and let a worker send it: every worker registers the built-in notifications
(:mod:`ictq.worker.builtin`); an application's own are registered by its job modules
(``ICTQ_JOBS``). Importing this package registers ``password_reset`` and
``account_activation``; :func:`register` adds an application's own. See docs/mail.md.
"""

from ictq.mail.address import InvalidAddress, parse_address
from ictq.mail.delivery import Notification
from ictq.mail.notifications import get, notify, register, registered
from ictq.mail.settings import MailSettings, Security, mail_settings
from ictq.mail.templates import add_template_dir

__all__ = [
    "InvalidAddress",
    "MailSettings",
    "Notification",
    "Security",
    "add_template_dir",
    "get",
    "mail_settings",
    "notify",
    "parse_address",
    "register",
    "registered",
]
