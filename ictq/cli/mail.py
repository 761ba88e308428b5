"""``ictq test-email``: queue both built-in notifications to one address, optionally wait.

Everything is checked before anything is queued: the address, the mail settings, the
templates (both messages are rendered once) and the ledger table.
"""

from __future__ import annotations

import secrets
import time

import click

from ictq.cli.options import SECONDS
from ictq.cli.output import say
from ictq.cli.state import State, pass_state
from ictq.client import Client, Dispatched
from ictq.errors import MailCheckFailed, MailCheckTimeout
from ictq.mail.address import InvalidAddress, parse_address
from ictq.mail.ledger import SentLedger
from ictq.mail.notifications import ACCOUNT_ACTIVATION, PASSWORD_RESET, notify
from ictq.mail.settings import mail_settings
from ictq.mail.status import State as MailState
from ictq.mail.status import Status, status_of

POLL_SECONDS = 0.2
EXIT_TIMEOUT = MailCheckTimeout.exit_code


def _address(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return parse_address(value)
    except InvalidAddress as exc:
        raise click.BadParameter(f"{value!r} is not a valid e-mail address: {exc}") from None


@click.command("test-email")
@click.option("--email", required=True, callback=_address, help="Where to send the two test notifications.")
@click.option("--wait", type=SECONDS, default=None, metavar="SECONDS",
              help="Wait up to SECONDS for a worker to send them (or fail), and say which.")
@click.option("--locale", default=None, help="The messages' language (default: APP_LOCALE, else ru).")
@pass_state
def test_email(state: State, email: str, wait: float | None, locale: str | None) -> None:
    """Queue a password-reset and an account-activation e-mail to --email.

    Exit codes: 0 queued (with --wait: both sent), 1 a message failed, 3 not sent within --wait.
    """
    mail = mail_settings(state.settings)
    with state.client() as client:
        ledger = SentLedger(client.storage)
        ledger.check()
        token = secrets.token_urlsafe(24)
        queued = [
            notify(PASSWORD_RESET.name, email, {"token": token}, locale=locale, client=client),
            notify(ACCOUNT_ACTIVATION.name, email, {"token": token}, locale=locale, client=client),
        ]
        click.echo(f"mailer: {mail.describe()}")
        for job in queued:
            say(f"queued {job.name} id={job.id} uuid={job.uuid} queue={job.queue} to={email}")
        if wait is not None:
            _report(_wait(client, ledger, queued, wait), wait)


def _wait(client: Client, ledger: SentLedger, queued: list[Dispatched], seconds: float) -> dict[str, Status]:
    deadline = time.monotonic() + seconds
    while True:
        states = {job.name: status_of(client.storage, ledger, job) for job in queued}
        if all(s.state is not MailState.WAITING for s in states.values()) or time.monotonic() >= deadline:
            return states
        time.sleep(POLL_SECONDS)


def _report(states: dict[str, Status], seconds: float) -> None:
    for name, status in states.items():
        detail = f": {status.detail}" if status.detail else ""
        word = "not sent yet" if status.state is MailState.WAITING else status.state.value
        say(f"{word} {name}{detail}")
    if any(s.state in (MailState.FAILED, MailState.GONE) for s in states.values()):
        raise MailCheckFailed("a test e-mail failed (see above and failed_jobs)")
    if any(s.state is MailState.WAITING for s in states.values()):
        raise MailCheckTimeout(f"not sent within {seconds:g}s: is a worker running on the queue?")
