"""Scenario ``dashboard``: every page and API endpoint of ``ictq dashboard`` at 10,000 and at
1,000,000 rows in ``jobs`` and in ``failed_jobs``; the target is 300 ms a page.

For each database and size, a fresh database is migrated and filled as the scale scenario fills
it (:func:`bench.scale.fill_statements`: three queues, pending, delayed and reserved jobs, failures
of the last day under a few dozen signatures), plus the side data a live installation has: a week
of ``ictq_history`` (one row per minute, queue and job name: 151,200 rows), its per-minute sizes
snapshots and marks, and six ``ictq_workers`` rows (four alive, two dead); one failed job gets a
dashed UUID (Laravel's form) for the search by UUID. Then statistics as autovacuum would gather
them (:func:`bench.scale.settle`).

A real ``ictq dashboard`` subprocess serves it (``ICTQ_DASHBOARD_KEY`` in the .env, a user added
with ``ictq dashboard user add NAME --role operator --password-stdin``); an httpx client logs in
through the form (session cookie, as a browser) and times each GET on the client (the whole
request, body read): first the cold ``/`` and ``/failed`` (the first ``/failed`` reconciles the
side tables, which at a million unsigned failures means signing every one of them), then,
after the statistics are gathered again, every page once to warm up and ``--requests`` times
(the median is reported). Every answer must be 200.

Pages slower than the target at the biggest size are profiled in-process against the same
database (``--profile``, on by default from ``bench.cli``): the page's data function of
:class:`ictq.dashboard.app.Dashboard` with every named SQL statement timed, and its template
rendered, so that the report says which statement or which Python function costs what.

``python -m bench --scenarios dashboard`` (or ``python -m bench.dashboard``) runs it alone; a plain
``python -m bench`` runs it last, after scale. Either writes the figures into bench/README.md
between the ``dashboard`` markers.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import dbs, scale
from bench.harness import REPO
from bench.procs import rss_mb
from bench.systems import tool

SIZES = (10_000, 1_000_000)
REQUESTS = 7
TARGET_MS = 300.0
README = scale.README
BEGIN, END = "<!-- dashboard:begin -->", "<!-- dashboard:end -->"
USER, PASSWORD = "bench", "bench-password-1"
HISTORY_DAYS = 7
QUEUES = ("default", "emails", "reports")  # scale's fill: 70 %, 20 %, 10 %
JOB_NAMES = tuple(f"bench.job{i}" for i in range(5))  # scale's fill: displayName bench.job0..4
SLOW_WARMUP = 10.0  # seconds: a page whose warm-up took longer is timed 3 times only

# (label, path): {queue}, {group}, {failed}, {job}, {uuid}, {name} are filled from the filled
# database. The first, /healthz, touches no database and needs no login: what any request costs.
PAGES: tuple[tuple[str, str], ...] = (
    (FLOOR := "/healthz (no database: the floor)", "/healthz"),
    ("/", "/"),
    ("/queue?name=Q", "/queue?name={queue}"),
    ("/charts?span=hour", "/charts?span=hour"),
    ("/charts?span=day", "/charts?span=day"),
    ("/charts?span=week", "/charts?span=week"),
    ("/charts?queue=Q&span=week", "/charts?queue={queue}&span=week"),
    ("/workers", "/workers"),
    ("/failed", "/failed"),
    ("/failed/groups/GID", "/failed/groups/{group}"),
    ("/failed/ID", "/failed/{failed}"),
    ("/jobs/ID", "/jobs/{job}"),
    ("/search?q=JOB NAME", "/search?q={name}"),
    ("/search?q=UUID", "/search?q={uuid}"),
    ("/search?q=ID", "/search?q={job}"),
    ("/capacity", "/capacity"),
    ("/api/overview", "/api/overview"),
    ("/api/workers", "/api/workers"),
    ("/api/failed", "/api/failed"),
    ("/api/failed/groups/GID", "/api/failed/groups/{group}"),
    ("/api/failed/ID", "/api/failed/{failed}"),
    ("/api/jobs/ID", "/api/jobs/{job}"),
    ("/api/history?span=hour", "/api/history?span=hour"),
    ("/api/history?span=day", "/api/history?span=day"),
    ("/api/history?span=week", "/api/history?span=week"),
    ("/api/history?queue=Q&span=week", "/api/history?queue={queue}&span=week"),
    ("/api/search?q=JOB NAME", "/api/search?q={name}"),
    ("/api/search?q=UUID", "/api/search?q={uuid}"),
    ("/api/search?q=ID", "/api/search?q={job}"),
    ("/api/capacity", "/api/capacity"),
)
COLD = ("/", "/failed")  # the first requests after the dashboard starts, timed apart


@dataclass
class Measure:
    dialect: str
    rows: int
    ms: dict[str, list[float]] = field(default_factory=dict)  # label -> client wall times
    status: dict[str, list[int]] = field(default_factory=dict)  # label -> status codes (warm-up included)
    size_kb: dict[str, float] = field(default_factory=dict)  # label -> response body size
    cold_ms: dict[str, float] = field(default_factory=dict)  # "/" and "/failed", the first requests
    login_ms: float = 0.0
    grouping_s: float = 0.0  # the background reconciliation of a dashboard started on unsigned failures
    fill: float = 0.0
    rss_mb: float = 0.0  # the dashboard process after the run
    ids: dict[str, str] = field(default_factory=dict)
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)  # label -> in-process breakdown
    error: str | None = None

    def median(self, label: str) -> float | None:
        values = self.ms.get(label)
        return statistics.median(values) if values else None

    def ok(self, label: str) -> bool:
        codes = self.status.get(label) or []
        return bool(codes) and all(code == 200 for code in codes)


# -- filling ------------------------------------------------------------------------------------

def _q(dialect: str, name: str) -> str:
    return f"`{name}`" if dialect == "mariadb" else f'"{name}"'


def side_statements(dialect: str, now: int) -> list[str]:
    """A week of history (a row per minute, queue and job name), its sizes snapshots and marks,
    and six workers: what the workers of a live installation would have written."""
    p = scale._parts(dialect)
    mod = p["mod"]
    operator = "DIV" if dialect == "mariadb" else "/"

    def div(a: object, b: object) -> str:
        return f"(({a}) {operator} {b})"

    def q(name: str) -> str:
        return _q(dialect, name)

    minutes = HISTORY_DAYS * 1440
    combos = len(QUEUES) * len(JOB_NAMES)
    last = now // 60 * 60
    statements = []
    # history: g = 1..minutes*combos; minute index (g-1) / combos, combination (g-1) % combos
    with_, from_ = scale._series(dialect, minutes * combos)
    c = f"((g - 1) % {combos})"
    queue = "CASE " + " ".join(f"WHEN {c} % 3 = {i} THEN '{name}'" for i, name in enumerate(QUEUES)) + " END"
    job = p["cat"]("'bench.job'", p["s"](div(c, 3)))
    minute = f"{last} - {div('g - 1', combos)} * 60"
    processed = f"(5 + {mod(17)})"
    failed = f"CASE WHEN {mod(10)} = 0 THEN 1 ELSE 0 END"
    statements.append(
        f"{with_}INSERT INTO {q('ictq_history')} ("
        + ", ".join(q(n) for n in ("minute", "queue", "job", "processed", "failed", "released", "runtime_sum",
                                   "wait_sum", "r2", "r5", "w0", "w1"))
        + f") SELECT {minute}, {queue}, {job}, {processed}, {failed}, 0, {processed} * 0.02, "
        f"{processed} * 0.6, {processed}, {failed}, {div(processed, 2)}, {processed} - {div(processed, 2)} + {failed} "
        f"{from_}")
    sums = ("processed", "failed", "released", "runtime_sum", "wait_sum", "r2", "r5", "w0", "w1")
    statements.append(  # the hourly roll-up the workers add to with the same counts
        f"INSERT INTO {q('ictq_history_hourly')} ({', '.join(q(n) for n in ('minute', 'queue', 'job', *sums))}) "
        f"SELECT {div(q('minute'), 3600)} * 3600, {q('queue')}, {q('job')}, "
        + ", ".join(f"SUM({q(n)})" for n in sums)
        + f" FROM {q('ictq_history')} GROUP BY {div(q('minute'), 3600)} * 3600, {q('queue')}, {q('job')}")
    with_, from_ = scale._series(dialect, minutes * len(QUEUES))
    c = "((g - 1) % 3)"
    queue = "CASE " + " ".join(f"WHEN {c} = {i} THEN '{name}'" for i, name in enumerate(QUEUES)) + " END"
    statements.append(
        f"{with_}INSERT INTO {q('ictq_history_sizes')} ({q('minute')}, {q('queue')}, {q('pending')}, "
        f"{q('delayed')}, {q('reserved')}) SELECT {last} - {div('g - 1', 3)} * 60, {queue}, 1000 + {mod(500)}, "
        f"{mod(40)}, {mod(7)} {from_}")
    with_, from_ = scale._series(dialect, minutes)
    statements.append(f"{with_}INSERT INTO {q('ictq_history_marks')} ({q('minute')}) "
                      f"SELECT {last} - (g - 1) * 60 {from_}")
    rows = []
    for i in range(6):
        alive = i < 4
        queues = ",".join(QUEUES) if i % 2 == 0 else QUEUES[i % 3]
        # an alive worker beats every few seconds: its beat is put ahead so that it stays alive
        # through the run (a worker on another host, so no process check)
        beat = now + 86_400 if alive else now - 7200
        job_id, job_name = (str(i + 1), f"'{JOB_NAMES[i % 5]}'") if alive else ("NULL", "NULL")
        rows.append(f"('bench-worker-{i}', 'worker {i}', 'bench-host-{i % 2}', {1000 + i}, '{queues}', "
                    f"'{'alive' if alive else 'stopped'}', {now - 86_400 + i}, {beat}, {job_id}, "
                    f"{1 if alive else 'NULL'}, {job_name}, NULL, {1000 * (i + 1)}, {i})")
    statements.append(
        f"INSERT INTO {q('ictq_workers')} (id, name, host, pid, queues, state, started_at, beat_at, job_id, "
        f"job_attempts, job_name, held, processed, {q('failed')}) VALUES " + ", ".join(rows))
    return statements


def _one(cursor: Any, sql: str) -> Any:
    cursor.execute(sql)
    row = cursor.fetchone()
    return row[0] if row else None


def fill(db: dbs.Database, rows: int, now: int) -> dict[str, str]:
    """Fill the tables (see the module's text); return the ids the pages are asked for."""
    conn = scale._connect(db)
    try:
        cursor = conn.cursor()
        for statement in (*scale.fill_statements(db.dialect, rows, now), *side_statements(db.dialect, now)):
            cursor.execute(statement)
        def q(name: str) -> str:
            return _q(db.dialect, name)

        ids = {}
        for key, table in (("job", "jobs"), ("failed", "failed_jobs")):  # one from the middle of the table
            low = _one(cursor, f"SELECT MIN(id) FROM {q(table)}")
            high = _one(cursor, f"SELECT MAX(id) FROM {q(table)}")
            ids[key] = str(_one(cursor, f"SELECT MIN(id) FROM {q(table)} WHERE id >= {(int(low) + int(high)) // 2}"))
        text = str(_one(cursor, f"SELECT uuid FROM {q('failed_jobs')} WHERE id = {ids['failed']}"))
        dashed = f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:32]}"
        cursor.execute(f"UPDATE {q('failed_jobs')} SET uuid = '{dashed}' WHERE id = {ids['failed']}")
        ids.update(uuid=dashed, queue=QUEUES[0], name=JOB_NAMES[3])
    finally:
        conn.close()
    settle(db)
    return ids


