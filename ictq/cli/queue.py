"""Queue commands: Laravel's ``queue:*`` for the jobs table and the workers' flags.

``migrate``, ``dispatch``, ``size``, ``list``, ``clear``; ``restart``, ``pause``, ``resume``.
Reading commands take ``--json``. Every error is one line (see :func:`ictq.cli.main`).
"""

from __future__ import annotations

import json
import os
import sys
import time

import click

from ictq import control, laravel_cache, ops, triage
from ictq.cli.options import (
    JOB_NAME,
    LIMIT,
    PAUSED_QUEUE,
    QUEUE,
    QUEUES,
    WHOLE_SECONDS,
    comma_list,
    json_option,
    queue_option,
)
from ictq.cli.output import age, emit, say, table
from ictq.cli.state import State, pass_state
from ictq.cli.work import import_job_modules
from ictq.config import Settings
from ictq.errors import ConfigError


@click.command()
@pass_state
def migrate(state: State) -> None:
    """Create the jobs and failed_jobs tables (or adopt the ones a Laravel app made)."""
    settings = state.settings
    if settings.db.dialect == "sqlite" and settings.db.database != ":memory:":
        directory = os.path.dirname(settings.db.database)
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"DB_DATABASE: cannot create the directory {directory}: "
                              f"{exc.strerror or type(exc).__name__}") from None
    with state.client() as client:
        client.migrate()
    click.echo(f"migrated: tables {settings.queue_table} and {settings.failed_table} are ready "
               f"({client.storage.describe()})")


MAX_DATA_DEPTH = 64  # --data: arrays and objects inside each other, at most


