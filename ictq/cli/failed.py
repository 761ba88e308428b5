"""Failed-job commands: Laravel's ``queue:failed``, ``queue:retry``, ``queue:forget``, ``queue:flush``
and ``queue:prune-failed``, with groups of look-alike failures (:mod:`ictq.triage`).

Reading commands take ``--json``. Every error is one line (see :func:`ictq.cli.main`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import click

from ictq import ops, triage
from ictq.cli.options import (
    FAILED_REF,
    HOURS,
    LIMIT,
    NAME,
    QUEUE,
    QUEUES,
    WHOLE_SECONDS,
    comma_list,
    json_option,
    queue_option,
)
from ictq.cli.output import emit, say, table
from ictq.cli.state import State, pass_state
from ictq.config import MAX_ID, shown, whole_number
from ictq.db import Storage
from ictq.display import text_of


@click.group(invoke_without_command=True)
@queue_option
@click.option("--limit", type=LIMIT, default=50, show_default=True)
@click.option("--group", "grouped", is_flag=True,
              help="Group by job and error signature (numbers, ids, addresses normalised), biggest first.")
@json_option
@pass_state
@click.pass_context
def failed(ctx: click.Context, state: State, queue: str | None, limit: int, grouped: bool, as_json: bool) -> None:
    """Failed jobs, newest first (queue:failed). `ictq failed show ID|UUID` shows one whole.

    With --group: one line per group, with its count and first/last failure; retry or forget
    a whole group with `ictq retry --group ID` / `ictq forget --group ID` (both take --dry-run).
    """
    if ctx.invoked_subcommand is not None:
        return
    if grouped:
        with state.storage() as storage:
            found = triage.groups(storage, comma_list(queue))[:limit]
        emit(as_json, [g.as_dict() for g in found], lambda: table(
            ["group", "count", "job", "first failed", "last failed", "signature"],
            [[g.id, g.count, g.job, g.first_seen, g.last_seen, g.signature[:120]] for g in found])
            if found else "no failed jobs")
        return
    with state.storage() as storage:
        rows = ops.failed_recent(storage, comma_list(queue), limit)
    emit(as_json, [r.as_dict() for r in rows], lambda: table(
        ["id", "uuid", "connection", "queue", "job", "failed at", "exception"],
        [[r.id, r.uuid, r.connection, r.queue, r.name, r.failed_at, r.reason[:100]] for r in rows]))


@failed.command("show")
@click.argument("ref", type=FAILED_REF)
@json_option
@pass_state
def failed_show(state: State, ref: str, as_json: bool) -> None:
    """One failed job: the whole exception and payload."""
    with state.storage() as storage:
        row = ops.failed_find(storage, ref)
    emit(as_json, row.as_dict(full=True), lambda: "\n".join([
        f"id:         {row.id}", f"uuid:       {row.uuid}", f"connection: {row.connection}",
        f"queue:      {row.queue}", f"job:        {row.name}", f"failed at:  {row.failed_at}",
        "payload:", row.payload, "exception:", row.exception]))


def _id_range(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    low, sep, high = value.partition("-")
    try:
        bounds = whole_number(low, 0, MAX_ID), whole_number(high, 0, MAX_ID)
    except ValueError:
        bounds = (1, 0)
    if not sep or bounds[0] > bounds[1]:
        raise click.BadParameter(f"{shown(value)} is not a range of ids like 10-20", param_hint="--range")
    return bounds


group_option = click.option("--group", "group_ref", type=NAME, metavar="ID",
                            help="A group of failed jobs from `ictq failed --group` (its id or a prefix).")
dry_run_option = click.option("--dry-run", is_flag=True, help="Only say which failed jobs it would touch.")


def _selected(storage: Storage, refs: tuple[str, ...], queue: str | None, bounds: tuple[int, int] | None,
              group_ref: str | None) -> Iterator[list[ops.FailedRow]]:
    """The failed jobs that retry's arguments name, in batches."""
    if group_ref is not None:
        queues = comma_list(queue)
        yield from triage.members(storage, triage.resolve(storage, group_ref, queues), queues)
    if "all" in refs or bounds is not None:
        low, high = bounds or (0, 2**62)
        yield from ops.failed_all(storage, queue or "", low, high)
    named = [ops.failed_find(storage, ref) for ref in refs if ref != "all"]
    if named:
        yield named


