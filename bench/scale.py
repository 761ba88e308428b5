"""Scenario ``scale``: the read commands at 10,000 and at 1,000,000 rows.

For each database and each size, a fresh database is migrated (``ictq migrate``: Laravel's tables
and ictq's own indexes and side tables), then ``jobs`` and ``failed_jobs`` are filled with that
many rows each by one ``INSERT ... SELECT`` over a generated series (``generate_series``,
MariaDB's ``seq_1_to_N``, a recursive CTE on SQLite), as a Laravel application's rows would look:
three queues, pending, delayed and reserved jobs, failures over the last day under a few dozen
error signatures with varying numbers and addresses. Then each command runs as a user runs it, a
subprocess of the ``ictq`` console script, ``--reps`` times (the median is reported); ``ictq
metrics --once`` also with its peak RSS (``wait4``). The first ``ictq failed --group`` after the
fill signs every failed row (the side tables' adoption): timed apart, as "first".

A plain ``python -m bench`` (``make bench``) runs it last, after the other scenarios;
``python -m bench --scenarios scale`` (or ``python -m bench.scale``) runs it alone. Either writes the
figures into bench/README.md between the ``scale`` markers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import dbs
from bench.harness import REPO
from bench.systems import tool

SIZES = (10_000, 1_000_000)
COMMANDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("size", ("size",)),
    ("status", ("status",)),
    ("list --limit 20", ("list", "--limit", "20")),
    ("health", ("health", "--max-size", "10000000", "--max-age", "100000000", "--max-failed-per-hour", "10000000",
                "--min-workers", "0")),
    ("failed --limit 20", ("failed", "--limit", "20")),
    ("failed --group", ("failed", "--group")),
    ("metrics --once", ("metrics", "--once")),
)
TARGETS = {"metrics --once": 0.5}  # seconds; every other command 1.0
RATIO_TARGET = 2.0
README = Path(__file__).resolve().parent / "README.md"
BEGIN, END = "<!-- scale:begin -->", "<!-- scale:end -->"

NOW = "{now}"  # filled in per run
# Eight messages, each with parts that vary (ids, addresses, durations): one signature each.
MESSAGES = (
    "RuntimeException: connection to 10.0.{a}.{b}:5432 refused after {c}ms",
    "Illuminate\\Database\\QueryException: SQLSTATE[40001]: deadlock found, try {b} of {c}",
    "GuzzleHttp\\Exception\\ConnectException: cURL error 28: timed out after {c} milliseconds for https://api.example.com/v1/users/{a}",
    "ValueError: invalid literal for int() with base 10: 'x{b}'",
    "app.errors.QuotaExceeded: account {a} used {c} of 1000 requests",
    "Symfony\\Component\\Mailer\\Exception\\TransportException: Expected response code 250 but got 451 "
    "for user{a}@example.com",
    "KeyError: 'user_{a}'",
    "TimeoutError: job ran longer than {c} seconds",
)


@dataclass
class Measure:
    dialect: str
    rows: int
    seconds: dict[str, list[float]] = field(default_factory=dict)
    rss_mb: list[float] = field(default_factory=list)
    scrape: list[float] = field(default_factory=list)  # ictq_scrape_duration_seconds: the scrape alone
    first_group: float = 0.0
    fill: float = 0.0
    error: str | None = None


# -- filling ------------------------------------------------------------------------------------

def _parts(dialect: str) -> dict[str, Callable[..., str]]:
    """SQL building blocks per dialect over a series column ``g``."""
    if dialect == "mariadb":
        return {"cat": lambda *p: f"CONCAT({', '.join(p)})", "mod": lambda n: f"(g MOD {n})",
                "hex": lambda: "MD5(g)", "ago": lambda s: f"FROM_UNIXTIME({NOW} - {s})",
                "s": lambda v: f"CAST({v} AS CHAR)"}
    if dialect == "pgsql":
        return {"cat": lambda *p: "(" + " || ".join(p) + ")", "mod": lambda n: f"(g % {n})",
                "hex": lambda: "md5(g::text)", "ago": lambda s: f"to_timestamp({NOW} - {s}) AT TIME ZONE 'UTC'",
                "s": lambda v: f"({v})::text"}
    return {"cat": lambda *p: "(" + " || ".join(p) + ")", "mod": lambda n: f"(g % {n})",
            "hex": lambda: "printf('%032x', g)", "ago": lambda s: f"datetime({NOW} - {s}, 'unixepoch')",
            "s": lambda v: f"CAST({v} AS TEXT)"}


def _quoted(dialect: str, text: str) -> str:
    if dialect == "mariadb":  # a backslash escapes in MariaDB's string literals
        text = text.replace("\\", "\\\\")
    return "'" + text.replace("'", "''") + "'"


def _series(dialect: str, rows: int) -> tuple[str, str]:
    """``(WITH prefix, FROM clause)`` producing ``g`` = 1..rows."""
    if dialect == "pgsql":
        return "", f"FROM generate_series(1, {rows}) AS s(g)"
    if dialect == "mariadb":
        return "", f"FROM (SELECT seq AS g FROM seq_1_to_{rows}) AS s"
    return f"WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {rows}) ", "FROM s"


def fill_statements(dialect: str, rows: int, now: int) -> list[str]:
    p = _parts(dialect)
    cat, mod, s = p["cat"], p["mod"], p["s"]
    queue = (f"CASE WHEN {mod(10)} < 7 THEN 'default' WHEN {mod(10)} < 9 THEN 'emails' ELSE 'reports' END")
    name = cat("'bench.job'", s(mod(5)))
    job_payload = cat("'{\"uuid\":\"'", p["hex"](), "'\",\"displayName\":\"'", name,
                      "'\",\"job\":\"bench\",\"maxTries\":null,\"data\":{\"n\":'", s("g"), "'}}'")
    with_, from_ = _series(dialect, rows)
    jobs = (f"{with_}INSERT INTO jobs (queue, payload, attempts, reserved_at, available_at, created_at) "
            f"SELECT {queue}, {job_payload}, CASE WHEN {mod(100)} = 0 THEN 1 ELSE 0 END, "
            f"CASE WHEN {mod(100)} = 0 THEN {now} ELSE NULL END, "
            f"CASE WHEN {mod(20)} = 0 THEN {now} + 3600 ELSE {now} - {mod(1000)} END, {now} - 1000 {from_}")
    a, b, c = s(mod(250)), s(mod(7)), s(mod(997))
    branches = []
    for index, message in enumerate(MESSAGES):
        pieces: list[str] = []
        rest = message
        while rest:
            head, sep, tail = rest.partition("{")
            if head:
                pieces.append(_quoted(dialect, head))
            if not sep:
                break
            key, _, rest = tail.partition("}")
            pieces.append({"a": a, "b": b, "c": c}[key])
        trace = _quoted(dialect, " in /srv/app/app/Jobs/Job.php:42\n#0 /srv/app/vendor/laravel/framework/src/"
                                 "Illuminate/Queue/CallQueuedHandler.php(123): handle()\n#1 {main}")
        branches.append(f"WHEN {mod(8)} = {index} THEN {cat(*pieces, trace)}")
    exception = "CASE " + " ".join(branches) + " END"
    failed = (f"{with_}INSERT INTO failed_jobs (uuid, connection, queue, payload, exception, failed_at) "
              f"SELECT {p['hex']()}, 'database', {queue}, {job_payload}, {exception}, {p['ago'](mod(86400))} {from_}")
    return [jobs.replace(NOW, str(now)), failed.replace(NOW, str(now))]


def _connect(db: dbs.Database) -> Any:
    if db.dialect == "sqlite":
        import sqlite3

        return sqlite3.connect(db.name, isolation_level=None)
    if db.dialect == "pgsql":
        import psycopg

        return psycopg.connect(db.pg_dsn, autocommit=True)
    import pymysql

    return pymysql.connect(host=db.host, port=db.port, user=db.user, database=db.name, autocommit=True)


def settle(db: dbs.Database) -> None:
    """What autovacuum (or MariaDB's and SQLite's statistics) would do soon after a million
    writes: statistics, and on PostgreSQL the visibility map that index-only scans need."""
    conn = _connect(db)
    try:
        cursor = conn.cursor()
        if db.dialect == "pgsql":
            cursor.execute("VACUUM ANALYZE")
        elif db.dialect == "mariadb":
            cursor.execute("ANALYZE TABLE jobs, failed_jobs, ictq_failed_jobs_members, ictq_failed_jobs_groups")
        else:
            cursor.execute("ANALYZE")
    finally:
        conn.close()


def fill(db: dbs.Database, rows: int, now: int) -> None:
    conn = _connect(db)
    try:
        cursor = conn.cursor()
        for statement in fill_statements(db.dialect, rows, now):
            cursor.execute(statement)
    finally:
        conn.close()
    settle(db)


# -- running ------------------------------------------------------------------------------------

# A small parent for each measured command. Linux starts a new process's peak RSS (ru_maxrss)
# at its parent's RSS when forked, exec or not: spawned straight from the bench (which holds the
# other scenarios' results, 170 MB and more) every command would "peak" at the bench's size. This
# parent is a fresh interpreter of a few MB; it times its child and reports the child's peak.
_PARENT = """
import os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[1], sys.argv[1:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - started
sys.stderr.write(f"\\n{MARK} {seconds!r} {usage.ru_maxrss}\\n")
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""
MARK = "bench-scale-child:"


def run_command(argv: Sequence[str], env: dict[str, str], cwd: Path) -> tuple[float, float, str]:
    """Run to the end; ``(seconds, peak RSS in MB, standard output)``, both measured on the command
    itself (see :data:`_PARENT`). Any exit code but 0 (and health's WARNING/CRITICAL) is an error."""
    parent = [sys.executable, "-c", _PARENT.replace("{MARK}", MARK), *argv]
    proc = subprocess.run(parent, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    text, err = proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
    head, _, tail = err.rpartition(f"\n{MARK} ")
    if not tail:
        raise RuntimeError(f"{' '.join(argv[-3:])}: no measurement ({err.strip()[-300:]})")
    seconds, maxrss_kb = tail.split()[:2]
    if proc.returncode not in (0, 1, 2) or (proc.returncode != 0 and "health" not in argv):
        raise RuntimeError(f"{' '.join(argv[-3:])} exited {proc.returncode}: {head.strip()[-300:]}")
    return float(seconds), int(maxrss_kb) / 1024, text


def scrape_seconds(text: str) -> float:
    """The ``ictq_scrape_duration_seconds`` of a ``metrics --once`` output."""
    for line in text.splitlines():
        if line.startswith("ictq_scrape_duration_seconds "):
            return float(line.split()[1])
    raise RuntimeError("metrics --once printed no ictq_scrape_duration_seconds")


def measure(dialect: str, rows: int, reps: int, workdir: Path, log: Callable[[str], None]) -> Measure:
    result = Measure(dialect, rows)
    with dbs.fresh_database(dialect, workdir) as db:
        app = workdir / f"app_{dialect}_{rows}"
        app.mkdir(parents=True, exist_ok=True)
        env_file = app / ".env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in {"APP_NAME": "bench", **db.ictq_env()}.items()))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "QUEUE_", "ICTQ_"))}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
        ictq = [*tool("ictq"), "--env-file", str(env_file)]
        run_command([*ictq, "migrate"], env, app)
        started = time.perf_counter()
        fill(db, rows, int(time.time()))
        result.fill = time.perf_counter() - started
        log(f"scale: {dialect} {rows:,} rows filled in {result.fill:.1f}s")
        result.first_group, _, _ = run_command([*ictq, "failed", "--group"], env, app)
        log(f"scale: {dialect} {rows:,} first failed --group (signs every row) {result.first_group:.1f}s")
        settle(db)
        for label, args in COMMANDS:
            for _ in range(reps):
                seconds, rss, out = run_command([*ictq, *args], env, app)
                result.seconds.setdefault(label, []).append(seconds)
                if label == "metrics --once":
                    result.rss_mb.append(rss)
                    result.scrape.append(scrape_seconds(out))
            log(f"scale: {dialect} {rows:,} {label}: {statistics.median(result.seconds[label]):.3f}s")
    return result


def run(dialects: Sequence[str], reps: int, sizes: Sequence[int] = SIZES,
        log: Callable[[str], None] = print) -> list[Measure]:
    results = []
    with tempfile.TemporaryDirectory(prefix="ictq-scale-") as tmp:
        for dialect in dialects:
            for rows in sizes:
                try:
                    results.append(measure(dialect, rows, reps, Path(tmp), log))
                except Exception as exc:  # noqa: BLE001 - a failure is a result
                    log(f"scale: {dialect} {rows:,} FAILED: {exc}")
                    results.append(Measure(dialect, rows, error=f"{type(exc).__name__}: {exc}"))
    return results


# -- reporting ----------------------------------------------------------------------------------

def markdown(results: Sequence[Measure], facts: Sequence[tuple[str, str]], reps: int) -> str:
    lines = ["## Scale: read commands at 10,000 and 1,000,000 rows (`--scenarios scale`)", "",
             f"Median of {reps} runs of each command as a subprocess (Python start-up included), after the "
             "fill and a first `failed --group` that signs every failed row. Targets: every command "
             "<= 1 s, `metrics --once` <= 0.5 s, and at most 2x its time at 10,000 rows.", ""]
    lines += ["| machine | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in facts] + [""]
    for dialect in dict.fromkeys(r.dialect for r in results):
        by_rows = {r.rows: r for r in results if r.dialect == dialect}
        sizes = sorted(by_rows)
        lines += [f"### {dialect}", ""]
        failed = [r for r in by_rows.values() if r.error]
        for r in failed:
            lines.append(f"- {r.rows:,} rows FAILED: {r.error}")
        small, big = (by_rows.get(sizes[0]), by_rows.get(sizes[-1])) if sizes else (None, None)
        header = "| command | " + " | ".join(f"{n:,} rows" for n in sizes) + " | ratio | target |"
        lines += [header, "|---" * (len(sizes) + 3) + "|"]
        for label, _ in COMMANDS:
            cells = [_cell(by_rows[n], label) for n in sizes]
            ratio = _ratio(small, big, label)
            target = TARGETS.get(label, 1.0)
            ok = big is not None and not big.error and label in big.seconds \
                and statistics.median(big.seconds[label]) <= target and ratio is not None and ratio <= RATIO_TARGET
            lines.append(f"| `{label}` | " + " | ".join(cells) + f" | {'-' if ratio is None else f'{ratio:.2f}x'} "
                         f"| <= {target:g} s, <= 2x: {'met' if ok else 'NOT met'} |")
        scrape = [f"{statistics.median(by_rows[n].scrape):.3f} s" if by_rows[n].scrape else "-" for n in sizes]
        ratio = _ratio_of([statistics.median(by_rows[n].scrape) for n in sizes if by_rows[n].scrape])
        lines.append("| one scrape (`ictq_scrape_duration_seconds`) | " + " | ".join(scrape)
                     + f" | {ratio} | <= 0.5 s |")
        rss = [f"{statistics.median(by_rows[n].rss_mb):.0f} MB" if by_rows[n].rss_mb else "-" for n in sizes]
        lines.append("| metrics peak RSS | " + " | ".join(rss)
                     + f" | {_ratio_of([statistics.median(by_rows[n].rss_mb) for n in sizes if by_rows[n].rss_mb])} "
                     "| flat |")
        first = [f"{by_rows[n].first_group:.1f} s" if not by_rows[n].error else "-" for n in sizes]
        lines.append("| first `failed --group` (signs all rows) | " + " | ".join(first) + " | | once |")
        fills = [f"{by_rows[n].fill:.0f} s" if not by_rows[n].error else "-" for n in sizes]
        lines += ["| fill (not ictq) | " + " | ".join(fills) + " | | |", ""]
    return "\n".join(lines)


def _ratio_of(values: Sequence[float]) -> str:
    return f"{values[-1] / values[0]:.2f}x" if len(values) > 1 and values[0] else "-"


def _cell(result: Measure, label: str) -> str:
    if result.error or label not in result.seconds:
        return "-"
    return f"{statistics.median(result.seconds[label]):.3f} s"


def _ratio(small: Measure | None, big: Measure | None, label: str) -> float | None:
    if small is None or big is None or small is big or small.error or big.error:
        return None
    if label not in small.seconds or label not in big.seconds:
        return None
    return statistics.median(big.seconds[label]) / statistics.median(small.seconds[label])


def write_readme(text: str, path: Path = README, begin: str = BEGIN, end: str = END) -> None:
    """Put ``text`` between ``begin`` and ``end`` of the README (the scale markers by default;
    appended the first time)."""
    current = path.read_text() if path.exists() else ""
    block = f"{begin}\n{text}\n{end}"
    if begin in current and end in current:
        head, _, rest = current.partition(begin)
        _, _, tail = rest.partition(end)
        path.write_text(head + block + tail)
    else:
        path.write_text(current.rstrip("\n") + "\n\n" + block + "\n")


def kept_block(path: Path = README, begin: str = BEGIN, end: str = END) -> str:
    """The block between ``begin`` and ``end`` of the README as it is, markers included (the
    scale block by default; a full ``make bench`` run keeps it)."""
    current = path.read_text() if path.exists() else ""
    if begin not in current or end not in current:
        return ""
    return begin + current.partition(begin)[2].partition(end)[0] + end


def main(argv: list[str] | None = None) -> None:
    from bench.cli import machine_facts
    from bench.harness import Options

    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=",".join(dbs.DIALECTS), help="databases, comma-separated")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--sizes", default=",".join(str(n) for n in SIZES), help="row counts, comma-separated")
    parser.add_argument("--readme", type=Path, default=README, help="where to write the figures ('-': nowhere)")
    args = parser.parse_args(argv)
    dialects = tuple(args.db.split(","))
    load_before = os.getloadavg()[0]
    results = run(dialects, args.reps, [int(n) for n in args.sizes.split(",")],
                  log=lambda line: print(line, flush=True))
    facts = machine_facts(Options(dialects=dialects))
    facts = [f for f in facts if f[0] != "packages"]
    facts.append(("load average (1 min), start / end", f"{load_before:.1f} / {os.getloadavg()[0]:.1f} "
                  f"(other work on the machine: the figures are as noisy as it is busy)"))
    text = markdown(results, facts, args.reps)
    print(text)
    if str(args.readme) != "-":
        write_readme(text, args.readme)
    if any(r.error for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
