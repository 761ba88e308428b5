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

from bench import dbs, scale
from bench.harness import REPO, SCENARIOS, Options, Runner
from bench.report import Report
from bench.systems import SYSTEMS

README = Path(__file__).resolve().parent / "README.md"


def _csv(choices: tuple[str, ...]):  # type: ignore[no-untyped-def]
    def parse(text: str) -> tuple[str, ...]:
        items = tuple(i.strip() for i in text.split(",") if i.strip())
        bad = [i for i in items if i not in choices]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {bad}; choose from {','.join(choices)}")
        return items
    return parse


def parse_args(argv: list[str] | None) -> tuple[Options, argparse.Namespace]:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true",
                   help="smoke run (~1-2 min): 1 repetition, small N, no RSS scenario (explicit options win)")
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
    p.add_argument("--dialects", "--db", type=_csv(dbs.DIALECTS), help="sqlite,pgsql,mariadb (default all)")
    p.add_argument("--systems", type=_csv(tuple(SYSTEMS)), help=f"default {','.join(SYSTEMS)}")
    p.add_argument("--scenarios", type=_csv((*SCENARIOS, "scale")),
                   help=f"default {','.join(SCENARIOS)}; 'scale' (not by default, ictq only, 1,000,000 rows per "
                        "database: see bench/scale.py) times the read commands at 10,000 and 1,000,000 rows")
    p.add_argument("--timeout", type=float, help="seconds a drain or latency scenario may take (default 180)")
    p.add_argument("--rss-timeout", type=float, help="seconds the RSS scenario may take (default 600)")
    p.add_argument("--workdir", type=Path, help="where the temporary run directory goes")
    p.add_argument("--keep", action="store_true", help="keep the run directory (worker logs)")
    p.add_argument("--readme", type=Path,
                   help="README to write the table to ('-': none; default: bench/README.md, for a full "
                        "run only: a narrowed or --quick run writes none unless asked)")
    p.add_argument("--json", type=Path, help="also write every result as JSON here")
    args = p.parse_args(argv)
    options = Options()
    if args.quick:
        options = dataclasses.replace(options, reps=1, n=1_000, fail_n=1_000, single_n=200, latency_n=50,
                                      idle_seconds=3, bulk_n=5_000, scenarios=tuple(s for s in SCENARIOS if s != "rss"),
                                      timeout=60)
    fields = ("reps", "n", "fail_n", "single_n", "latency_n", "latency_interval_ms", "idle_seconds", "bulk_n", "rss_n",
              "rss_mark", "rss_dialects", "dialects", "systems", "scenarios", "timeout", "rss_timeout", "workdir")
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
        ("databases", "; ".join(dbs.server_version(d) for d in options.dialects)),
        ("packages", ", ".join(versions)),
        ("ictq commit", commit or "?"),
    ]


HEADER = """# ictq benchmark

ictq and its peers side by side, in one run on one machine: `make bench` (all of it, about
{minutes} minutes here) or `.venv/bin/python -m bench --help`; `python -m bench --quick` is a
one-minute smoke run, and e.g. `--db pgsql --systems ictq,pgqueuer --scenarios drain --reps 5`
narrows it.

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


def readme(report: Report, facts: list[tuple[str, str]], command: str, minutes: float) -> str:
    lines = [HEADER.format(minutes=max(1, round(minutes))), "## Latest run", "", f"Command: `{command}`", ""]
    lines += ["| machine | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in facts] + [""]
    lines.append(f"Repetitions: {report.o.reps}; run time {minutes:.1f} min.")
    lines.append("")
    kept = scale.kept_block()  # the scale scenario's figures, from its own (separate) run
    return "\n".join(lines) + report.markdown() + (f"\n\n{kept}\n" if kept else "")


def _full(options: Options) -> Options:
    """``options`` with every choice that narrows a run set back to its default."""
    return dataclasses.replace(Options(), keep=options.keep, workdir=options.workdir, log=options.log)


def main(argv: list[str] | None = None) -> None:
    options, args = parse_args(argv)
    if "scale" in options.scenarios:
        scale.main(["--db", ",".join(options.dialects), "--reps", str(options.reps),
                    *(["--readme", str(args.readme)] if args.readme is not None else [])])
        options = dataclasses.replace(options, scenarios=tuple(s for s in options.scenarios if s != "scale"))
        if not options.scenarios:
            return
    raw = sys.argv[1:] if argv is None else argv
    command = "make bench" + (f" BENCH_ARGS={shlex.quote(' '.join(raw))}" if raw else "") \
        if os.environ.get("BENCH_VIA_MAKE") else "python -m bench " + " ".join(shlex.quote(a) for a in raw)
    began = time.monotonic()
    print(f"bench: {options.reps} repetition(s), dialects {','.join(options.dialects)}, systems "
          f"{','.join(options.systems)}, scenarios {','.join(options.scenarios)}", flush=True)
    options = dataclasses.replace(options, log=lambda line: print(line, flush=True))
    results = Runner(options).run()
    minutes = (time.monotonic() - began) / 60
    report = Report(results, options)
    facts = machine_facts(options)
    print()
    print("\n".join(f"{k}: {v}" for k, v in facts))
    print()
    print(report.markdown())
    target = args.readme if args.readme is not None else README if options == _full(options) else None
    if target is not None and str(target) != "-":
        target.write_text(readme(report, facts, command.strip(), minutes))
        print(f"bench: wrote {target}")
    if args.json:
        args.json.write_text(json.dumps([dataclasses.asdict(r) for r in results], indent=1))