@click.command()
@click.argument("refs", nargs=-1, type=FAILED_REF)
@click.option("--queue", type=QUEUE, help="With 'all', --range or --group: only failed jobs of this queue.")
@click.option("--range", "id_range", help="Retry failed jobs with ids in this range, e.g. 10-20.")
@click.option("--deadline", type=WHOLE_SECONDS, default=None, metavar="SECONDS",
              help="Give jobs with a retryUntil deadline a new one, SECONDS from now (PHP jobs need it).")
@group_option
@dry_run_option
@pass_state
def retry(state: State, refs: tuple[str, ...], queue: str | None, id_range: str | None, group_ref: str | None,
          deadline: int | None, dry_run: bool) -> None:
    """Put failed jobs back on their queue: IDs or UUIDs, `all`, --range or --group (queue:retry).

    The payload goes back unchanged (a Laravel job stays runnable by PHP workers); attempts
    start again from 0. A job with a retryUntil deadline gets a new one, as Laravel's
    queue:retry gives it: an ictq job its original window again, from now; a PHP job only
    with --deadline (else it stays failed: php artisan queue:retry asks its class).
    """
    bounds = _id_range(id_range)
    if not refs and bounds is None and group_ref is None:
        raise click.UsageError("name failed jobs by ID or UUID, or say 'all', or give --range or --group")
    now = int(time.time())
    requeued, refused = 0, 0
    each = group_ref is None and "all" not in refs and bounds is None
    with state.storage() as storage:
        for batch in _selected(storage, refs, queue, bounds, group_ref):
            if dry_run:
                for row in batch:
                    say(f"would re-queue failed job {row.id} ({row.name}, uuid {row.uuid}) on {row.queue}")
                requeued += len(batch)
                continue
            done = ops.retry(storage, batch, now, deadline)
            requeued += len(done.moved)
            refused += len(done.refused)
            if each:
                for row in done.moved:
                    say(f"re-queued failed job {row.id} ({row.name}, uuid {row.uuid}) on {row.queue}")
            for row, reason in done.refused:
                click.echo(f"not re-queued: failed job {row.id} ({text_of(row.name)}): {reason}", err=True)
    click.echo(f"would re-queue {requeued} failed job(s) (dry run)" if dry_run
               else f"re-queued {requeued} failed job(s)")
    if refused:
        sys.exit(1)  # some jobs were refused: they stay failed


@click.command()
@click.argument("ref", required=False, type=FAILED_REF)
@group_option
@click.option("--queue", type=QUEUES, help="With --group: only failed jobs of this queue.")
@dry_run_option
@pass_state
def forget(state: State, ref: str | None, group_ref: str | None, queue: str | None, dry_run: bool) -> None:
    """Delete one failed job by ID or UUID, or a whole --group (queue:forget)."""
    if (ref is None) == (group_ref is None):
        raise click.UsageError("name one failed job by ID or UUID, or give --group (not both)")
    with state.storage() as storage:
        if ref is not None:
            row = ops.failed_find(storage, ref)
            if not dry_run:
                ops.forget(storage, row)
            say(f"{'would forget' if dry_run else 'forgot'} failed job {row.id} ({row.name}, uuid {row.uuid})")
            return
        assert group_ref is not None
        group = triage.resolve(storage, group_ref, comma_list(queue))
        if dry_run:
            count = sum(len(batch) for batch in triage.members(storage, group, comma_list(queue)))
        else:
            count = triage.forget_group(storage, group, comma_list(queue))
    verb = "would forget" if dry_run else "forgot"
    say(f"{verb} {count} failed job(s) of group {group.id} ({group.job}: {group.signature})"
               + (" (dry run)" if dry_run else ""))


@click.command()
@click.option("--hours", type=HOURS, default=None, help="Only failed jobs older than this.")
@pass_state
def flush(state: State, hours: int | None) -> None:
    """Delete every failed job, or those older than --hours (queue:flush)."""
    now = datetime.now(timezone.utc)
    before = now - timedelta(hours=hours) if hours is not None else now + timedelta(days=1)
    with state.storage() as storage:
        deleted = ops.prune_failed(storage, before)
    click.echo(f"deleted {deleted} failed job(s)" + (f" older than {hours}h" if hours is not None else ""))


@click.command("prune-failed")
@click.option("--hours", type=HOURS, default=24, show_default=True,
              help="Delete failed jobs older than this many hours.")
@pass_state
def prune_failed(state: State, hours: int) -> None:
    """Delete failed jobs older than --hours, in chunks (queue:prune-failed)."""
    before = datetime.now(timezone.utc) - timedelta(hours=hours)
    with state.storage() as storage:
        deleted = ops.prune_failed(storage, before)
    click.echo(f"pruned {deleted} failed job(s) older than {hours}h")
