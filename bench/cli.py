"""``python -m bench`` (``make bench``): run ictq and its peers, print the table, write bench/README.md."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import dashboard, dbs, scale
from bench.harness import (
    DASHBOARD,
    DASHBOARD_REQUESTS,
    DASHBOARD_SIZES,
    PGBOUNCER_SCENARIOS,
    REPO,
    SCALE,
    SCALE_SIZES,
    SCENARIOS,
    Options,
    Runner,
)
from bench.report import Report
from bench.systems import SYSTEMS

README = Path(__file__).resolve().parent / "README.md"
NOTES = ("<!-- notes:begin -->", "<!-- notes:end -->")  # kept by every run


def _csv(choices: tuple[str, ...], aliases: dict[str, tuple[str, ...]] | None = None):  # type: ignore[no-untyped-def]
    def parse(text: str) -> tuple[str, ...]:
        items: list[str] = []
        for item in (i.strip() for i in text.split(",")):
            for name in (aliases or {}).get(item, (item,) if item else ()):
                if name not in items:
                    items.append(name)
        bad = [i for i in items if i not in choices]
        if bad:
            named = ",".join((*choices, *(aliases or {})))
            raise argparse.ArgumentTypeError(f"unknown {bad}; choose from {named}")
        return tuple(items)
    return parse


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(i) for i in text.split(",") if i.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"row counts, comma-separated: {exc}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("row counts, comma-separated, each at least 1")
    return sizes


QUICK_SCALE_SIZES = (1_000, 10_000)
QUICK_DASHBOARD_SIZES = (1_000, 10_000)
QUICK_DASHBOARD_REQUESTS = 3


def parse_args(argv: list[str] | None) -> tuple[Options, argparse.Namespace]:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true",
                   help="smoke run (a few minutes): 1 repetition, small N, no RSS, no scale and no dashboard "
                        "scenario (with --scenarios scale or dashboard: at 1,000 and 10,000 rows); explicit "
                        "options win")
    p.add_argument("--reps", type=int, help="repetitions (default 3)")
    p.add_argument("--n", type=int, help="jobs in the drain (default 10000)")
    p.add_argument("--fail-n", type=int, help="always-failing jobs in the failure drain (default 20000)")
    p.add_argument("--single-n", type=int, help="jobs dispatched one at a time (default 2000)")
    p.add_argument("--latency-n", type=int, help="latency dispatches (default 300)")
    p.add_argument("--latency-interval-ms", type=float, help="between latency dispatches (default 10)")
    p.add_argument("--idle-seconds", type=float, help="idle CPU measured over (default 10)")
    p.add_argument("--bulk-n", type=int, help="jobs in the bulk dispatch (default 100000)")
    p.add_argument("--rss-n", type=int, help="jobs the RSS worker drains (default 200000)")
    p.add_argument("--rss-mark", type=int, help="first RSS sample after this many jobs (default 10000)")
    p.add_argument("--rss-dialects", type=_csv(dbs.DIALECTS),
                   help="databases of the RSS scenario (default pgsql,sqlite)")
    p.add_argument("--dialects", "--db", type=_csv(dbs.ALL_DIALECTS, dbs.ALIASES),
                   help=f"default all: {','.join(dbs.ALL_DIALECTS)}; the pgsql-pgbouncer-* ones (ictq only; "
                        "'pgbouncer' names the three) are PostgreSQL through a pgbouncer the bench starts, in "
                        "session or transaction pooling (the -listen one: LISTEN on a direct connection, "
                        f"latency only; the others: {','.join(PGBOUNCER_SCENARIOS[dbs.PGBOUNCER_SESSION])})")
    p.add_argument("--systems", type=_csv(tuple(SYSTEMS)), help=f"default {','.join(SYSTEMS)}")
    p.add_argument("--scenarios", type=_csv((*SCENARIOS, SCALE, DASHBOARD)),
                   help=f"default {','.join((*SCENARIOS, SCALE, DASHBOARD))}; 'scale' (ictq only, run after the "
                        "others, on sqlite, pgsql and mariadb among --db: see bench/scale.py) times the read commands "
                        "at 10,000 and 1,000,000 rows and writes its own block of the README; 'dashboard' (the same, "
                        "after scale: bench/dashboard.py) times every page of ictq dashboard at those sizes")
    p.add_argument("--scale-sizes", type=_sizes,
                   help=f"row counts of the scale scenario (default {','.join(str(n) for n in SCALE_SIZES)}; "
                        f"--quick: {','.join(str(n) for n in QUICK_SCALE_SIZES)})")
    p.add_argument("--dashboard-sizes", type=_sizes,
                   help=f"row counts of the dashboard scenario (default "
                        f"{','.join(str(n) for n in DASHBOARD_SIZES)}; --quick: "
                        f"{','.join(str(n) for n in QUICK_DASHBOARD_SIZES)})")
    p.add_argument("--dashboard-requests", type=int,
                   help=f"timed GETs of each dashboard page, the median reported (default {DASHBOARD_REQUESTS}; "
                        f"--quick: {QUICK_DASHBOARD_REQUESTS})")
    p.add_argument("--timeout", type=float, help="seconds a drain or latency scenario may take (default 180)")
    p.add_argument("--rss-timeout", type=float, help="seconds the RSS scenario may take (default 600)")
    p.add_argument("--workdir", type=Path, help="where the temporary run directory goes")
    p.add_argument("--keep", action="store_true", help="keep the run directory (worker logs)")
    p.add_argument("--readme", type=Path,
                   help="README to write the table to ('-': none; default: bench/README.md, for a full "
                        "run only: a narrowed or --quick run writes none unless asked; the scale scenario "
                        "writes its block there at its default sizes and repetitions)")
    p.add_argument("--json", type=Path, help="also write every result as JSON here")
    args = p.parse_args(argv)
    options = Options()
    if args.quick:
        options = dataclasses.replace(options, reps=1, n=1_000, fail_n=1_000, single_n=200, latency_n=50,
                                      idle_seconds=3, bulk_n=5_000, scenarios=tuple(s for s in SCENARIOS if s != "rss"),
                                      scale_sizes=QUICK_SCALE_SIZES, dashboard_sizes=QUICK_DASHBOARD_SIZES,
                                      dashboard_requests=QUICK_DASHBOARD_REQUESTS, timeout=60)
    fields = ("reps", "n", "fail_n", "single_n", "latency_n", "latency_interval_ms", "idle_seconds", "bulk_n", "rss_n",
              "rss_mark", "rss_dialects", "dialects", "systems", "scenarios", "scale_sizes", "dashboard_sizes",
              "dashboard_requests", "timeout", "rss_timeout", "workdir")
    changes = {f: getattr(args, f) for f in fields if getattr(args, f) is not None}
    return dataclasses.replace(options, keep=args.keep, **changes), args


def _read(path: str, key: str) -> str:
    try:
        with open(path) as handle:
            for line in handle:
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def machine_facts(options: Options) -> list[tuple[str, str]]:
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=False).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "ictq"], capture_output=True,
                               text=True, check=False).stdout.strip()
        commit += " (ictq/ has uncommitted changes)" if dirty else ""
    except OSError:
        commit = "?"
    versions = []
    for dist in ("ictq", "procrastinate", "pgqueuer", "asyncpg", "huey", "psycopg", "PyMySQL"):
        try:
            versions.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{dist} (not installed)")
    mem_kb = _read("/proc/meminfo", "MemTotal").split()[0]
    return [
        ("date", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
        ("CPU", _read("/proc/cpuinfo", "model name")),
        ("cores", str(os.cpu_count())),
        ("RAM", f"{int(mem_kb) / 1024 / 1024:.1f} GiB" if mem_kb.isdigit() else "?"),
        ("kernel", platform.release()),
        ("Python", platform.python_version()),
        ("databases", "; ".join(dict.fromkeys(dbs.server_version(d) for d in options.dialects))),
        ("packages", ", ".join(versions)),
        ("ictq commit", commit or "?"),
    ]


HEADER = """# ictq benchmark

