"""The table: medians over repetitions with min-max, ratios taken within each repetition, targets."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bench import dbs
from bench.harness import Options, Result

DB_LABEL = dbs.LABEL
DASH, TIMES = "\u2013", "\u00d7"
PEERS_FOR_RATIOS = ("laravel-ref", "pgqueuer", "procrastinate", "huey")


@dataclass
class Stat:
    median: float
    low: float
    high: float
    count: int


def stat(values: Iterable[float]) -> Stat | None:
    data = [float(v) for v in values]
    if not data:
        return None
    return Stat(statistics.median(data), min(data), max(data), len(data))


def fmt_num(value: float, kind: str) -> str:
    if kind == "rate":
        return f"{value:,.0f}"
    if kind == "ratio":
        return f"{value:.2f}{TIMES}"
    if kind == "pct":
        return f"{value:.2f}"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}" if value < 1 else f"{value:.2f}"


def cell(s: Stat | None, kind: str, reps: int) -> str:
    if s is None:
        return "—"
    text = fmt_num(s.median, kind)
    if s.count > 1:
        text += f" ({fmt_num(s.low, kind)}{DASH}{fmt_num(s.high, kind)})"
    if s.count < reps:
        text += f" [{s.count}/{reps} ok]"
    return text


class Report:
    def __init__(self, results: list[Result], options: Options) -> None:
        self.results = results
        self.o = options
        self.by: dict[tuple[str, str, str], list[Result]] = defaultdict(list)
        for r in results:
            self.by[(r.dialect, r.system, r.scenario)].append(r)

    def metric(self, dialect: str, system: str, scenario: str, key: str) -> Stat | None:
        return stat(r.metrics[key] for r in self.by.get((dialect, system, scenario), [])
                    if r.error is None and key in r.metrics)

    def ratio(self, dialect: str, peer: str, scenario: str, key: str, invert: bool = False) -> Stat | None:
        """ictq / peer (or peer / ictq), taken within each repetition."""
        mine = {r.rep: r.metrics.get(key) for r in self.by.get((dialect, "ictq", scenario), []) if r.error is None}
        theirs = {r.rep: r.metrics.get(key) for r in self.by.get((dialect, peer, scenario), []) if r.error is None}
        values = []
        for rep, a in mine.items():
            b = theirs.get(rep)
            if a and b:
                values.append(b / a if invert else a / b)
        return stat(values)

    def via_ratio(self, dialect: str, scenario: str, key: str) -> Stat | None:
        """ictq through ``dialect`` (a PgBouncer one) / ictq on PostgreSQL direct, within each repetition."""
        direct = {r.rep: r.metrics.get(key) for r in self.by.get(("pgsql", "ictq", scenario), []) if r.error is None}
        values = []
        for r in self.by.get((dialect, "ictq", scenario), []):
            a, b = r.metrics.get(key), direct.get(r.rep)
            if r.error is None and a and b:
                values.append(a / b)
        return stat(values)

    def rows(self, scenario: str) -> list[tuple[str, str]]:
        seen = []
        for dialect in sorted(self.o.dialects, key=dbs.ALL_DIALECTS.index):  # PgBouncer beside PostgreSQL
            for system in self.o.systems:
                if self.by.get((dialect, system, scenario)):
                    seen.append((dialect, system))
        return seen

    def errors(self, dialect: str, system: str, scenario: str) -> list[str]:
        return [f"rep {r.rep}: {r.error}" for r in self.by.get((dialect, system, scenario), []) if r.error]

    def table(self, title: str, scenario: str, columns: list[tuple[str, str, str]]) -> list[str]:
        rows = self.rows(scenario)
        if not rows:
            return []
        lines = [f"### {title}", "", "| database | system | " + " | ".join(c[0] for c in columns) + " |",
                 "|---|---|" + "---|" * len(columns)]
        for dialect, system in rows:
            cells = [cell(self.metric(dialect, system, scenario, key), kind, self.o.reps) for _, key, kind in columns]
            if all(c == "—" for c in cells):
                cells = ["FAILED"] + [""] * (len(cells) - 1)
            lines.append(f"| {DB_LABEL[dialect]} | {system} | " + " | ".join(cells) + " |")
        return [*lines, ""]

    def drain_tables(self) -> list[str]:
        out = self.table(
            f"Drain: {self.o.n:,} no-op jobs bulk-enqueued, then 2 worker processes", "drain",
            [("jobs/s (first→last start)", "rate", "rate"), ("wall s (incl. start-up)", "wall", "s"),
             ("bulk enqueue jobs/s", "enqueue_rate", "rate"), ("duplicates", "duplicates", "n")])
        out += self.fail_table()
        out += self.table(
            f"One at a time: {self.o.single_n:,} single dispatches, then 2 worker processes", "single",
            [("dispatch jobs/s", "enqueue_rate", "rate"), ("drain jobs/s", "rate", "rate"),
             ("wall s", "wall", "s"), ("duplicates", "duplicates", "n")])
        out += self.table(
            f"Latency: one idle worker, {self.o.latency_n} single dispatches {self.o.latency_interval_ms:g} ms apart;"
            f" idle cost over {self.o.idle_seconds:g} s", "latency",
            [("p50 ms", "p50", "ms"), ("p95 ms", "p95", "ms"), ("p99 ms", "p99", "ms"),
             ("dispatch() ms", "dispatch_ms", "ms"), ("idle CPU % of a core", "idle_cpu_pct", "pct"),
             ("idle RSS MB", "idle_rss_mb", "mb")])
        out += self.table(f"Bulk dispatch: {self.o.bulk_n:,} jobs in one call", "bulk",
                          [("jobs/s", "bulk_rate", "rate")])
        return out

    def fail_ratio(self, dialect: str) -> Stat | None:
        """The failure drain's jobs/s over the success drain's, taken within each repetition."""
        drains = {r.rep: r.metrics.get("rate") for r in self.by.get((dialect, "ictq", "drain"), []) if r.error is None}
        values = [r.metrics["rate"] / drains[r.rep] for r in self.by.get((dialect, "ictq", "fail"), [])
                  if r.error is None and r.metrics.get("rate") and drains.get(r.rep)]
        return stat(values)

    def fail_table(self) -> list[str]:
        rows = self.rows("fail")
        if not rows:
            return []
        lines = [f"### Failure drain: {self.o.fail_n:,} always-failing jobs (--tries=1) bulk-enqueued, then 2 "
                 "worker processes, until failed_jobs holds them all", "",
                 "| database | system | jobs/s (first start→all failed) | wall s | success drain jobs/s "
                 "(same run) | failure / success |", "|---|---|---|---|---|---|"]
        for dialect, system in rows:
            cells = [cell(self.metric(dialect, system, "fail", "rate"), "rate", self.o.reps),
                     cell(self.metric(dialect, system, "fail", "wall"), "s", self.o.reps),
                     cell(self.metric(dialect, system, "drain", "rate"), "rate", self.o.reps),
                     cell(self.fail_ratio(dialect), "ratio", self.o.reps)]
            lines.append(f"| {DB_LABEL[dialect]} | {system} | " + " | ".join(cells) + " |")
        return [*lines, ""]

    def ratio_table(self) -> list[str]:
        lines = ["### Ratios ictq / peer, taken within each repetition (median, min-max)", "",
                 "| database | peer | drain jobs/s | one-at-a-time drain jobs/s | bulk dispatch jobs/s | "
                 "latency p50 (peer/ictq) |", "|---|---|---|---|---|---|"]
        any_row = False
        for dialect in self.o.dialects:
            for peer in PEERS_FOR_RATIOS:
                cells = [cell(self.ratio(dialect, peer, "drain", "rate"), "ratio", self.o.reps),
                         cell(self.ratio(dialect, peer, "single", "rate"), "ratio", self.o.reps),
                         cell(self.ratio(dialect, peer, "bulk", "bulk_rate"), "ratio", self.o.reps),
                         cell(self.ratio(dialect, peer, "latency", "p50", invert=True), "ratio", self.o.reps)]
                if any(c != "—" for c in cells):
                    any_row = True
                    lines.append(f"| {DB_LABEL[dialect]} | {peer} | " + " | ".join(cells) + " |")
        return [*lines, ""] if any_row else []

    def pgbouncer_table(self) -> list[str]:
        """ictq through PgBouncer beside ictq on PostgreSQL direct (the same repetition)."""
        dialects = [d for d in dbs.PGBOUNCER_DIALECTS if d in self.o.dialects and any(
            self.by.get((d, "ictq", s)) for s in ("drain", "fail", "latency", "bulk"))]
        if not dialects or not any(self.by.get(("pgsql", "ictq", s)) for s in ("drain", "fail", "latency", "bulk")):
            return []
        lines = ["### ictq through PgBouncer / ictq on PostgreSQL direct, taken within each repetition "
                 "(median, min-max)", "",
                 f"Rates below 1{TIMES} and latencies above 1{TIMES} are slower through PgBouncer.", "",
                 "| through | drain jobs/s | failure drain jobs/s | bulk dispatch jobs/s | latency p50 | latency p99 |",
                 "|---|---|---|---|---|---|"]
        for dialect in dialects:
            cells = [cell(self.via_ratio(dialect, "drain", "rate"), "ratio", self.o.reps),
                     cell(self.via_ratio(dialect, "fail", "rate"), "ratio", self.o.reps),
                     cell(self.via_ratio(dialect, "bulk", "bulk_rate"), "ratio", self.o.reps),
                     cell(self.via_ratio(dialect, "latency", "p50"), "ratio", self.o.reps),
                     cell(self.via_ratio(dialect, "latency", "p99"), "ratio", self.o.reps)]
            label = DB_LABEL[dialect].removeprefix("PostgreSQL via ")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        return [*lines, ""]

    def rss_table(self) -> list[str]:
        rows = [r for r in self.results if r.scenario == "rss"]
        if not rows:
            return []
        lines = [f"### Worker memory: one ictq worker draining {self.o.rss_n:,} jobs", "",
                 f"| database | RSS at {self.o.rss_mark:,} MB | RSS at {self.o.rss_n:,} MB | peak MB | "
                 "growth MB | drain jobs/s |", "|---|---|---|---|---|---|"]
        for r in rows:
            m = r.metrics
            if r.error:
                lines.append(f"| {DB_LABEL[r.dialect]} | FAILED | | | | |")
                continue
            growth = m.get("rss_end", 0) - m.get("rss_mark", 0)
            lines.append(f"| {DB_LABEL[r.dialect]} | {m.get('rss_mark', 0):.1f} | {m.get('rss_end', 0):.1f} | "
                         f"{m.get('rss_peak', 0):.1f} | {growth:+.1f} | {m.get('rate', 0):,.0f} |")
        return [*lines, ""]

    def targets(self) -> list[tuple[str, str, str]]:
        """(target, measured, PASS/FAIL/n/a) from the medians."""
        out: list[tuple[str, str, str]] = []

        def check(name: str, s: Stat | None, ok: Callable[[float], bool], kind: str) -> None:
            if s is None:
                out.append((name, "not measured", "n/a"))
                return
            out.append((name, cell(s, kind, self.o.reps), "PASS" if ok(s.median) else "FAIL"))

        check(f"PostgreSQL drain ≥ 2{TIMES} pgqueuer", self.ratio("pgsql", "pgqueuer", "drain", "rate"),
              lambda v: v >= 2, "ratio")
        check(f"MariaDB drain ≥ 10{TIMES} Laravel algorithm", self.ratio("mariadb", "laravel-ref", "drain", "rate"),
              lambda v: v >= 10, "ratio")
        check(f"SQLite drain ≥ 10{TIMES} huey", self.ratio("sqlite", "huey", "drain", "rate"),
              lambda v: v >= 10, "ratio")
        for dialect in ("pgsql", "sqlite", "mariadb"):
            check(f"{DB_LABEL[dialect]} failure drain ≥ 0.5{TIMES} the success drain", self.fail_ratio(dialect),
                  lambda v: v >= 0.5, "ratio")
        check("PostgreSQL bulk dispatch ≥ 100k jobs/s", self.metric("pgsql", "ictq", "bulk", "bulk_rate"),
              lambda v: v >= 100_000, "rate")
        check("PostgreSQL latency p50 ≤ 2 ms", self.metric("pgsql", "ictq", "latency", "p50"),
              lambda v: v <= 2, "ms")
        check("PostgreSQL latency p99 ≤ 5 ms", self.metric("pgsql", "ictq", "latency", "p99"),
              lambda v: v <= 5, "ms")
        for dialect in ("sqlite", "mariadb"):
            check(f"{DB_LABEL[dialect]} latency p99 ≤ 100 ms", self.metric(dialect, "ictq", "latency", "p99"),
                  lambda v: v <= 100, "ms")
            check(f"{DB_LABEL[dialect]} idle worker < 1% of a core",
                  self.metric(dialect, "ictq", "latency", "idle_cpu_pct"), lambda v: v < 1, "pct")
        for r in self.results:
            if r.scenario != "rss":
                continue
            label = DB_LABEL[r.dialect]
            if r.error or "rss_end" not in r.metrics:
                out.append((f"{label} worker RSS ≤ 50 MB, flat ±5 MB", f"failed: {r.error}", "n/a"))
                continue
            peak, growth = r.metrics["rss_peak"], r.metrics["rss_end"] - r.metrics["rss_mark"]
            out.append((f"{label} worker RSS ≤ 50 MB", f"peak {peak:.1f} MB", "PASS" if peak <= 50 else "FAIL"))
            out.append((f"{label} worker RSS flat ±5 MB ({self.o.rss_mark:,}→{self.o.rss_n:,})",
                        f"{growth:+.1f} MB", "PASS" if abs(growth) <= 5 else "FAIL"))
        return out

    def target_table(self) -> list[str]:
        lines = ["### Targets (ictq; medians of the ratios / values above)", "", "| target | measured | |",
                 "|---|---|---|"]
        lines += [f"| {name} | {measured} | {verdict} |" for name, measured, verdict in self.targets()]
        return [*lines, ""]

    def failure_list(self) -> list[str]:
        failed = [r for r in self.results if r.error]
        if not failed:
            return []
        lines = ["### Failed scenarios", ""]
        for r in failed:
            lines.append(f"- {DB_LABEL[r.dialect]} {r.system} {r.scenario} rep {r.rep}: {r.error}")
        return [*lines, ""]

    def markdown(self) -> str:
        parts = self.drain_tables() + self.ratio_table() + self.pgbouncer_table() + self.rss_table()
        parts += self.target_table()
        parts += self.failure_list()
        return "\n".join(parts)