def _depth(value: object) -> int:
    """How deeply arrays and objects nest in parsed JSON (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in children)
    return deepest


@click.command()
@click.argument("name", type=JOB_NAME)
@click.option("--data", "data_json", default="{}", show_default=True, help="The job's arguments as a JSON object.")
@click.option("--queue", type=QUEUE, default=None, help="Queue name (default: the job's queue or DB_QUEUE).")
@click.option("--delay", type=WHOLE_SECONDS, default=0, show_default=True, help="Seconds before it runs.")
@pass_state
def dispatch(state: State, name: str, data_json: str, queue: str | None, delay: int) -> None:
    """Queue the job NAME with --data as its keyword arguments."""
    try:
        data = json.loads(data_json)
    except ValueError as exc:
        raise click.BadParameter(f"not valid JSON ({exc})", param_hint="--data") from None
    except RecursionError:
        raise click.BadParameter(f"nested deeper than {MAX_DATA_DEPTH} levels", param_hint="--data") from None
    if not isinstance(data, dict):
        raise click.BadParameter("must be a JSON object", param_hint="--data")
    if _depth(data) > MAX_DATA_DEPTH:
        raise click.BadParameter(f"nested deeper than {MAX_DATA_DEPTH} levels", param_hint="--data")
    import_job_modules(state.settings, None)
    with state.client() as client:
        result = client.dispatch(name, data, queue=queue, delay=delay)
    say(f"dispatched {result.name} id={result.id} uuid={result.uuid} queue={result.queue}")


@click.command()
@queue_option
@json_option
@pass_state
def size(state: State, queue: str | None, as_json: bool) -> None:
    """Jobs per queue: pending (available now), delayed, reserved; failed counts (queue:size)."""
    with state.storage() as storage:
        rows = triage.sizes(storage, int(time.time()), comma_list(queue))
    summary = ops.total(rows)
    emit(as_json, {"queues": [r.as_dict() for r in rows], "total": summary.as_dict()}, lambda: table(
        ["queue", "size", "pending", "delayed", "reserved", "oldest", "failed", "failed/1h"],
        [[r.queue, r.size, r.pending, r.delayed, r.reserved, age(r.oldest_pending_age), r.failed,
          r.failed_last_hour] for r in [*rows, summary]]))


@click.command("list")
@queue_option
@click.option("--state", "job_state", type=click.Choice(["any", *ops.STATES]), default="any", show_default=True,
              help="Only jobs in this state.")
@click.option("--limit", type=LIMIT, default=50, show_default=True)
@json_option
@pass_state
def list_(state: State, queue: str | None, job_state: str, limit: int, as_json: bool) -> None:
    """Queued jobs, oldest first: id, job, attempts, state, age, available in (queue:list)."""
    with state.storage() as storage:
        rows = ops.list_jobs(storage, int(time.time()), comma_list(queue), job_state, limit)
    emit(as_json, [r.as_dict() for r in rows], lambda: table(
        ["id", "queue", "job", "attempts", "state", "age", "available in", "reserved for"],
        [[r.id, r.queue, r.name, r.attempts, r.state, age(r.age), age(r.available_in) if r.available_in else "-",
          age(r.reserved_for)] for r in rows]))


@click.command()
@click.option("--queue", type=QUEUES, help="Queues to clear, comma-separated (default: DB_QUEUE).")
@click.option("--force", is_flag=True, help="Do not ask for confirmation.")
@click.option("--include-reserved", is_flag=True, help="Also delete jobs that workers are running now.")
@pass_state
def clear(state: State, queue: str | None, force: bool, include_reserved: bool) -> None:
    """Delete the queued jobs of a queue (queue:clear). Running jobs are kept unless told."""
    queues = comma_list(queue) or [state.settings.default_queue]
    if not force:
        if not sys.stdin.isatty():
            raise click.UsageError("refusing to clear without a terminal to confirm on; add --force")
        click.confirm(f"Delete every queued job of {', '.join(queues)}?", abort=True)
    with state.storage() as storage:
        deleted = ops.clear(storage, queues, include_reserved)
    kept = "" if include_reserved else " (reserved jobs kept)"
    say(f"cleared {deleted} job(s) from {', '.join(queues)}{kept}")


@click.command()
@pass_state
def restart(state: State) -> None:
    """Make every worker, on every host, finish its current job and exit (queue:restart).

    Supervisor then starts them again, on the new code.
    """
    settings = state.settings
    with state.storage() as storage:
        told = control.signal_restart(settings, storage, time.time())
    _refused(told, "ictq workers will restart, but Laravel's were not told", "php artisan queue:restart")
    also = f" (and Laravel's, through its {told.laravel} cache)" if told.laravel is not None else ""
    click.echo(f"restart requested: workers{also} exit after their current job (Supervisor starts them again)")
    _warn_unreachable(settings)


@click.command()
@click.argument("queue", type=PAUSED_QUEUE)
@pass_state
def pause(state: State, queue: str) -> None:
    """Stop every worker from taking jobs from QUEUE (queue:pause)."""
    settings = state.settings
    with state.storage() as storage:
        told = control.signal_pause(settings, storage, queue, time.time())
    _refused(told, f"ictq workers pause {queue}, but Laravel's were not told",
             f"php artisan queue:pause {settings.queue_connection}:{queue}")
    say(f"paused {queue}: workers take no new jobs from it (ictq resume {queue} to undo)")
    _warn_unreachable(settings)


@click.command()
@click.argument("queue", type=PAUSED_QUEUE)
@pass_state
def resume(state: State, queue: str) -> None:
    """Let workers take jobs from QUEUE again (queue:resume)."""
    settings = state.settings
    with state.storage() as storage:
        told = control.signal_resume(settings, storage, queue)
    _refused(told, f"ictq workers resume {queue}, but Laravel's were not told",
             f"php artisan queue:continue {settings.queue_connection}:{queue}")
    was_paused = told.changed
    say(f"resumed {queue}" if was_paused else f"{queue} was not paused")


def _refused(told: control.Signalled, done: str, instead: str) -> None:
    """When Laravel's cache could not be told: one line saying what was done, why Laravel was
    not told, and the command that tells it."""
    if told.error is not None:
        raise click.ClickException(f"{done}: {told.error} (run {instead})")


def _warn_unreachable(settings: Settings) -> None:
    store = laravel_cache.unreachable(settings)
    if store is not None:
        click.echo(f"warning: Laravel's {store} cache store is not one ictq can reach (file, database, redis): "
                   "its PHP workers were not told; run the php artisan command too", err=True)