ictq and its peers side by side, in one run on one machine: `make bench` (all of it, about
{minutes} minutes here) or `.venv/bin/python -m bench --help`; `python -m bench --quick` is a
smoke run of a few minutes, and e.g. `--db pgsql --systems ictq,pgqueuer --scenarios drain --reps 5`
narrows it.

What a plain `make bench` runs: every scenario below (drain, failure drain, one at a time,
latency, bulk dispatch, RSS) on SQLite, PostgreSQL and MariaDB for every system that supports the
database; ictq also on PostgreSQL through PgBouncer in session and in transaction pooling; then
the scale scenario (the read commands at 10,000 and 1,000,000 rows, `bench/scale.py`) and the
dashboard scenario (every page of `ictq dashboard` at those sizes, `bench/dashboard.py`) on the
three databases, whose blocks at the end of this file they rewrite. `--scenarios` picks or leaves
out any of them (`scale` and `dashboard` included); `--quick` leaves out RSS, scale and dashboard
(`--quick --scenarios scale,dashboard` runs them at 1,000 and 10,000 rows and leaves their blocks
here as they are); `--db` picks databases, `pgbouncer` naming the three PgBouncer ones.

How it measures (see `bench/harness.py`):

- Every system runs the same no-op job: it appends its start time (`time.time_ns()`) and the
  dispatch time carried in its arguments (about 200 bytes of JSON) to a per-process file opened
  once with `O_APPEND` (`bench/record.py`). Executed jobs are counted from these files, never from
  logs; a lost job fails the scenario, duplicates are reported.
