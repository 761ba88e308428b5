"""Capacity advice: how many workers each queue needs for a target wait, from the history.

The model: each queue is an M/M/c queue (Poisson arrivals, exponential runtimes, ``c``
identical workers serving it first come, first served). Over the window (the last
``window`` seconds, from ``ictq_history`` and ``ictq_history_sizes``):

- the arrival rate ``λ`` (jobs per second) is the jobs that ended (processed or failed; a
  released job comes back, so it is not an arrival of its own) plus the growth of the backlog
  (pending at the last sizes snapshot of the window minus pending at its first; without two
  snapshots, the jobs that ended only), divided by the window's length;
- the mean runtime ``S`` is the summed runtimes over the runs (released ones too);
- the offered load ``a = λ·S`` is the number of workers kept busy on average;
- the workers needed is the smallest ``c > a`` for which the probability that a job waits
  longer than the target ``t`` is at most 5 %: ``P(W > t) = C(c, a)·exp(-(c - a)·t / S)``,
  with ``C`` Erlang's C formula (the probability that a job waits at all), computed from the
  Erlang B recurrence ``B(k) = a·B(k-1) / (k + a·B(k-1))``, ``C = c·B / (c - a·(1 - B))``,
  which stays stable for any ``c`` (no factorials, no powers);
- the workers now are the live workers (beating in ``ictq_workers``) whose queues include it.

The limits: real arrivals come in bursts and runtimes are rarely exponential (a heavy tail
waits longer than the model says; very regular jobs wait less), so take the answer as a floor
and keep a margin. A worker serving several queues is counted for each of them (so the "now"
column overstates what each queue gets), and the advice per queue assumes workers dedicated
to it. A backlog already there is not in the model: with ``c`` workers it drains at ``c - a``
jobs per ``S`` seconds. With ``a`` at or above the workers now, the queue only grows. No
library is used: the formula is a few lines (none of the venv's packages carries it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ictq import history
from ictq.db import Storage
from ictq.db.history import HistoryRepository, Sums
from ictq.db.workers import WorkersRepository

TARGET_PROBABILITY = 0.05  # a job waits longer than the target wait at most this often (p95)
MAX_WORKERS = 100_000  # the search for c stops here (a load beyond any fleet)


@dataclass(frozen=True)
class Advice:
    queue: str
    arrivals_per_min: float  # λ, per minute
    mean_runtime: float | None  # S, seconds; None when no run ended in the window
    load: float  # a = λ·S: workers kept busy on average
    workers_now: int
    workers_needed: int | None  # for P(wait > target) <= 5 %; None without a runtime measured
    wait_p95: float | None  # measured over the window (seconds)
    backlog_growth: int | None  # pending at the window's last snapshot minus at its first

    @property
    def hint(self) -> str:
        """One line: what to change (``numprocs`` as Supervisor's program calls it)."""
        needed, now = self.workers_needed, self.workers_now
        if needed is None:
            return "no run measured in the window"
        if needed > now:
            return f"numprocs={needed} (add {needed - now})"
        if needed < now:
            return f"numprocs={needed} would do ({now - needed} spare)"
        return f"numprocs={needed} (as now)"


def erlang_b(c: int, a: float) -> float:
    """Erlang's B formula (the probability that all ``c`` servers are busy, in a loss system) by
    its recurrence."""
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(c: int, a: float) -> float:
    """Erlang's C formula: the probability that a job must wait, with ``c`` workers and offered
    load ``a`` (``c > a``; 1 when ``c <= a``: the queue grows without end)."""
    if c <= a:
        return 1.0
    b = erlang_b(c, a)
    return c * b / (c - a * (1 - b))


def wait_exceeds(c: int, a: float, runtime: float, target: float) -> float:
    """``P(W > target)`` in an M/M/c queue of load ``a`` and mean runtime ``runtime``."""
    if c <= a:
        return 1.0
    return _beyond(erlang_c(c, a), c, a, runtime, target)


def _beyond(waits: float, c: int, a: float, runtime: float, target: float) -> float:
    """``P(W > target)`` from ``waits = P(W > 0)``: the wait of a job that waits is exponential,
    of rate ``(c - a) / runtime``."""
    if runtime <= 0:
        return waits if target <= 0 else 0.0
    return waits * math.exp(-(c - a) * target / runtime)


def workers_needed(a: float, runtime: float, target: float, probability: float = TARGET_PROBABILITY) -> int:
    """The smallest number of workers ``c > a`` (at least 1) for which a job waits longer than
    ``target`` seconds with probability at most ``probability``."""
    c = max(1, math.floor(a) + 1)
    b = erlang_b(c - 1, a)
    while c < MAX_WORKERS:
        b = a * b / (c + a * b)  # B(c) from B(c - 1)
        if _beyond(c * b / (c - a * (1 - b)), c, a, runtime, target) <= probability:
            return c
        c += 1
    return MAX_WORKERS


def advise(storage: Storage, now: int, target_wait: float, window: int = 900,
           queues: Sequence[str] = ()) -> list[Advice]:
    """Per queue with history in the window (or each of ``queues``), sorted by name: the
    measured arrivals, runtime and wait, and the workers needed for a p95 wait of at most
    ``target_wait`` seconds (see the module's docstring for the model)."""
    repository = HistoryRepository(storage)
    since = (now - window) // 60 * 60
    until = now // 60 * 60 + 60
    elapsed = max(60, now - since)
    totals = repository.totals(since, until)
    growth = _backlog_growth(repository, since, until)
    serving = _workers_per_queue(storage, now)
    names = list(queues) or sorted(totals)
    return [_advice(name, totals.get(name, Sums()), growth, serving.get(name, 0), elapsed, target_wait)
            for name in names]


def _advice(queue: str, sums: Sums, growth: dict[str, int] | None, workers_now: int, elapsed: int,
            target: float) -> Advice:
    grew = None if growth is None else growth.get(queue, 0)
    arrivals = max(0.0, (sums.processed + sums.failed + (grew or 0)) / elapsed)
    runtime = sums.runtime_sum / sums.count if sums.count else None
    load = arrivals * runtime if runtime is not None else 0.0
    needed = workers_needed(load, runtime, target) if runtime is not None else None
    return Advice(queue, arrivals * 60, runtime, load, workers_now, needed, history.wait_percentile(sums, 0.95),
                  grew)


def _backlog_growth(repository: HistoryRepository, since: int, until: int) -> dict[str, int] | None:
    """Per queue, pending at the last snapshot of ``[since, until)`` minus at the first; None
    without two snapshots."""
    minutes = repository.snapshot_minutes(since, until)
    if minutes is None or minutes[0] == minutes[1]:
        return None
    first, last = repository.sizes_at(minutes[0]), repository.sizes_at(minutes[1])
    return {name: (last[name].pending if name in last else 0) - (first[name].pending if name in first else 0)
            for name in set(first) | set(last)}


def _workers_per_queue(storage: Storage, now: int) -> dict[str, int]:
    """How many live workers serve each queue (a worker of several queues counts for each)."""
    serving: dict[str, int] = {}
    for record in WorkersRepository(storage).all():
        if record.alive(now):
            for name in {name for name in record.queues.split(",") if name}:
                serving[name] = serving.get(name, 0) + 1
    return serving
