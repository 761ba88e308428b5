"""Monitoring commands: ``status`` and ``workers`` for people, ``monitor`` (Laravel's
``queue:monitor``), ``health`` (Nagios-style) and ``metrics`` (Prometheus)."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any

import click

from ictq import control, laravel_cache, logs, ops, triage
from ictq import health as checks
from ictq.cli.options import COUNT, QUEUES, comma_list, json_option
from ictq.cli.output import age, emit, table
from ictq.cli.state import State, pass_state
from ictq.config import shown, whole_number
from ictq.db import Storage
from ictq.db.workers import WorkersRepository
from ictq.errors import ConfigError, DatabaseUnavailable, IctqError, SchemaError


@click.command()
@click.argument("queues", type=QUEUES)
@click.option("--max", "maximum", type=COUNT, default=1000, show_default=True,
              help="The most jobs a queue may hold.")
@json_option
@pass_state
def monitor(state: State, queues: str, maximum: int, as_json: bool) -> None:
    """Check QUEUES (comma-separated) against --max; exit 1 when any is over (queue:monitor)."""
    with state.storage() as storage:
        rows = triage.sizes(storage, int(time.time()), comma_list(queues))
    over = [row for row in rows if row.size > maximum]
    emit(as_json, {"max": maximum, "queues": [{**r.as_dict(), "over": r in over} for r in rows]}, lambda: "\n".join(
        f"{'OVER' if r in over else 'OK  '} {r.queue}: size={r.size} pending={r.pending} delayed={r.delayed} "
        f"reserved={r.reserved} oldest={age(r.oldest_pending_age)} max={maximum}" for r in rows))
    if over:
        sys.exit(1)


@click.command()
@json_option
@pass_state
def status(state: State, as_json: bool) -> None:
    """One screen for a human: queues, failed jobs, paused queues, restart signal."""
    with state.storage() as storage:
        rows = triage.sizes(storage, int(time.time()))
        flags = control.read(storage)
        where = storage.describe()
        laravel = _laravel_signals(state, storage)
    summary = ops.total(rows)
    restart = _stamp(flags.restart) if flags.restart else None
    data = {"database": where, "queues": [r.as_dict() for r in rows], "total": summary.as_dict(),
            "failed": {"all": summary.failed, "last_hour": summary.failed_last_hour},
            "paused": sorted(flags.paused), "restart_requested_at": restart, "laravel": laravel}
    emit(as_json, data, lambda: _status_text(where, rows, summary, sorted(flags.paused), restart, laravel))


def _laravel_signals(state: State, storage: Storage) -> dict[str, Any] | None:
    """Beside a Laravel app: its cache store and the last ``queue:restart`` it holds."""
    settings = state.settings
    if settings.laravel_cache is None:
        return None
    store = laravel_cache.open_store(settings, storage)
    if store is None:
        return {"store": settings.laravel_cache.store, "reachable": False, "restart_requested_at": None}
    try:
        value = store.get(laravel_cache.RESTART_KEY)
    except IctqError as exc:
        return {"store": store.name, "reachable": False, "error": str(exc), "restart_requested_at": None}
    restart = _stamp(str(value)) if value is not None else None
    return {"store": store.name, "reachable": True, "restart_requested_at": restart}


def _stamp(raw: str) -> str:
    """A restart stamp (seconds since the epoch) as a UTC time; what is stored if it is not one."""
    try:
        return datetime.fromtimestamp(float(raw), timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (ValueError, OverflowError, OSError):
        return f"{raw[:40]!r} (not a time)"


def _status_text(where: str, rows: Sequence[ops.QueueSize], summary: ops.QueueSize, paused: list[str],
                 restart: str | None, laravel: dict[str, Any] | None) -> str:
    lines = [f"ictq status: {where}", ""]
    if rows:
        lines.append(table(["queue", "size", "pending", "delayed", "reserved", "oldest"],
                           [[r.queue, r.size, r.pending, r.delayed, r.reserved, age(r.oldest_pending_age)]
                            for r in rows]))
    else:
        lines.append("no queued jobs")
    lines += ["", f"failed jobs: {summary.failed} in all, {summary.failed_last_hour} in the last hour",
              f"paused queues: {', '.join(paused) or 'none'}"]
    if restart:
        lines.append(f"last restart signal: {restart} (workers started before it exit after their current job)")
    else:
        lines.append("last restart signal: never")
    if laravel is not None:
        if not laravel["reachable"]:
            why = laravel.get("error") or "a store ictq cannot read"
            lines.append(f"Laravel's signals ({laravel['store']} cache): not readable: {why}")
        else:
            lines.append(f"Laravel's last queue:restart ({laravel['store']} cache): "
                         f"{laravel['restart_requested_at'] or 'never'}")
    return "\n".join(lines)


@click.command()
@click.option("--all", "show_all", is_flag=True, help="Also list workers that stopped or died recently.")
@json_option
@pass_state
def workers(state: State, show_all: bool, as_json: bool) -> None:
    """Workers on every host, from their heartbeats: alive or dead, current job, counts."""
    now = int(time.time())
    with state.storage() as storage:
        records = [r for r in WorkersRepository(storage).all() if show_all or r.alive(now)]
    emit(as_json, [r.as_dict(now) for r in records], lambda: table(
        ["name", "host", "pid", "queues", "state", "up", "last beat", "job", "processed", "failed"],
        [[r.name, r.host, r.pid, r.queues, "alive" if r.alive(now) else "dead", age(now - r.started_at),
          age(now - r.beat_at) + " ago", f"{r.job_name} #{r.job_id}" if r.job_id else "-", r.processed, r.failed]
         for r in records]) if records else "no workers")


class _NagiosCommand(click.Command):
    """Usage errors exit 3 (UNKNOWN), as monitoring plugins do, not 2 (which would read CRITICAL)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            setattr(exc, "exit_code", checks.UNKNOWN)  # noqa: B010 - click declares it a class variable
            raise