- Each system, scenario and repetition gets a fresh database (PostgreSQL and MariaDB on 127.0.0.1,
  SQLite files in a temporary directory) and its own worker processes, started with the
  system's documented command and defaults and stopped with SIGTERM: `ictq work --jobs ...`;
  `procrastinate worker` (concurrency 1); `pgq run` (batch 10, its default in-process concurrency);
  `huey_consumer` (SqliteHuey defaults; `-w 2 -k process` for the drain); and **laravel-ref**,
  Laravel's `DatabaseQueue::pop()` in plain SQL (`bench/peers/laravel.py`: one transaction per
  claim with `FOR UPDATE SKIP LOCKED`, DELETE after the job, 3 s sleep when empty) on the same
  `jobs` table made by `ictq migrate`.
- **drain**: N jobs bulk-enqueued (`dispatch_many`, `batch_defer`, pgqueuer's list `enqueue`, a
  multi-row INSERT for laravel-ref, a loop for huey, which has no bulk call), then 2 worker
  processes; jobs/s from the first job's start to the last job's start, wall time from starting the
  workers to the last start. **failure drain** (ictq only): N jobs that always fail (`--tries=1`)
  bulk-enqueued, then 2 workers, until `failed_jobs` holds all N; jobs/s from the first job's start
  to then, beside the success drain of the same run. **one at a time**: the same with jobs dispatched one per call.
  **latency**: one worker, idle after a warm-up job: its CPU (utime+stime of its process tree from
  `/proc`) over the idle period, then single dispatches at a fixed interval, start - dispatch.
  **bulk dispatch**: one bulk call, no worker. **RSS**: one ictq worker draining many jobs, VmRSS
  sampled from `/proc` (process tree).
- **PgBouncer** (ictq only; the peers stay direct): the bench starts Debian's `pgbouncer` itself
  (`bench/pgbouncer.py`), one per pool mode for the whole run, on a free loopback port, in front
  of the same PostgreSQL (`* =`: every database, trusted logins, pool size 20; as user `postgres`
  when started by root), and stops it by its PID at the end. Each scenario still gets a fresh
  database on the server, which ictq reaches through pgbouncer (`DB_PORT`, `DB_PGBOUNCER`) for
  everything: `ictq migrate`, dispatch, workers. The databases `pgsql-pgbouncer-session` and
  `pgsql-pgbouncer-transaction` (in which ictq uses no server-side prepared statements and idle
  workers poll) run drain, failure drain, latency and bulk dispatch;
  `pgsql-pgbouncer-transaction-listen` runs latency in transaction pooling with `DB_LISTEN_HOST`/
  `DB_LISTEN_PORT` pointing straight at the server, where idle workers `LISTEN`. Their rows sit
  beside PostgreSQL's, and a table gives ictq-through-PgBouncer / ictq-direct taken within each
  repetition (the scenarios run back to back, direct first).
