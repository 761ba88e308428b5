"""Ops commands: Laravel's ``queue:size``, ``queue:failed``, ``queue:retry``... for ictq.

Reading commands take ``--json``. Every error is one line (see :func:`ictq.cli.main`).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import click

from ictq import control, ops, triage
from ictq.cli import _State, cli, pass_state
from ictq.db import Storage, open_storage
from ictq.db.workers import WorkersRepository


@contextmanager
def _storage(state: _State) -> Iterator[Storage]:
    storage = open_storage(state.settings)
    try:
        yield storage
    finally:
        storage.close()


def _queues(value: str | None) -> list[str]:
    return [q.strip() for q in (value or "").split(",") if q.strip()]


def _age(seconds: int | None) -> str:
    """45s, 12m, 3h, 2d."""
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)


def _emit(as_json: bool, data: Any, text: Callable[[], str]) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2) if as_json else text())


queue_option = click.option("--queue", help="Queues, comma-separated (default: all).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@cli.command()
@queue_option
@json_option
@pass_state
def size(state: _State, queue: str | None, as_json: bool) -> None:
    """Jobs per queue: pending (available now), delayed, reserved; failed counts (queue:size)."""
    with _storage(state) as storage:
        rows = ops.sizes(storage, int(time.time()), _queues(queue))
    summary = ops.total(rows)
    _emit(as_json, {"queues": [r.as_dict() for r in rows], "total": summary.as_dict()}, lambda: _table(
        ["queue", "size", "pending", "delayed", "reserved", "oldest", "failed", "failed/1h"],
        [[r.queue, r.size, r.pending, r.delayed, r.reserved, _age(r.oldest_pending_age), r.failed,
          r.failed_last_hour] for r in [*rows, summary]]))


@cli.command("list")
@queue_option
@click.option("--state", "job_state", type=click.Choice(["any", *ops.STATES]), default="any", show_default=True,
              help="Only jobs in this state.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@json_option
@pass_state
def list_(state: _State, queue: str | None, job_state: str, limit: int, as_json: bool) -> None:
    """Queued jobs, oldest first: id, job, attempts, state, age, available in (queue:list)."""
    with _storage(state) as storage:
        rows = ops.list_jobs(storage, int(time.time()), _queues(queue), job_state, limit)
    _emit(as_json, [r.as_dict() for r in rows], lambda: _table(
        ["id", "queue", "job", "attempts", "state", "age", "available in", "reserved for"],
        [[r.id, r.queue, r.name, r.attempts, r.state, _age(r.age), _age(r.available_in) if r.available_in else "-",
          _age(r.reserved_for)] for r in rows]))


@cli.command()
@click.option("--queue", help="Queues to clear, comma-separated (default: DB_QUEUE).")
@click.option("--force", is_flag=True, help="Do not ask for confirmation.")
@click.option("--include-reserved", is_flag=True, help="Also delete jobs that workers are running now.")
@pass_state
def clear(state: _State, queue: str | None, force: bool, include_reserved: bool) -> None:
    """Delete the queued jobs of a queue (queue:clear). Running jobs are kept unless told."""
    queues = _queues(queue) or [state.settings.default_queue]
    if not force:
        if not sys.stdin.isatty():
            raise click.UsageError("refusing to clear without a terminal to confirm on; add --force")
        click.confirm(f"Delete every queued job of {', '.join(queues)}?", abort=True)
    with _storage(state) as storage:
        deleted = ops.clear(storage, queues, include_reserved)
    kept = "" if include_reserved else " (reserved jobs kept)"
    click.echo(f"cleared {deleted} job(s) from {', '.join(queues)}{kept}")


@cli.group(invoke_without_command=True)
@queue_option
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--group", "grouped", is_flag=True,
              help="Group by job and error signature (numbers, ids, addresses normalised), biggest first.")
@json_option
@pass_state
@click.pass_context
def failed(ctx: click.Context, state: _State, queue: str | None, limit: int, grouped: bool, as_json: bool) -> None:
    """Failed jobs, newest first (queue:failed). `ictq failed show ID|UUID` shows one whole.

    With --group: one line per group, with its count and first/last failure; retry or forget
    a whole group with `ictq retry --group ID` / `ictq forget --group ID` (both take --dry-run).
    """
    if ctx.invoked_subcommand is not None:
        return
    if grouped:
        with _storage(state) as storage:
            found = triage.groups(storage, _queues(queue))[:limit]
        _emit(as_json, [g.as_dict() for g in found], lambda: _table(
            ["group", "count", "job", "first failed", "last failed", "signature"],
            [[g.id, g.count, g.job, g.first_seen, g.last_seen, g.signature[:120]] for g in found])
            if found else "no failed jobs")
        return
    with _storage(state) as storage:
        rows = ops.failed_recent(storage, _queues(queue), limit)
    _emit(as_json, [r.as_dict() for r in rows], lambda: _table(
        ["id", "uuid", "connection", "queue", "job", "failed at", "exception"],
        [[r.id, r.uuid, r.connection, r.queue, r.name, r.failed_at, r.reason[:100]] for r in rows]))


@failed.command("show")
@click.argument("ref")
@json_option
@pass_state
def failed_show(state: _State, ref: str, as_json: bool) -> None:
    """One failed job: the whole exception and payload."""
    with _storage(state) as storage:
        row = ops.failed_find(storage, ref)
    _emit(as_json, row.as_dict(full=True), lambda: "\n".join([
        f"id:         {row.id}", f"uuid:       {row.uuid}", f"connection: {row.connection}",
        f"queue:      {row.queue}", f"job:        {row.name}", f"failed at:  {row.failed_at}",
        "payload:", row.payload, "exception:", row.exception]))


def _id_range(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    low, sep, high = value.partition("-")
    if not (sep and low.strip().isdigit() and high.strip().isdigit()) or int(low) > int(high):
        raise click.BadParameter(f"{value!r} is not a range of ids like 10-20", param_hint="--range")
    return int(low), int(high)


group_option = click.option("--group", "group_ref", metavar="ID",
                             help="A group of failed jobs from `ictq failed --group` (its id or a prefix).")
dry_run_option = click.option("--dry-run", is_flag=True, help="Only say which failed jobs it would touch.")


def _selected(storage: Storage, refs: tuple[str, ...], queue: str | None, bounds: tuple[int, int] | None,
              group_ref: str | None) -> Iterator[list[ops.FailedRow]]:
    """The failed jobs that retry's arguments name, in batches."""
    if group_ref is not None:
        yield from triage.members(storage, triage.resolve(storage, group_ref, _queues(queue)), _queues(queue))
    if "all" in refs or bounds is not None:
        low, high = bounds or (0, 2**62)
        yield from ops.failed_all(storage, queue or "", low, high)
    named = [ops.failed_find(storage, ref) for ref in refs if ref != "all"]
    if named:
        yield named