def settle(db: dbs.Database) -> None:
    scale.settle(db)
    if db.dialect == "mariadb":  # scale's settle names its own tables only
        conn = scale._connect(db)
        try:
            conn.cursor().execute("ANALYZE TABLE ictq_history, ictq_history_hourly, ictq_history_sizes, "
                                  "ictq_history_marks, ictq_workers")
        finally:
            conn.close()


# -- the dashboard ------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``ictq dashboard`` as a subprocess on a free loopback port, and a client logged in."""

    def __init__(self, ictq: list[str], env: dict[str, str], cwd: Path) -> None:
        import httpx

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = cwd / "dashboard.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen([*ictq, "dashboard", "--listen", f"127.0.0.1:{self.port}"], cwd=cwd, env=env,
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the dashboard exited {self.proc.returncode}: {self.log()[-500:]}")
            try:
                if httpx.get(self.base + "/healthz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the dashboard did not answer /healthz in 60 s: {self.log()[-500:]}")
            time.sleep(0.1)
        self.client = httpx.Client(base_url=self.base, follow_redirects=False, timeout=3600)

    def login(self) -> float:
        """Log in through the form (GET /login for the CSRF token, POST it); the seconds it took."""
        import re

        started = time.perf_counter()
        form = self.client.get("/login")
        found = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        if not found:
            raise RuntimeError(f"/login answered {form.status_code} without a CSRF token")
        done = self.client.post("/login", data={"name": USER, "password": PASSWORD, "csrf_token": found.group(1),
                                                "next": "/"})
        if done.status_code != 303:
            raise RuntimeError(f"logging in answered {done.status_code}: {done.text[:300]}")
        return time.perf_counter() - started

    def get(self, path: str) -> tuple[float, int, int, Any]:
        """``(ms, status, body bytes, response)`` of one GET, timed on the client."""
        started = time.perf_counter()
        response = self.client.get(path)
        body = response.content
        return (time.perf_counter() - started) * 1000, response.status_code, len(body), response

    def wait_grouped(self, timeout: float = 3600) -> None:
        """Until /api/failed says every failed job is grouped."""
        deadline = time.monotonic() + timeout
        while self.get("/api/failed")[3].json().get("ungrouped", 0):
            if time.monotonic() > deadline:
                raise RuntimeError(f"failed jobs still not grouped after {timeout:.0f}s")
            time.sleep(2)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._log.close()


