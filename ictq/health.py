"""``ictq health``: one Nagios-style verdict on the queue, for cron, Nagios/Icinga or a probe.

Four checks, each against a threshold pair ``WARN,CRIT`` (one value ``N`` means ``N,N``: past
it is CRITICAL, with no separate warning):

- size: the jobs of each queue (pending + delayed + reserved), the worst queue counts;
- age: seconds the oldest pending (available, unreserved) job has waited, worst queue;
- failed: jobs that failed in the last hour, all checked queues together;
- workers: live workers (from their heartbeats) serving at least one checked queue; here the
  check is "fewer than", so the pair reads ``WARN,CRIT`` with WARN >= CRIT.

The result is the worst check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (the database cannot be
reached, a table is missing, the configuration is wrong). Output is one line,
``ICTQ <STATE> - <summary> | <perfdata>``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from ictq import ops, triage
from ictq.config import MAX_COUNT, comma_list, shown, whole_number
from ictq.db import Storage
from ictq.db.workers import WorkersRepository

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATE_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}


@dataclass(frozen=True)
class Threshold:
    """A ``WARN,CRIT`` pair; ``minimum`` thresholds alarm below the values, the others above."""

    warn: int
    crit: int
    minimum: bool = False

    def state(self, value: int) -> int:
        if self.minimum:
            return CRITICAL if value < self.crit else WARNING if value < self.warn else OK
        return CRITICAL if value > self.crit else WARNING if value > self.warn else OK

    def perf(self) -> str:
        return f"{self.warn};{self.crit}"

    def __str__(self) -> str:
        return str(self.crit) if self.warn == self.crit else f"{self.warn},{self.crit}"


def parse_threshold(text: str, minimum: bool = False) -> Threshold:
    """``N`` or ``WARN,CRIT`` (whole numbers, 0 to ``MAX_COUNT``); raises ValueError with a readable message."""
    parts = text.split(",")
    try:
        if len(parts) > 2:
            raise ValueError(text)
        numbers = [whole_number(part, 0, MAX_COUNT) for part in parts]
    except ValueError:
        raise ValueError(f"{shown(text)} is not a number N or a pair WARN,CRIT of whole numbers "
                         f"(0 to {MAX_COUNT}, ASCII digits)") from None
    warn, crit = numbers[0], numbers[-1]
    if minimum and warn < crit:
        raise ValueError(f"{shown(text)}: for a minimum the warning level must not be below the critical one")
    if not minimum and warn > crit:
        raise ValueError(f"{shown(text)}: the warning level must not be above the critical one")
    return Threshold(warn, crit, minimum)


DEFAULTS = {
    "max_size": parse_threshold("1000,10000"),
    "max_age": parse_threshold("300,900"),
    "max_failed_per_hour": parse_threshold("10,100"),
    "min_workers": parse_threshold("1", minimum=True),
}


@dataclass(frozen=True)
class Thresholds:
    max_size: Threshold = DEFAULTS["max_size"]
    max_age: Threshold = DEFAULTS["max_age"]
    max_failed_per_hour: Threshold = DEFAULTS["max_failed_per_hour"]
    min_workers: Threshold = DEFAULTS["min_workers"]


@dataclass(frozen=True)
class Finding:
    state: int
    text: str


@dataclass(frozen=True)
class Report:
    state: int
    findings: tuple[Finding, ...]
    perfdata: str

    @property
    def line(self) -> str:
        problems = [f.text for f in self.findings if f.state == self.state and f.state != OK]
        summary = "; ".join(problems or [f.text for f in self.findings])
        line = f"ICTQ {STATE_NAMES[self.state]} - {summary}"
        return f"{line} | {self.perfdata}" if self.perfdata else line


def unknown(reason: str) -> Report:
    return Report(UNKNOWN, (Finding(UNKNOWN, " ".join(reason.split())),), "")


def check(storage: Storage, thresholds: Thresholds, queues: Sequence[str] = (), now: int | None = None) -> Report:
    """Measure and judge; database errors propagate (the caller turns them into UNKNOWN)."""
    now = int(time.time()) if now is None else now
    rows = triage.sizes(storage, now, queues)
    records = [r for r in WorkersRepository(storage).all() if r.alive(now)]
    if queues:
        wanted = set(queues)
        records = [r for r in records if wanted & set(comma_list(r.queues))]
    return judge(rows, len(records), thresholds, queues)


def judge(rows: Sequence[ops.QueueSize], workers: int, thresholds: Thresholds, queues: Sequence[str] = ()) -> Report:
    """The verdict for measured sizes and a worker count."""
    biggest = max(rows, key=lambda r: r.size, default=None)
    ages = [r for r in rows if r.oldest_pending_age is not None]
    oldest = max(ages, key=lambda r: r.oldest_pending_age or 0, default=None)
    size = biggest.size if biggest else 0
    age = (oldest.oldest_pending_age or 0) if oldest else 0
    failed = sum(r.failed_last_hour for r in rows)
    scope = ",".join(queues) if queues else "all queues"
    findings = (
        Finding(thresholds.max_size.state(size),
                f"largest queue {biggest.queue} has {size} jobs (max {thresholds.max_size})" if biggest
                else f"no jobs in {scope} (max {thresholds.max_size})"),
        Finding(thresholds.max_age.state(age),
                f"oldest pending job waited {age}s on {oldest.queue} (max {thresholds.max_age})" if oldest
                else f"no pending job waiting (max age {thresholds.max_age}s)"),
        Finding(thresholds.max_failed_per_hour.state(failed),
                f"{failed} failed in the last hour (max {thresholds.max_failed_per_hour})"),
        Finding(thresholds.min_workers.state(workers),
                f"{workers} worker(s) alive for {scope} (min {thresholds.min_workers})"),
    )
    perfdata = " ".join([
        f"size={size};{thresholds.max_size.perf()};0", f"oldest_age={age}s;{thresholds.max_age.perf()};0",
        f"failed_1h={failed};{thresholds.max_failed_per_hour.perf()};0",
        f"workers={workers};{thresholds.min_workers.warn}:;{thresholds.min_workers.crit}:;0",
    ])
    return Report(max(f.state for f in findings), findings, perfdata)