- **scale** (ictq only, after all the others, `bench/scale.py`): per database and size, a fresh
  database filled with that many `jobs` and `failed_jobs` rows, then each read command (`size`,
  `status`, `list`, `health`, `failed`, `failed --group`, `metrics --once`) timed as a user runs
  it, as a subprocess; its block (with its own machine table) is kept between markers at the end
  of this file.
- **dashboard** (ictq only, after scale, `bench/dashboard.py`): per database and size, the same
  fill plus a week of per-minute history and a few workers, a real `ictq dashboard` subprocess and
  an httpx client logged in through the form; every page and API endpoint timed on the client
  (median of `--dashboard-requests` GETs after a warm-up; the first `/` and `/failed` apart),
  target 300 ms at a million rows; the pages over it are profiled in-process (SQL statement by
  statement, Python, template). Its block is kept between markers at the end of this file too.
- Cells are the median over the repetitions with (min-max); ratios are taken within each
  repetition, then summarised the same way. A scenario that fails (crash, timeout, lost job) is
  shown as FAILED and listed with its reason; every scenario has a time limit (`--timeout`).

Notes on the peers:

- pgqueuer 1.6's `pgq` CLI breaks with typer 0.29 (`'str' object has no attribute 'name'`), so
  the `bench` extra pins `typer<0.29`; `pgq run` also refuses its README's plain `async def`
  factory, so `bench/peers/pgqueuer_app.py` wraps the same consumer in an async context manager.
