"""Charts drawn on the server as SVG (no JavaScript library, nothing inline for the CSP to
allow): :func:`chart` turns series of numbers into the geometry the ``chart`` macro of the
templates draws, with axis ticks and one ``<title>`` per point for hovering.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ictq import history

WIDTH, HEIGHT = 720, 200
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 28


@dataclass(frozen=True)
class Line:
    name: str
    css: str  # the stylesheet's class for its colour
    values: Sequence[float | None]


@dataclass
class Chart:
    title: str
    unit: str
    width: int = WIDTH
    height: int = HEIGHT
    lines: list[dict[str, object]] = field(default_factory=list)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    x_ticks: list[tuple[float, str]] = field(default_factory=list)
    empty: bool = True


def nice_top(value: float) -> float:
    """A round upper bound of the y axis at or above ``value`` (1, 2 or 5 times a power of 10)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def _label(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value * 1000:.0f} ms" if 0 < value < 1 else f"{value:g} s"
    return f"{value:g}"


def chart(title: str, unit: str, starts: Sequence[int], step: int, lines: Sequence[Line]) -> Chart:
    """The geometry of one chart: x is time (``starts``, a point per step), y from 0 to a round top."""
    drawn = Chart(title, unit)
    values = [v for line in lines for v in line.values if v is not None]
    top = nice_top(max(values, default=0.0))
    drawn.empty = not any(values)
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    count = max(1, len(starts) - 1)

    def x(i: int) -> float:
        return round(LEFT + inner_w * i / count, 1)

    def y(v: float) -> float:
        return round(TOP + inner_h * (1 - v / top), 1)

    for line in lines:
        points = [(x(i), y(v), starts[i], v) for i, v in enumerate(line.values) if v is not None]
        drawn.lines.append({
            "name": line.name, "css": line.css,
            "path": " ".join(f"{px},{py}" for px, py, _, _ in points),
            "dots": [{"x": px, "y": py, "title": f"{_when(at, step)} {line.name}: {_label(v, unit)}", "value": v}
                     for px, py, at, v in points if v],
        })
    drawn.y_ticks = [(y(top * f), _label(top * f, unit)) for f in (0, 0.25, 0.5, 0.75, 1)]
    every = max(1, len(starts) // 6)
    drawn.x_ticks = [(x(i), _when(starts[i], step)) for i in range(0, len(starts), every)]
    return drawn


def _when(at: int, step: int) -> str:
    moment = datetime.fromtimestamp(at, timezone.utc)
    return moment.strftime("%H:%M" if step < 3600 else "%a %H:%M")


def charts(points: Sequence[history.Point], step: int) -> list[Chart]:
    """The four charts of a queue or job: throughput, failures, wait and runtime."""
    starts = [p.start for p in points]
    per_min = 60 / step

    def rate(get: Callable[[history.Point], int]) -> list[float | None]:
        return [round(get(p) * per_min, 2) for p in points]

    return [
        chart("Throughput (jobs per minute)", "", starts, step, [
            Line("done", "done", rate(lambda p: p.processed)),
            Line("released", "released", rate(lambda p: p.released))]),
        chart("Failures (per minute)", "", starts, step, [Line("failed", "failed", rate(lambda p: p.failed))]),
        chart("Wait before a worker took the job", "s", starts, step, [
            Line("p50", "p50", [p.wait_p50 for p in points]), Line("p95", "p95", [p.wait_p95 for p in points])]),
        chart("Runtime", "s", starts, step, [
            Line("p50", "p50", [p.run_p50 for p in points]), Line("p95", "p95", [p.run_p95 for p in points])]),
    ]