@cli.command()
@click.argument("refs", nargs=-1)
@click.option("--queue", help="With 'all', --range or --group: only failed jobs of this queue.")
@click.option("--range", "id_range", help="Retry failed jobs with ids in this range, e.g. 10-20.")
@group_option
@dry_run_option
@pass_state
def retry(state: _State, refs: tuple[str, ...], queue: str | None, id_range: str | None, group_ref: str | None,
          dry_run: bool) -> None:
    """Put failed jobs back on their queue: IDs or UUIDs, `all`, --range or --group (queue:retry).

    The payload goes back unchanged (a Laravel job stays runnable by PHP workers); attempts
    start again from 0.
    """
    bounds = _id_range(id_range)
    if not refs and bounds is None and group_ref is None:
        raise click.UsageError("name failed jobs by ID or UUID, or say 'all', or give --range or --group")
    now = int(time.time())
    requeued = 0
    with _storage(state) as storage:
        for batch in _selected(storage, refs, queue, bounds, group_ref):
            if dry_run:
                for row in batch:
                    click.echo(f"would re-queue failed job {row.id} ({row.name}, uuid {row.uuid}) on {row.queue}")
                requeued += len(batch)
                continue
            requeued += ops.retry(storage, batch, now)
            if group_ref is None and "all" not in refs and bounds is None:
                for row in batch:
                    click.echo(f"re-queued failed job {row.id} ({row.name}, uuid {row.uuid}) on {row.queue}")
    click.echo(f"would re-queue {requeued} failed job(s) (dry run)" if dry_run
               else f"re-queued {requeued} failed job(s)")


@cli.command()
@click.argument("ref", required=False)
@group_option
@click.option("--queue", help="With --group: only failed jobs of this queue.")
@dry_run_option
@pass_state
def forget(state: _State, ref: str | None, group_ref: str | None, queue: str | None, dry_run: bool) -> None:
    """Delete one failed job by ID or UUID, or a whole --group (queue:forget)."""
    if (ref is None) == (group_ref is None):
        raise click.UsageError("name one failed job by ID or UUID, or give --group (not both)")
    with _storage(state) as storage:
        if ref is not None:
            row = ops.failed_find(storage, ref)
            if not dry_run:
                ops.forget(storage, row)
            click.echo(f"{'would forget' if dry_run else 'forgot'} failed job {row.id} ({row.name}, uuid {row.uuid})")
            return
        assert group_ref is not None
        group = triage.resolve(storage, group_ref, _queues(queue))
        count = 0
        for batch in triage.members(storage, group, _queues(queue)):
            count += len(batch) if dry_run else ops.forget_many(storage, batch)
    verb = "would forget" if dry_run else "forgot"
    click.echo(f"{verb} {count} failed job(s) of group {group.id} ({group.job}: {group.signature})"
               + (" (dry run)" if dry_run else ""))