def measure(dialect: str, rows: int, requests: int, workdir: Path, log: Callable[[str], None],
            profile: bool = True) -> Measure:
    result = Measure(dialect, rows)
    with dbs.fresh_database(dialect, workdir) as db:
        app = workdir / f"dashboard_{dialect}_{rows}"
        app.mkdir(parents=True, exist_ok=True)
        env_file = app / ".env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in {
            "APP_NAME": "bench", **db.ictq_env(), "ICTQ_DASHBOARD_KEY": secrets.token_urlsafe(48)}.items()))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "QUEUE_", "ICTQ_"))}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
        ictq = [*tool("ictq"), "--env-file", str(env_file)]
        scale.run_command([*ictq, "migrate"], env, app)
        added = subprocess.run([*ictq, "dashboard", "user", "add", USER, "--role", "operator", "--password-stdin"],
                               input=PASSWORD + "\n", cwd=app, env=env, capture_output=True, text=True, check=False)
        if added.returncode != 0:
            raise RuntimeError(f"dashboard user add exited {added.returncode}: {added.stderr.strip()[-300:]}")
        started = time.perf_counter()
        ids = fill(db, rows, int(time.time()))
        result.fill = time.perf_counter() - started
        log(f"dashboard: {dialect} {rows:,} rows (+ a week of history) filled in {result.fill:.1f}s")
        server = Server(ictq, env, app)
        try:
            result.login_ms = server.login() * 1000
            for path in COLD:
                ms, status, _, response = server.get(path)
                if status != 200:
                    raise RuntimeError(f"cold {path} answered {status}: {response.text[:300]}")
                result.cold_ms[path] = ms
                log(f"dashboard: {dialect} {rows:,} cold {path}: {ms:.0f} ms")
            started = time.perf_counter()
            server.wait_grouped()  # the dashboard's background thread signs every failed row once
            result.grouping_s = time.perf_counter() - started
            log(f"dashboard: {dialect} {rows:,} failed rows grouped in the background in {result.grouping_s:.0f}s")
            settle(db)  # the side tables just got a row per failed job: statistics, as autovacuum would
            failed = server.get("/api/failed")[3].json()
            if not failed.get("groups"):
                raise RuntimeError("/api/failed lists no group")
            ids["group"] = failed["groups"][0]["group"]
            result.ids = ids
            time_pages(server, ids, requests, result, log)
            result.rss_mb = rss_mb([server.proc.pid])
        finally:
            server.stop()
        if profile:
            profile_slow(env_file, ids, result, log)
    return result


