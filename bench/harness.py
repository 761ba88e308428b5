"""The scenarios, each on a fresh database, each bounded in time; a failure is a result, not a crash."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import dbs, pgbouncer
from bench.procs import Workers, cpu_seconds, rss_mb
from bench.record import WARMUP_SEQ, count_records, job_data, read_records
from bench.systems import SYSTEMS, System, Target

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = ("drain", "fail", "single", "latency", "bulk", "rss")  # what the Runner runs
SCALE = "scale"  # bench/scale.py, run by bench.cli after the others (ictq only, its own README block)
SCALE_SIZES = (10_000, 1_000_000)
DASHBOARD = "dashboard"  # bench/dashboard.py, run by bench.cli after scale (ictq only, its own README block)
DASHBOARD_SIZES = (10_000, 1_000_000)
DASHBOARD_REQUESTS = 7
# Through PgBouncer ictq runs these (the LISTEN-direct variant only matters to an idle worker).
PGBOUNCER_SCENARIOS = {dbs.PGBOUNCER_SESSION: ("drain", "fail", "latency", "bulk"),
                       dbs.PGBOUNCER_TRANSACTION: ("drain", "fail", "latency", "bulk"),
                       dbs.PGBOUNCER_TRANSACTION_LISTEN: ("latency",)}
Metrics = dict[str, Any]
DIALECT_WIDTH = max(len(d) for d in dbs.ALL_DIALECTS)


class ScenarioError(Exception):
    pass


@dataclass
class Options:
    reps: int = 3
    n: int = 10_000
    fail_n: int = 20_000
    single_n: int = 2_000
    latency_n: int = 300
    latency_interval_ms: float = 10.0
    idle_seconds: float = 10.0
    bulk_n: int = 100_000
    rss_n: int = 200_000
    rss_mark: int = 10_000
    rss_dialects: tuple[str, ...] = ("pgsql", "sqlite")
    dialects: tuple[str, ...] = dbs.ALL_DIALECTS
    systems: tuple[str, ...] = tuple(SYSTEMS)
    scenarios: tuple[str, ...] = (*SCENARIOS, SCALE, DASHBOARD)
    scale_sizes: tuple[int, ...] = SCALE_SIZES
    dashboard_sizes: tuple[int, ...] = DASHBOARD_SIZES
    dashboard_requests: int = DASHBOARD_REQUESTS
    timeout: float = 180.0
    rss_timeout: float = 600.0
    workdir: Path | None = None
    keep: bool = False
    log: Callable[[str], None] = print


@dataclass
class Result:
    rep: int
    dialect: str
    system: str
    scenario: str
    metrics: Metrics = field(default_factory=dict)
    error: str | None = None


def base_env(out_dir: Path) -> dict[str, str]:
    """The environment of every process we start: ours minus anything that points at a queue."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DB_", "QUEUE_", "ICTQ_", "PG", "BENCH_", "HUEY_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    env["BENCH_OUT"] = str(out_dir)
    return env


def wait_count(target: Target, want: int, timeout: float, workers: Workers) -> None:
    deadline = time.monotonic() + timeout
    while True:
        count = count_records(str(target.out_dir))
        if count >= want:
            return
        if not workers.any_alive():
            raise ScenarioError(workers.describe_exit())
        if time.monotonic() > deadline:
            raise ScenarioError(f"timeout after {timeout:.0f}s: {count}/{want} jobs started")
        time.sleep(0.02)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def drain_metrics(target: Target, n: int, started_ns: int) -> Metrics:
    rows = [r for r in read_records(str(target.out_dir)) if r[2] != WARMUP_SEQ]
    seqs = [r[2] for r in rows]
    unique = len(set(seqs))
    starts = sorted(r[0] for r in rows)
    metrics: Metrics = {"executed": len(rows), "unique": unique, "duplicates": len(rows) - unique,
                        "lost": n - len(set(seqs) & set(range(n)))}
    if len(starts) >= 2 and starts[-1] > starts[0]:
        metrics["rate"] = (len(starts) - 1) / ((starts[-1] - starts[0]) / 1e9)
    if starts:
        metrics["wall"] = (starts[-1] - started_ns) / 1e9
    if metrics["lost"]:
        raise ScenarioError(f"lost {metrics['lost']} of {n} jobs (duplicates {metrics['duplicates']})")
    return metrics