- huey has no bulk enqueue: its "bulk" numbers are a loop of single enqueues.
- laravel-ref is the claim algorithm only: it does not model `queue:work`'s per-job console
  output, its `queue:restart` cache look-up or events. On SQLite it opens a deferred `BEGIN`
  (Laravel's default) with PDO's 60 s busy timeout, on the WAL file `ictq migrate` made; a failed
  claim costs it 1 s + 3 s, as in `Worker::getNextJob()`.
"""


def readme(report: Report, facts: list[tuple[str, str]], command: str, minutes: float,
           scale_minutes: float | None = None, path: Path = README, dashboard_minutes: float | None = None) -> str:
    lines = [HEADER.format(minutes=max(1, round(minutes))), "## Latest run", "", f"Command: `{command}`", ""]
    lines += ["| machine | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in facts] + [""]
    parts = [f"the {name} scenario {value:.1f} min" for name, value in
             (("scale", scale_minutes), ("dashboard", dashboard_minutes)) if value is not None]
    of_which = f" (of which {', '.join(parts)})" if parts else ""
    lines.append(f"Repetitions: {report.o.reps}; run time {minutes:.1f} min{of_which}.")
    lines.append("")
    # The scale scenario's figures, from its own run (this one's, if it ran): the block of the README
    # being written, else bench/README.md's.
    kept = scale.kept_block(path) or scale.kept_block()
    kept_dashboard = dashboard.kept_block(path) or dashboard.kept_block()
    # Notes written by hand between the notes markers (measurements of a change, before/after)
    # stay, after the run's tables.
    notes = scale.kept_block(path, *NOTES) or scale.kept_block(README, *NOTES)
    return ("\n".join(lines) + report.markdown() + (f"\n\n{notes}\n" if notes else "")
            + (f"\n\n{kept}\n" if kept else "") + (f"\n\n{kept_dashboard}\n" if kept_dashboard else ""))


def _full(options: Options) -> Options:
    """``options`` with every choice that narrows a run set back to its default."""
    return dataclasses.replace(Options(), keep=options.keep, workdir=options.workdir, log=options.log)


def scale_argv(options: Options, readme_arg: Path | None) -> list[str] | None:
    """``bench.scale``'s arguments for this run, or None when the scale scenario is not in it. Its
    figures go to ``--readme``, else into bench/README.md in a full run or in a run of the scale
    scenario alone at its default sizes and repetitions, else nowhere."""
    servers = [d for d in options.dialects if d in dbs.DIALECTS]
    if SCALE not in options.scenarios or not servers:
        return None
    alone = set(options.scenarios) <= {SCALE, DASHBOARD} and options.scale_sizes == SCALE_SIZES \
        and options.reps == Options().reps
    target = readme_arg if readme_arg is not None else README if alone or options == _full(options) else "-"
    return ["--db", ",".join(servers), "--reps", str(options.reps),
            "--sizes", ",".join(str(n) for n in options.scale_sizes), "--readme", str(target)]


def dashboard_argv(options: Options, readme_arg: Path | None) -> list[str] | None:
    """``bench.dashboard``'s arguments for this run, or None when the dashboard scenario is not in
    it; its figures go where :func:`scale_argv` sends scale's (at its own default sizes and requests)."""
    servers = [d for d in options.dialects if d in dbs.DIALECTS]
    if DASHBOARD not in options.scenarios or not servers:
        return None
    alone = set(options.scenarios) <= {SCALE, DASHBOARD} and options.dashboard_sizes == DASHBOARD_SIZES \
        and options.dashboard_requests == DASHBOARD_REQUESTS
    target = readme_arg if readme_arg is not None else README if alone or options == _full(options) else "-"
    return ["--db", ",".join(servers), "--requests", str(options.dashboard_requests),
            "--sizes", ",".join(str(n) for n in options.dashboard_sizes), "--readme", str(target)]


def _side(name: str, module: Any, argv: list[str]) -> tuple[float, int]:
    """Run the scale or dashboard scenario's ``main``; ``(minutes, exit code)``."""
    began = time.monotonic()
    print(f"bench: {name} scenario: python -m bench.{name} {' '.join(argv)}", flush=True)
    code = 0
    try:
        module.main(argv)
    except SystemExit as exc:  # it exits 1 when a size failed: the rest of the run still reports
        code = exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:  # noqa: BLE001 - the other scenarios' results are still written
        print(f"bench: {name} scenario FAILED: {type(exc).__name__}: {exc}", flush=True)
        code = 1
    return (time.monotonic() - began) / 60, code


def main(argv: list[str] | None = None) -> None:
    options, args = parse_args(argv)
    full = options == _full(options)
    scale_args = scale_argv(options, args.readme)
    dashboard_args = dashboard_argv(options, args.readme)
    options = dataclasses.replace(options, scenarios=tuple(s for s in options.scenarios if s not in (SCALE, DASHBOARD)))
    raw = sys.argv[1:] if argv is None else argv
    command = "make bench" + (f" BENCH_ARGS={shlex.quote(' '.join(raw))}" if raw else "") \
        if os.environ.get("BENCH_VIA_MAKE") else "python -m bench " + " ".join(shlex.quote(a) for a in raw)
    began = time.monotonic()
    report = None
    if options.scenarios:
        print(f"bench: {options.reps} repetition(s), dialects {','.join(options.dialects)}, systems "
              f"{','.join(options.systems)}, scenarios {','.join(options.scenarios)}"
              + (", then scale" if scale_args else "") + (", then dashboard" if dashboard_args else ""), flush=True)
        options = dataclasses.replace(options, log=lambda line: print(line, flush=True))
        results = Runner(options).run()
        report = Report(results, options)
        facts = machine_facts(options)
        print()
        print("\n".join(f"{k}: {v}" for k, v in facts))
        print()
        print(report.markdown())
        if args.json:
            args.json.write_text(json.dumps([dataclasses.asdict(r) for r in results], indent=1))
    scale_minutes = dashboard_minutes = None
    scale_code = dashboard_code = 0
    if scale_args is not None:  # after the others: its million-row fills would weigh on them
        scale_minutes, scale_code = _side("scale", scale, scale_args)
    if dashboard_args is not None:
        dashboard_minutes, dashboard_code = _side("dashboard", dashboard, dashboard_args)
    minutes = (time.monotonic() - began) / 60
    target = args.readme if args.readme is not None else README if full else None
    if report is not None and target is not None and str(target) != "-":
        target.write_text(readme(report, facts, command.strip(), minutes, scale_minutes, target, dashboard_minutes))
        print(f"bench: wrote {target} ({minutes:.1f} min)")
    if scale_code or dashboard_code:
        sys.exit(scale_code or dashboard_code)