@cli.command()
@click.option("--hours", type=click.IntRange(min=0), default=None, help="Only failed jobs older than this.")
@pass_state
def flush(state: _State, hours: int | None) -> None:
    """Delete every failed job, or those older than --hours (queue:flush)."""
    now = datetime.now(timezone.utc)
    before = now - timedelta(hours=hours) if hours is not None else now + timedelta(days=1)
    with _storage(state) as storage:
        deleted = ops.prune_failed(storage, before)
    click.echo(f"deleted {deleted} failed job(s)" + (f" older than {hours}h" if hours is not None else ""))


@cli.command("prune-failed")
@click.option("--hours", type=click.IntRange(min=0), default=24, show_default=True,
              help="Delete failed jobs older than this many hours.")
@pass_state
def prune_failed(state: _State, hours: int) -> None:
    """Delete failed jobs older than --hours, in chunks (queue:prune-failed)."""
    before = datetime.now(timezone.utc) - timedelta(hours=hours)
    with _storage(state) as storage:
        deleted = ops.prune_failed(storage, before)
    click.echo(f"pruned {deleted} failed job(s) older than {hours}h")


@cli.command()
@pass_state
def restart(state: _State) -> None:
    """Make every worker, on every host, finish its current job and exit (queue:restart).

    Supervisor then starts them again, on the new code.
    """
    with _storage(state) as storage:
        control.request_restart(storage, time.time())
    click.echo("restart requested: workers exit after their current job (Supervisor starts them again)")


@cli.command()
@click.argument("queue")
@pass_state
def pause(state: _State, queue: str) -> None:
    """Stop every worker from taking jobs from QUEUE (queue:pause)."""
    with _storage(state) as storage:
        control.pause(storage, queue, time.time())
    click.echo(f"paused {queue}: workers take no new jobs from it (ictq resume {queue} to undo)")


@cli.command()
@click.argument("queue")
@pass_state
def resume(state: _State, queue: str) -> None:
    """Let workers take jobs from QUEUE again (queue:resume)."""
    with _storage(state) as storage:
        was_paused = control.resume(storage, queue)
    click.echo(f"resumed {queue}" if was_paused else f"{queue} was not paused")


@cli.command()
@click.argument("queues")
@click.option("--max", "maximum", type=click.IntRange(min=0), default=1000, show_default=True,
              help="The most jobs a queue may hold.")
@json_option
@pass_state
def monitor(state: _State, queues: str, maximum: int, as_json: bool) -> None:
    """Check QUEUES (comma-separated) against --max; exit 1 when any is over (queue:monitor)."""
    with _storage(state) as storage:
        rows = ops.sizes(storage, int(time.time()), _queues(queues))
    over = [row for row in rows if row.size > maximum]
    _emit(as_json, {"max": maximum, "queues": [{**r.as_dict(), "over": r in over} for r in rows]}, lambda: "\n".join(
        f"{'OVER' if r in over else 'OK  '} {r.queue}: size={r.size} pending={r.pending} delayed={r.delayed} "
        f"reserved={r.reserved} oldest={_age(r.oldest_pending_age)} max={maximum}" for r in rows))
    if over:
        sys.exit(1)


@cli.command()
@pass_state
def status(state: _State) -> None:
    """One screen for a human: queues, failed jobs, paused queues, restart signal."""
    with _storage(state) as storage:
        rows = ops.sizes(storage, int(time.time()))
        flags = control.read(storage)
        where = storage.describe()
    summary = ops.total(rows)
    lines = [f"ictq status: {where}", ""]
    if rows:
        lines.append(_table(["queue", "size", "pending", "delayed", "reserved", "oldest"],
                            [[r.queue, r.size, r.pending, r.delayed, r.reserved, _age(r.oldest_pending_age)]
                             for r in rows]))
    else:
        lines.append("no queued jobs")
    lines += ["", f"failed jobs: {summary.failed} in all, {summary.failed_last_hour} in the last hour",
              f"paused queues: {', '.join(sorted(flags.paused)) or 'none'}"]
    if flags.restart:
        stamp = datetime.fromtimestamp(float(flags.restart), timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        lines.append(f"last restart signal: {stamp} (workers started before it exit after their current job)")
    else:
        lines.append("last restart signal: never")
    click.echo("\n".join(lines))


@cli.command()
@click.option("--all", "show_all", is_flag=True, help="Also list workers that stopped or died recently.")
@json_option
@pass_state
def workers(state: _State, show_all: bool, as_json: bool) -> None:
    """Workers on every host, from their heartbeats: alive or dead, current job, counts."""
    now = int(time.time())
    with _storage(state) as storage:
        records = [r for r in WorkersRepository(storage).all() if show_all or r.alive(now)]
    _emit(as_json, [r.as_dict(now) for r in records], lambda: _table(
        ["name", "host", "pid", "queues", "state", "up", "last beat", "job", "processed", "failed"],
        [[r.name, r.host, r.pid, r.queues, "alive" if r.alive(now) else "dead", _age(now - r.started_at),
          _age(now - r.beat_at) + " ago", f"{r.job_name} #{r.job_id}" if r.job_id else "-", r.processed, r.failed]
         for r in records]) if records else "no workers")