def time_pages(server: Server, ids: dict[str, str], requests: int, result: Measure,
               log: Callable[[str], None]) -> None:
    """Each page once (warm-up), then ``requests`` times (3 when its warm-up took long)."""
    for label, template in PAGES:
        path = template.format(**ids)
        ms, status, size, response = server.get(path)
        result.status[label] = [status]
        result.size_kb[label] = size / 1024
        if status != 200:
            log(f"dashboard: {result.dialect} {result.rows:,} {label}: {status} {response.text[:200]}")
            continue
        times = []
        for _ in range(requests if ms < SLOW_WARMUP * 1000 else min(3, requests)):
            ms, status, _, _ = server.get(path)
            result.status[label].append(status)
            times.append(ms)
        result.ms[label] = times
        log(f"dashboard: {result.dialect} {result.rows:,} {label}: {statistics.median(times):.1f} ms")


def profile_slow(env_file: Path, ids: dict[str, str], result: Measure, log: Callable[[str], None]) -> None:
    """Profile in-process each page over the target."""
    for label in [label for label, _ in PAGES if (result.median(label) or 0) > TARGET_MS and label != FLOOR]:
        try:
            result.profiles[label] = profile_page(env_file, label, ids)
        except Exception as exc:  # noqa: BLE001 - reported
            result.profiles[label] = {"error": f"{type(exc).__name__}: {exc}"}
        log(f"dashboard: {result.dialect} {result.rows:,} profile {label}: {summary(result.profiles[label])}")


