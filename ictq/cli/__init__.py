"""The ``ictq`` command line: Laravel's ``artisan queue:*`` commands for ictq.

One module per command family, every command registered below, in one place:
:mod:`~ictq.cli.work` (``work``), :mod:`~ictq.cli.queue` (the jobs table and the workers'
flags), :mod:`~ictq.cli.failed` (failed jobs), :mod:`~ictq.cli.monitor` (status, health,
metrics), :mod:`~ictq.cli.capacity` (capacity advice), :mod:`~ictq.cli.deploy`
(``supervisor-config``), :mod:`~ictq.cli.mail` (``test-email``). Each reaches the settings
through the one :class:`~ictq.cli.state.State`.

Every error is one line on stderr (``ictq: error: ...``) and a non-zero exit code; set
``ICTQ_DEBUG=1`` to see a traceback for an unexpected error.
"""

from __future__ import annotations

import os
import sys
import traceback

import click

from ictq import __version__
from ictq.cli import capacity, dashboard, deploy, failed, mail, monitor, queue, work
from ictq.cli.state import State
from ictq.errors import IctqError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--env-file", envvar="ICTQ_ENV_FILE",  # checked when first read: `ictq health` answers UNKNOWN
              help="The application's .env (default: ./.env; env ICTQ_ENV_FILE).")
@click.version_option(__version__, prog_name="ictq")
@click.pass_context
def root(ctx: click.Context, env_file: str | None) -> None:
    """ictq: Laravel's database queue (jobs / failed_jobs tables) with a Python worker."""
    ctx.ensure_object(State).env_file = env_file


for command in (
    work.work,
    queue.migrate, queue.dispatch, queue.size, queue.list_, queue.clear,
    queue.restart, queue.pause, queue.resume,
    failed.failed, failed.retry, failed.forget, failed.flush, failed.prune_failed,
    monitor.status, monitor.workers, monitor.monitor, monitor.health, monitor.metrics,
    capacity.capacity,
    deploy.supervisor_config,
    mail.test_email,
    dashboard.dashboard,
):
    root.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning every error into one line and an exit code."""
    state = State()
    try:
        root.main(args=argv, prog_name="ictq", standalone_mode=False, obj=state)
    except click.exceptions.Abort:
        click.echo("ictq: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        hint = ""
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            hint = f" (see: {exc.ctx.command_path} --help)"
        click.echo(f"ictq: error: {state.one_line(exc.format_message())}{hint}", err=True)
        sys.exit(exc.exit_code)
    except IctqError as exc:
        click.echo(f"ictq: error: {state.one_line(str(exc))}", err=True)
        sys.exit(exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, never a traceback
        if os.environ.get("ICTQ_DEBUG"):
            traceback.print_exc()
        click.echo(f"ictq: unexpected error: {type(exc).__name__}: {state.one_line(str(exc))}", err=True)
        sys.exit(1)