class Runner:
    def __init__(self, options: Options) -> None:
        self.o = options
        self.results: list[Result] = []
        self.unreachable: dict[str, str] = {}
        self.pgbouncer_ports: dict[str, int] = {}  # pool mode -> port of the pgbouncer we started

    # --- plumbing ----------------------------------------------------------------------------

    @contextmanager
    def target(self, system: System, dialect: str, where: Path) -> Iterator[Target]:
        where.mkdir(parents=True, exist_ok=True)
        out = where / "out"
        out.mkdir(exist_ok=True)
        with dbs.fresh_database(dialect, where, self.pgbouncer_ports) as db:
            target = Target(db, where, out)
            target.base_env = base_env(out)
            target.base_env.update(system.env(target))
            system.setup(target)
            yield target

    def workers(self, system: System, target: Target, count: int, name: str) -> Workers:
        return Workers(system.workers(target, count), target.app_dir, target.base_env, target.app_dir / name)

    # --- scenarios ---------------------------------------------------------------------------

    def drain(self, system: System, target: Target, n: int, bulk: bool) -> Metrics:
        items = [job_data(i) for i in range(n)]
        producer = system.producer(target)
        try:
            began = time.perf_counter()
            if bulk:
                producer.dispatch_many(items)
            else:
                for data in items:
                    producer.dispatch(data)
            enqueue_s = time.perf_counter() - began
        finally:
            producer.close()
        workers = self.workers(system, target, 2, "logs")
        started_ns = time.time_ns()
        workers.start()
        try:
            wait_count(target, n, self.o.timeout, workers)
        finally:
            workers.stop()
        metrics = drain_metrics(target, n, started_ns)
        metrics["enqueue_rate"] = n / enqueue_s
        return metrics

    def fail(self, system: System, target: Target, n: int) -> Metrics:
        """The failure path: N always-failing jobs bulk-enqueued, then 2 workers, until the
        failed-jobs store holds all N; jobs/s from the first job's start to then."""
        items = [job_data(i) for i in range(n)]
        producer = system.producer(target)
        try:
            producer.dispatch_failing_many(items)
            workers = self.workers(system, target, 2, "logs")
            started_ns = time.time_ns()
            workers.start()
            deadline = time.monotonic() + self.o.timeout
            try:
                # Every job started (cheap: file sizes), then the last failure records (a count
                # of failed_jobs is a scan: polled only for the tail, so it does not slow the drain).
                wait_count(target, n, self.o.timeout, workers)
                while (failed := producer.failed_count()) < n:
                    if not workers.any_alive():
                        raise ScenarioError(workers.describe_exit())
                    if time.monotonic() > deadline:
                        raise ScenarioError(f"timeout after {self.o.timeout:.0f}s: {failed}/{n} jobs failed")
                    time.sleep(0.02)
                done_ns = time.time_ns()
            finally:
                workers.stop()
        finally:
            producer.close()
        rows = [r for r in read_records(str(target.out_dir)) if r[2] != WARMUP_SEQ]
        first = min(r[0] for r in rows)
        unique = len({r[2] for r in rows})
        return {"rate": n / ((done_ns - first) / 1e9), "wall": (done_ns - started_ns) / 1e9,
                "failed": failed, "duplicates": len(rows) - unique}

    def latency(self, system: System, target: Target) -> Metrics:
        workers = self.workers(system, target, 1, "logs")
        workers.start()
        producer = system.producer(target)
        metrics: Metrics = {}
        try:
            producer.dispatch(job_data(WARMUP_SEQ))
            wait_count(target, 1, self.o.timeout, workers)
            time.sleep(2.0)
            cpu_before, wall_before = cpu_seconds(workers.pids), time.monotonic()
            time.sleep(self.o.idle_seconds)
            cpu_after, wall_after = cpu_seconds(workers.pids), time.monotonic()
            metrics["idle_cpu_pct"] = 100 * (cpu_after - cpu_before) / (wall_after - wall_before)
            metrics["idle_rss_mb"] = rss_mb(workers.pids)
            interval = self.o.latency_interval_ms / 1000
            began = time.monotonic()
            dispatch_s: list[float] = []
            for i in range(self.o.latency_n):
                pause = began + i * interval - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                sent = time.time_ns()
                producer.dispatch(job_data(i, sent))
                dispatch_s.append((time.time_ns() - sent) / 1e6)
            wait_count(target, 1 + self.o.latency_n, self.o.timeout, workers)
        finally:
            producer.close()
            workers.stop()
        rows = [r for r in read_records(str(target.out_dir)) if r[2] != WARMUP_SEQ]
        if len({r[2] for r in rows}) != self.o.latency_n:
            raise ScenarioError(f"{len(rows)} of {self.o.latency_n} latency jobs ran")
        latencies = [(start - sent) / 1e6 for start, sent, _ in rows]
        metrics.update({"p50": percentile(latencies, 50), "p95": percentile(latencies, 95),
                        "p99": percentile(latencies, 99), "dispatch_ms": percentile(dispatch_s, 50),
                        "duplicates": len(rows) - self.o.latency_n})
        return metrics

    def bulk(self, system: System, target: Target) -> Metrics:
        """In a forked child: 100k jobs in memory would raise this process's peak RSS, and every
        process started from here afterwards inherits that peak as its ``ru_maxrss`` (Linux
        records the old peak at exec), which ictq's ``--memory`` check reads."""
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: measure, report, exit without running the parent's cleanups
            os.close(read_fd)
            code = 0
            try:
                items = [job_data(i) for i in range(self.o.bulk_n)]
                producer = system.producer(target)
                try:
                    began = time.perf_counter()
                    producer.dispatch_many(items)
                    text = repr(self.o.bulk_n / (time.perf_counter() - began))
                finally:
                    producer.close()
            except BaseException as exc:  # noqa: BLE001 - reported to the parent
                text, code = f"{type(exc).__name__}: {exc}", 1
            os.write(write_fd, text.encode())
            os._exit(code)
        os.close(write_fd)
        chunks = []
        with os.fdopen(read_fd, "rb") as pipe:
            chunks.append(pipe.read())
        _, status = os.waitpid(pid, 0)
        text = b"".join(chunks).decode(errors="replace")
        if os.waitstatus_to_exitcode(status) != 0:
            raise ScenarioError(text or f"bulk dispatch child failed ({status})")
        return {"bulk_rate": float(text)}

    def rss(self, system: System, target: Target) -> Metrics:
        n, chunk = self.o.rss_n, 10_000
        producer = system.producer(target)
        try:
            for start in range(0, n, chunk):
                producer.dispatch_many([job_data(i) for i in range(start, min(n, start + chunk))])
        finally:
            producer.close()
        workers = self.workers(system, target, 1, "logs")
        started_ns = time.time_ns()
        workers.start()
        marks: Metrics = {}
        peak = 0.0
        deadline = time.monotonic() + self.o.rss_timeout
        try:
            while True:
                count = count_records(str(target.out_dir))
                rss = rss_mb(workers.pids)
                peak = max(peak, rss)
                if count >= min(self.o.rss_mark, n) and "rss_mark" not in marks:
                    marks["rss_mark"] = rss
                if count >= n:
                    marks["rss_end"] = rss
                    break
                if not workers.any_alive():
                    raise ScenarioError(workers.describe_exit())
                if time.monotonic() > deadline:
                    raise ScenarioError(f"timeout after {self.o.rss_timeout:.0f}s: {count}/{n} jobs started, "
                                        f"RSS {rss:.1f} MB")
                time.sleep(0.1)
        finally:
            workers.stop()
        metrics = drain_metrics(target, n, started_ns)
        metrics.update(marks)
        metrics["rss_peak"] = peak
        return metrics

    # --- the run -----------------------------------------------------------------------------

    def measure(self, system: System, target: Target, scenario: str) -> Metrics:
        if scenario == "drain":
            return self.drain(system, target, self.o.n, bulk=True)
        if scenario == "fail":
            return self.fail(system, target, self.o.fail_n)
        if scenario == "single":
            return self.drain(system, target, self.o.single_n, bulk=False)
        if scenario == "latency":
            return self.latency(system, target)
        if scenario == "bulk":
            return self.bulk(system, target)
        return self.rss(system, target)

    def one(self, rep: int, dialect: str, name: str, scenario: str, root: Path) -> Result:
        result = Result(rep, dialect, name, scenario)
        system = SYSTEMS[name]()
        missing = self.unreachable.get(dialect) or system.available()
        if missing:
            result.error = missing
            return result
        began = time.monotonic()
        try:
            with self.target(system, dialect, root / f"rep{rep}" / dialect / name / scenario) as target:
                result.metrics = self.measure(system, target, scenario)
        except ScenarioError as exc:
            result.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - one system's failure is a result of the run
            result.error = f"{type(exc).__name__}: {exc}"
            if os.environ.get("BENCH_DEBUG"):
                traceback.print_exc()
        if result.error:
            result.error = " ".join(result.error.split())  # one line: it goes into table cells
        self.o.log(f"  rep {rep} {dialect:{DIALECT_WIDTH}} {name:14} {scenario:8} {time.monotonic() - began:6.1f}s  "
                   + (f"FAILED: {result.error}" if result.error else _brief(result.metrics)))
        return result

    def plan(self) -> list[tuple[int, str, str, str]]:
        steps = []
        for rep in range(1, self.o.reps + 1):
            for scenario in self.o.scenarios:
                if scenario not in SCENARIOS or scenario == "rss":
                    continue
                for dialect in self.o.dialects:
                    if scenario not in PGBOUNCER_SCENARIOS.get(dialect, (scenario,)):
                        continue
                    for name in self.o.systems:
                        if dialect in SYSTEMS[name].dialects and (scenario != "fail" or SYSTEMS[name].fails):
                            steps.append((rep, dialect, name, scenario))
        if "rss" in self.o.scenarios and "ictq" in self.o.systems:
            steps += [(1, d, "ictq", "rss") for d in self.o.rss_dialects if d in self.o.dialects]
        return steps

    def start_pgbouncers(self, stack: ExitStack, dialects: set[str]) -> None:
        """One pgbouncer per pool mode the run's PgBouncer dialects need, for the whole run (stopped by
        ``stack``); a pgbouncer that does not start makes its dialects unreachable, not the run fail."""
        for mode in pgbouncer.MODES:
            users = [d for d in dbs.PGBOUNCER_DIALECTS
                     if d in dialects and dbs.PGBOUNCER_MODE[d] == mode and d not in self.unreachable]
            if not users:
                continue
            try:
                bouncer = stack.enter_context(pgbouncer.running(mode))
            except Exception as exc:  # noqa: BLE001 - reported in the run's results
                for dialect in users:
                    self.unreachable[dialect] = f"pgbouncer ({mode}): {type(exc).__name__}: {exc}"
                self.o.log(f"bench: pgbouncer in {mode} pooling did not start: {exc}")
                continue
            self.pgbouncer_ports[mode] = bouncer.port
            self.o.log(f"bench: pgbouncer in {mode} pooling on {dbs.HOST}:{bouncer.port}")

    def run(self) -> list[Result]:
        for dialect in self.o.dialects:
            reason = dbs.reachable(dialect)
            if reason:
                self.unreachable[dialect] = reason
                self.o.log(f"bench: {reason}")
        steps = self.plan()
        root = Path(tempfile.mkdtemp(prefix="ictq-bench-", dir=self.o.workdir))
        try:
            with ExitStack() as bouncers:
                self.start_pgbouncers(bouncers, {step[1] for step in steps})
                for step in steps:
                    self.results.append(self.one(*step, root))
        finally:
            if self.o.keep:
                self.o.log(f"bench: kept the run's files in {root}")
            else:
                shutil.rmtree(root, ignore_errors=True)
        return self.results


def _brief(metrics: Metrics) -> str:
    keys = ("rate", "wall", "enqueue_rate", "p50", "p99", "idle_cpu_pct", "bulk_rate", "rss_mark", "rss_end",
            "duplicates")
    return " ".join(f"{k}={metrics[k]:.4g}" for k in keys if k in metrics)