# -- in-process profile -------------------------------------------------------------------------

class _Request:
    """What the Dashboard's data functions read of a request."""

    def __init__(self, path: str) -> None:
        from urllib.parse import parse_qsl, urlsplit

        parts = urlsplit(path)
        self.query_params = dict(parse_qsl(parts.query))
        self.path_params: dict[str, Any] = {}
        self.url = parts


def _route(dashboard: Any, path: str) -> tuple[Callable[..., dict[str, Any]], str | None, dict[str, Any]]:
    """``(data function, template or None for the API, path params)`` of ``path``."""
    from starlette.routing import Match

    for route in dashboard.app.routes:
        match, scope = route.matches({"type": "http", "path": path.split("?")[0], "method": "GET"})
        if match == Match.FULL:
            endpoint = route.endpoint
            cells = {name: cell.cell_contents for name, cell in
                     zip(endpoint.__code__.co_freevars, endpoint.__closure__ or (), strict=True)}
            return cells["data"], cells.get("template"), scope.get("path_params", {})
    raise LookupError(path)


def profile_page(env_file: Path, label: str, ids: dict[str, str], repeat: int = 3) -> dict[str, Any]:
    """The page's data function in-process, ``repeat`` times, each named SQL statement timed;
    then once under cProfile; then its template rendered. Medians in ms."""
    from ictq.config import load_settings
    from ictq.dashboard.app import Dashboard
    from ictq.dashboard.cache import Cached
    from ictq.db import open_storage
    from ictq.db.users import UsersRepository

    path = dict(PAGES)[label].format(**ids)
    settings = load_settings(env_file)
    dashboard = Dashboard(settings)
    dashboard.cached = Cached(size=0)  # the computation behind each answer, never a kept answer
    dashboard.reconciler.in_step = True  # as the running dashboard's thread left it (grouped before)
    data, template, path_params = _route(dashboard, path)
    request = _Request(path)
    request.path_params = path_params
    storage = open_storage(settings)
    statements: dict[str, list[float]] = {}
    calls: list[tuple[str, float]] = []

    def timed(method: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(name: str, params: Any = None) -> Any:
            started = time.perf_counter()
            try:
                return method(name, params)
            finally:
                calls.append((name, (time.perf_counter() - started) * 1000))
        return wrapper

    storage.fetch = timed(storage.fetch)  # type: ignore[method-assign]
    storage.run = timed(storage.run)  # type: ignore[method-assign]
    totals, per_run = [], []
    context: dict[str, Any] = {}
    try:
        for _ in range(repeat):
            calls.clear()
            started = time.perf_counter()
            context = data(request, storage)
            totals.append((time.perf_counter() - started) * 1000)
            run: dict[str, list[float]] = {}
            for name, ms in calls:
                run.setdefault(name, []).append(ms)
            per_run.append(run)
        for name in {n for run in per_run for n in run}:
            statements[name] = [sum(run.get(name, [0.0])) for run in per_run]
        profiler = cProfile.Profile()
        profiler.enable()
        data(request, storage)
        profiler.disable()
        render_ms = None
        if template is not None:
            user = UsersRepository(storage).get(USER)
            renders = []
            for _ in range(repeat + 1):  # the first compiles the template
                started = time.perf_counter()
                dashboard.templates.get_template(template).render(
                    **context, user=user, csrf="x" * 43, flash=None, path=path.split("?")[0],
                    where={"connection": "bench", "database": "bench"}, refresh_every=5)
                renders.append((time.perf_counter() - started) * 1000)
            render_ms = statistics.median(renders[1:])
    finally:
        storage.close()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(18)
    total = statistics.median(totals)
    sql = {name: {"ms": statistics.median(v), "calls": len(per_run[-1].get(name, []))}
           for name, v in statements.items()}
    sql_total = sum(s["ms"] for s in sql.values())
    return {"path": path, "data_ms": total, "sql_ms": sql_total, "python_ms": max(0.0, total - sql_total),
            "render_ms": render_ms, "sql": dict(sorted(sql.items(), key=lambda kv: -kv[1]["ms"])),
            "cprofile": _trim(out.getvalue())}


def _trim(text: str) -> str:
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    return "\n".join(line.replace(str(REPO) + "/", "") for line in lines[start:] if line.strip())


def summary(found: dict[str, Any]) -> str:
    if "error" in found:
        return f"profile failed: {found['error']}"
    top = ", ".join(f"{name} {s['ms']:.0f} ms ({s['calls']}x)" for name, s in list(found["sql"].items())[:3])
    render = f", render {found['render_ms']:.0f} ms" if found.get("render_ms") is not None else ""
    return (f"data {found['data_ms']:.0f} ms = SQL {found['sql_ms']:.0f} ms + Python {found['python_ms']:.0f} ms"
            f"{render}; top statements: {top or '-'}")


def run(dialects: Sequence[str], requests: int, sizes: Sequence[int] = SIZES, log: Callable[[str], None] = print,
        profile: bool = True) -> list[Measure]:
    results = []
    with tempfile.TemporaryDirectory(prefix="ictq-dashboard-") as tmp:
        for dialect in dialects:
            for rows in sizes:
                try:
                    results.append(measure(dialect, rows, requests, Path(tmp), log, profile))
                except Exception as exc:  # noqa: BLE001 - a failure is a result
                    log(f"dashboard: {dialect} {rows:,} FAILED: {type(exc).__name__}: {exc}")
                    results.append(Measure(dialect, rows, error=f"{type(exc).__name__}: {exc}"))
    return results


# -- reporting ----------------------------------------------------------------------------------

def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def _names(results: Sequence[Measure]) -> dict[str, str]:
    return {d: dbs.LABEL.get(d, d) for d in dict.fromkeys(r.dialect for r in results)}


def _page_cells(lo: Measure | None, hi: Measure | None, label: str) -> tuple[list[str], float | None]:
    """The 10k, 1M and ratio cells of one page on one database, and the big size's median."""
    cells = []
    for m in (lo, hi):
        if m is None or m.error:
            cells.append("-")
        elif not m.ok(label):
            cells.append(f"HTTP {','.join(str(c) for c in sorted(set(m.status.get(label, [0]))))}")
        else:
            cells.append(_ms(m.median(label)))
    a = lo.median(label) if lo and not lo.error else None
    b = hi.median(label) if hi and not hi.error and hi.ok(label) else None
    cells.append(f"{b / a:.1f}x" if a and b and lo is not hi else "-")
    return cells, b


def page_table(results: Sequence[Measure]) -> tuple[list[str], list[tuple[str, str, float]]]:
    """The page x database table, and the (page, database, ms) over the target at the big size."""
    names = _names(results)
    sizes = sorted({r.rows for r in results})
    small, big = sizes[0], sizes[-1]
    by = {(r.dialect, r.rows): r for r in results}
    lines = ["| page | " + " | ".join(f"{names[d]} {small:,} | {names[d]} {big:,} | ratio" for d in names)
             + f" | <= {TARGET_MS:.0f} ms at {big:,} |", "|---" * (1 + 3 * len(names)) + "|---|"]
    missed: list[tuple[str, str, float]] = []
    for label, _ in PAGES:
        cells, verdicts = [], []
        for d in names:
            found, b = _page_cells(by.get((d, small)), by.get((d, big)), label)
            cells += found
            if b is None:
                verdicts.append(f"{names[d]}: ?")
            elif b > TARGET_MS:
                verdicts.append(f"{names[d]}: **NO**")
                missed.append((label, d, b))
        lines.append(f"| `{label}` | " + " | ".join(cells) + f" | {'; '.join(verdicts) or 'met'} |")
    return lines, missed


def cold_table(results: Sequence[Measure]) -> list[str]:
    names = _names(results)
    sizes = sorted({r.rows for r in results})
    by = {(r.dialect, r.rows): r for r in results if not r.error}
    lines = ["| request | " + " | ".join(f"{names[d]} {n:,}" for d in names for n in sizes) + " |",
             "|---" * (1 + len(names) * len(sizes)) + "|"]
    rows: list[tuple[str, Callable[[Measure], str]]] = [
        ("first `/`", lambda m: _ms(m.cold_ms.get("/"))),
        ("first `/failed` (answers at once; the groups fill in the background)",
         lambda m: _ms(m.cold_ms.get("/failed"))),
        ("every failed row grouped in the background, s", lambda m: f"{m.grouping_s:.0f}"),
        ("log in (GET + POST /login)", lambda m: _ms(m.login_ms)),
        ("fill (not the dashboard), s", lambda m: f"{m.fill:.0f}"),
        ("dashboard RSS after the run, MB", lambda m: f"{m.rss_mb:.0f}")]
    for title, get in rows:
        lines.append(f"| {title} | " + " | ".join(get(by[(d, n)]) if (d, n) in by else "-"
                                                  for d in names for n in sizes) + " |")
    return lines


def profile_table(results: Sequence[Measure], missed: Sequence[tuple[str, str, float]]) -> list[str]:
    names = _names(results)
    big = max(r.rows for r in results)
    by = {(r.dialect, r.rows): r for r in results}
    lines = ["| page | database | HTTP ms | data ms | SQL ms | Python ms | render ms | costliest statements |",
             "|---|---|---|---|---|---|---|---|"]
    for label, d, http in missed:
        found = by[(d, big)].profiles.get(label)
        if found is None:
            continue
        if "error" in found:
            lines.append(f"| `{label}` | {names[d]} | {_ms(http)} | {found['error']} | | | | |")
            continue
        top = "; ".join(f"`{name}` {_ms(s['ms'])} ms ({s['calls']}x)" for name, s in list(found["sql"].items())[:3])
        lines.append(f"| `{label}` | {names[d]} | {_ms(http)} | {_ms(found['data_ms'])} | {_ms(found['sql_ms'])} "
                     f"| {_ms(found['python_ms'])} | {_ms(found.get('render_ms'))} | {top} |")
    return lines


def markdown(results: Sequence[Measure], facts: Sequence[tuple[str, str]], requests: int) -> str:
    sizes = sorted({r.rows for r in results})
    small, big = (sizes[0], sizes[-1]) if sizes else (0, 0)
    lines = [f"## Dashboard: every page at {small:,} and {big:,} rows (`--scenarios dashboard`)", "",
             f"`jobs` and `failed_jobs` filled with that many rows each (as the scale scenario fills them), a week "
             f"of `ictq_history` (a row per minute, queue and job name: {HISTORY_DAYS * 1440 * 15:,} rows) with its "
             "sizes snapshots, six workers; a real `ictq dashboard` subprocess, an httpx client logged in through "
             f"the form. Cells: the median of {requests} GETs (after one warm-up) in ms, client-side wall time of "
             f"the whole request; ratio = {big:,} rows / {small:,} rows. Target: every page <= {TARGET_MS:.0f} ms at "
             f"{big:,} rows. Every answer was 200 unless a cell says otherwise.", ""]
    lines += ["| machine | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in facts] + [""]
    lines += [f"- {dbs.LABEL.get(r.dialect, r.dialect)} {r.rows:,} rows FAILED: {r.error}" for r in results if r.error]
    if not sizes:
        return "\n".join(lines)
    table, missed = page_table(results)
    floors = [v for m in results if (v := m.median(FLOOR)) is not None]
    if floors and statistics.median(floors) > 30:
        table += ["", f"The `/healthz` row is the floor of any answer here ({statistics.median(floors):.0f} ms, median "
                  "over the runs): on a kept-alive connection (as a browser keeps it) every answer after the first "
                  "waits for the client's delayed ACK (about 40 ms), because the listening socket `ictq dashboard` "
                  "makes with `socket.create_server` has proto 0, so asyncio does not set `TCP_NODELAY` on the "
                  "connections it accepts, and uvicorn writes the headers and the body apart (Nagle holds the body). "
                  "A socket made with `socket.socket(family, SOCK_STREAM, IPPROTO_TCP)` answers the same request in "
                  "under 2 ms."]
    lines += [*table, "", "First requests after the dashboard starts (cold), and around the run:", "",
              *cold_table(results), ""]
    if missed:
        lines += [f"{len(missed)} page/database pair(s) over {TARGET_MS:.0f} ms at {big:,} rows. In-process "
                  "profile of each against the same database (the page's data function with each named SQL "
                  "statement timed, median of 3; its template rendered, warm, median of 3):", "",
                  *profile_table(results, missed), ""]
    else:
        lines += [f"Every page within {TARGET_MS:.0f} ms at {big:,} rows.", ""]
    return "\n".join(lines)


def write_readme(text: str, path: Path = README) -> None:
    """Put ``text`` between the dashboard markers of the README (appended the first time)."""
    scale.write_readme(text, path, BEGIN, END)


def kept_block(path: Path = README) -> str:
    return scale.kept_block(path, BEGIN, END)


def main(argv: list[str] | None = None) -> None:
    from bench.cli import machine_facts
    from bench.harness import Options

    parser = argparse.ArgumentParser(prog="python -m bench.dashboard", description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=",".join(dbs.DIALECTS), help="databases, comma-separated")
    parser.add_argument("--requests", type=int, default=REQUESTS, help="timed GETs of each page (the median)")
    parser.add_argument("--sizes", default=",".join(str(n) for n in SIZES), help="row counts, comma-separated")
    parser.add_argument("--readme", type=Path, default=README, help="where to write the figures ('-': nowhere)")
    parser.add_argument("--json", type=Path, help="also write every measurement (and the profiles) as JSON here")
    parser.add_argument("--no-profile", action="store_true", help="do not profile the pages over the target")
    args = parser.parse_args(argv)
    dialects = tuple(args.db.split(","))
    load_before = os.getloadavg()[0]
    results = run(dialects, args.requests, [int(n) for n in args.sizes.split(",")],
                  log=lambda line: print(line, flush=True), profile=not args.no_profile)
    facts = machine_facts(Options(dialects=dialects))
    facts = [f for f in facts if f[0] != "packages"]
    facts.append(("load average (1 min), start / end", f"{load_before:.1f} / {os.getloadavg()[0]:.1f} "
                  f"(other work on the machine: the figures are as noisy as it is busy)"))
    text = markdown(results, facts, args.requests)
    print(text)
    for r in results:
        for label, found in r.profiles.items():
            if "cprofile" in found:
                print(f"\n-- cProfile of {label} on {r.dialect} at {r.rows:,} rows (cumulative) --")
                print(found["cprofile"])
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in results], indent=1, default=str))
    if str(args.readme) != "-":
        write_readme(text, args.readme)
    if any(r.error for r in results) or any(not r.ok(label) for r in results if not r.error for label, _ in PAGES):
        sys.exit(1)


if __name__ == "__main__":
    main()
