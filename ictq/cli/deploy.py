"""``ictq supervisor-config``: the Supervisor program for installing by hand.

It renders the role's ``laravel-worker.conf.j2`` through :mod:`ictq.deploy`, with the role's
variable names and defaults, and refuses the same wrong settings.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Any

import click

from ictq.cli.options import BACKOFF, COUNT, MEGABYTES, QUEUES, TRIES, WHOLE_SECONDS, WholeNumber
from ictq.cli.state import State, pass_state
from ictq.config import shown
from ictq.deploy import KINDS, MAX_PROCS, TEMPLATES_ENV, WorkerProgram, find_templates, render_program
from ictq.errors import ConfigError


def _retry_after(state: State) -> int:
    """DB_QUEUE_RETRY_AFTER from the app's .env when there is one, else Laravel's default."""
    try:
        return state.settings.retry_after
    except ConfigError:
        if state.env_file or Path(".env").exists():  # a .env that is there but wrong is never skipped
            raise
        return WorkerProgram.retry_after


PROCS = WholeNumber(0, MAX_PROCS)


def _backoff_text(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """--backoff as it goes into the program's command line, checked here (seconds_list's rule)."""
    return ",".join(str(delay) for delay in BACKOFF.convert(value, param, ctx))


@click.command("supervisor-config")
@click.option("--app-dir", type=click.Path(file_okay=False), default=".", show_default=True,
              help="The application directory (its .env, storage/logs/).")
@click.option("--venv", default=sys.prefix, show_default=True, help="The virtual environment holding bin/ictq.")
@click.option("--user", default=WorkerProgram.user, show_default=True,
              help="The account the workers run as (not root).")
@click.option("--program", default=WorkerProgram.program, show_default=True, help="Supervisor program (group) name.")
@click.option("--kind", type=click.Choice(KINDS), default=WorkerProgram.kind, show_default=True,
              help="ictq workers (ictq work), or the Laravel app's PHP workers (php artisan queue:work database).")
@click.option("--php", default=WorkerProgram.php, show_default=True, help="The PHP binary (--kind php).")
@click.option("--numprocs", type=PROCS, default=WorkerProgram.numprocs, show_default=True, help="Worker processes.")
@click.option("--queue", type=QUEUES, default=WorkerProgram.queue, show_default=True, help="Queues, comma-separated.")
@click.option("--sleep", type=WHOLE_SECONDS, default=WorkerProgram.sleep, show_default=True)
@click.option("--tries", type=TRIES, default=WorkerProgram.tries, show_default=True)
@click.option("--backoff", default=WorkerProgram.backoff, show_default=True, callback=_backoff_text)
@click.option("--timeout", type=WHOLE_SECONDS, default=WorkerProgram.timeout, show_default=True,
              help="Seconds a job may run; below DB_QUEUE_RETRY_AFTER.")
@click.option("--memory", type=MEGABYTES, default=WorkerProgram.memory, show_default=True)
@click.option("--max-time", type=WHOLE_SECONDS, default=WorkerProgram.max_time, show_default=True)
@click.option("--max-jobs", type=COUNT, default=WorkerProgram.max_jobs, show_default=True)
@click.option("--stopwaitsecs", type=WHOLE_SECONDS, default=WorkerProgram.stopwaitsecs, show_default=True,
              help="Seconds Supervisor waits after TERM; above --timeout.")
@click.option("--retry-after", type=WHOLE_SECONDS, default=None,
              help="DB_QUEUE_RETRY_AFTER to check --timeout against (default: from the .env, else 90).")
@click.option("--log-dir", "supervisor_log_dir", default=WorkerProgram.supervisor_log_dir, show_default=True,
              help="Where Supervisor writes one log per process.")
@click.option("--autostart/--no-autostart", default=True, show_default=True)
@click.option("--extra-arg", "extra_args", multiple=True, help="A further argument for ictq work (repeatable).")
@click.option("--templates", "templates_dir", default=None,
              help=f"The deploy templates directory (env {TEMPLATES_ENV}).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write here instead of standard output, e.g. /etc/supervisor/conf.d/laravel-worker.conf.")
@pass_state
def supervisor_config(state: State, /, app_dir: str, retry_after: int | None, templates_dir: str | None,
                      output: str | None, extra_args: tuple[str, ...], **options: Any) -> None:
    """Print the Supervisor program that runs the workers (the role's laravel-worker.conf).

    With --kind php, the Laravel application's PHP workers in --app-dir (its artisan and .env).
    Then, as the seed describes: copy it to /etc/supervisor/conf.d/, and run
    `supervisorctl reread`, `supervisorctl update`, `supervisorctl start 'laravel-worker:*'`.
    """
    if options["user"] == WorkerProgram.user and getpass.getuser() not in ("root", WorkerProgram.user):
        click.echo(f"ictq: note: workers will run as {WorkerProgram.user!r}; pass --user to change", err=True)
    program = WorkerProgram(
        app_dir=str(Path(app_dir).resolve()),
        retry_after=retry_after if retry_after is not None else _retry_after(state),
        extra_args=extra_args,
        **options,
    )
    text = render_program(program, find_templates(templates_dir))
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise click.BadParameter(f"cannot write {shown(output)}: {exc.strerror or type(exc).__name__}",
                                 param_hint="'-o' / '--output'") from None
    click.echo(f"wrote {output}; now: supervisorctl reread && supervisorctl update", err=True)
