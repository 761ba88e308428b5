"""``ictq capacity``: how many workers each queue needs for a target wait, from the per-minute
history the workers write (the model: :mod:`ictq.capacity`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from ictq.cli.options import QUEUE, Duration, json_option
from ictq.cli.output import emit, table
from ictq.cli.state import State, pass_state
from ictq.config import MAX_SECONDS

if TYPE_CHECKING:  # imported when the command runs: every `ictq` command (a starting worker too) loads this module
    from ictq import capacity as model


@click.command()
@click.option("--wait", "target", type=Duration(0, MAX_SECONDS), default="10s", show_default=True,
              help="The wait to aim for: 95% of the jobs start within it (10s, 1m, ...).")
@click.option("--window", type=Duration(60, 400 * 86400), default="15m", show_default=True,
              help="How far back to measure (15m, 1h, ...; at most the history kept, ICTQ_HISTORY_DAYS).")
@click.option("--queue", "queues", type=QUEUE, multiple=True, help="A queue to advise on (repeatable; default: all).")
@json_option
@pass_state
def capacity(state: State, target: float, window: float, queues: tuple[str, ...], as_json: bool) -> None:
    """Workers needed per queue for a p95 wait within --wait, from the last --window of history."""
    now = int(time.time())
    with state.storage() as storage:
        from ictq import capacity as model

        advice = model.advise(storage, now, target, int(window), queues)
    measured = [a for a in advice if a.mean_runtime is not None or a.arrivals_per_min > 0]
    data = {"target_wait": target, "window": int(window), "queues": [_as_dict(a) for a in advice]}
    emit(as_json, data, lambda: _text(advice if measured else [], target, int(window)))


def _as_dict(advice: model.Advice) -> dict[str, object]:
    return {"queue": advice.queue, "arrivals_per_min": round(advice.arrivals_per_min, 3),
            "mean_runtime": None if advice.mean_runtime is None else round(advice.mean_runtime, 4),
            "load": round(advice.load, 3), "workers_now": advice.workers_now,
            "workers_needed": advice.workers_needed,
            "wait_p95": None if advice.wait_p95 is None else round(advice.wait_p95, 3),
            "backlog_growth": advice.backlog_growth, "hint": advice.hint}


def _text(advice: Sequence[model.Advice], target: float, window: int) -> str:
    if not advice:
        return (f"no history in the last {_duration(window)} yet: the workers write it with their heartbeats "
                "(run `ictq migrate` once, then let them work)")
    rows = [[a.queue, f"{a.arrivals_per_min:.1f}", _seconds(a.mean_runtime), f"{a.load:.2f}", a.workers_now,
             "-" if a.workers_needed is None else a.workers_needed, _seconds(a.wait_p95), a.hint] for a in advice]
    return "\n".join([
        f"capacity for a p95 wait <= {_duration(target)}, measured over the last {_duration(window)}:", "",
        table(["queue", "arrivals/min", "mean runtime", "load", "workers now", "workers needed", "p95 wait",
               "hint"], rows),
        "", "model: M/M/c (Erlang C); a worker serving several queues counts for each (see docs/monitoring.md)"])


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f}ms" if value < 1 else f"{value:.1f}s"


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