def _threshold(minimum: bool) -> Callable[[click.Context, click.Parameter, str], checks.Threshold]:
    def convert(ctx: click.Context, param: click.Parameter, value: str) -> checks.Threshold:
        try:
            return checks.parse_threshold(value, minimum)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None

    return convert


def _threshold_option(name: str, key: str, what: str, minimum: bool = False) -> Callable[[Any], Any]:
    default = checks.DEFAULTS[key]
    return click.option(name, key, metavar="N|WARN,CRIT", default=str(default), show_default=True,
                        callback=_threshold(minimum), help=what)


@click.command(cls=_NagiosCommand)
@_threshold_option("--max-size", "max_size", "Jobs in the largest queue (pending + delayed + reserved).")
@_threshold_option("--max-age", "max_age", "Seconds the oldest pending job may wait.")
@_threshold_option("--max-failed-per-hour", "max_failed_per_hour", "Jobs failed in the last hour, all queues.")
@_threshold_option("--min-workers", "min_workers",
                   "Live workers serving the queues: below WARN is WARNING, below CRIT is CRITICAL.", minimum=True)
@click.option("--queue", type=QUEUES,
              help="Queues to check, comma-separated (default: all queues with jobs or failures).")
@pass_state
def health(state: State, max_size: checks.Threshold, max_age: checks.Threshold,
           max_failed_per_hour: checks.Threshold, min_workers: checks.Threshold, queue: str | None) -> None:
    """One line and a Nagios exit code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.

    A threshold is N (past N is CRITICAL) or WARN,CRIT (past WARN is WARNING, past CRIT is
    CRITICAL). UNKNOWN: the database cannot be reached, the tables are missing (run ictq
    migrate) or the configuration is wrong. For cron, Nagios/Icinga (check_by_ssh or NRPE) or
    a load balancer probe.
    """
    thresholds = checks.Thresholds(max_size, max_age, max_failed_per_hour, min_workers)
    try:
        report = _measure(state, thresholds, comma_list(queue))
    except ConfigError as exc:
        report = checks.unknown(f"configuration: {exc}")
    except SchemaError as exc:
        report = checks.unknown(f"queue tables missing or wrong: {exc}")
    except DatabaseUnavailable as exc:
        report = checks.unknown(f"database unavailable: {exc}")
    except IctqError as exc:
        report = checks.unknown(f"database error: {exc}")
    except Exception as exc:  # noqa: BLE001 - a monitoring plugin answers UNKNOWN, whatever went wrong
        report = checks.unknown(f"unexpected error: {type(exc).__name__}: {exc}")
    click.echo(state.one_line(report.line))
    sys.exit(report.state)


def _measure(state: State, thresholds: checks.Thresholds, queues: Sequence[str]) -> checks.Report:
    settings = state.settings
    if settings.db.dialect == "sqlite" and settings.db.database != ":memory:" \
            and not Path(settings.db.database).exists():
        return checks.unknown(f"the SQLite database {settings.db.database} does not exist (run: ictq migrate)")
    with state.storage() as storage:
        return checks.check(storage, thresholds, queues)


@click.command()
@click.option("--listen", default="127.0.0.1:9108", show_default=True, metavar="HOST:PORT",
              help="Address of the HTTP endpoint (GET /metrics).")
@click.option("--once", is_flag=True, help="Print the metrics once (Prometheus text format) and exit.")
@pass_state
def metrics(state: State, listen: str, once: bool) -> None:
    """Serve Prometheus metrics of the whole queue, read from the database at each scrape.

    Queue depth by queue and state, age of the oldest pending job, failed jobs by queue and
    job, runs and durations per job and outcome (summed over every worker on every host),
    workers alive. One exporter is enough for all hosts. TERM or INT stop it.
    """
    # Imported here, not at start-up: every `ictq` command (a starting worker too) loads this module.
    from prometheus_client import start_http_server

    from ictq import metrics as exporter

    try:
        whole_number(listen.rpartition(":")[2], 1, 65535)  # ASCII digits: int() also reads "٣"
        host, port = exporter.parse_listen(listen)
    except ValueError:
        raise click.BadParameter(f"{shown(listen)} is not HOST:PORT (e.g. 127.0.0.1:9108; a port 1 to 65535 "
                                 "in ASCII digits)", param_hint="--listen") from None
    if once:
        _print_once(state)
        return
    settings = state.settings
    logger = logs.setup(None, settings.log_level, settings.secrets)
    collector = exporter.QueueCollector(state.open_storage, logger, masker=state.masker)
    registry = exporter.registry_for(collector)
    try:
        server, thread = start_http_server(port, host, registry)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {listen}: {exc.strerror or exc}") from None
    click.echo(f"serving metrics on {exporter.describe_listen(host, port)} ({settings.db.connection})")
    _wait_for_stop()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
    collector.close()


def _print_once(state: State) -> None:
    from prometheus_client import generate_latest

    from ictq import metrics as exporter

    quiet = logging.getLogger("ictq.metrics.once")
    quiet.disabled = True
    collector = exporter.QueueCollector(state.open_storage, quiet, masker=state.masker)
    text = generate_latest(exporter.registry_for(collector)).decode()
    collector.close()
    click.echo(state.mask(text), nl=False)
    if collector.last_error is not None:
        raise DatabaseUnavailable(f"the database did not answer: {collector.last_error}")


def _wait_for_stop() -> None:
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handler)
    while not stop.wait(1.0):
        pass
