"""How commands print: tables and ages for people, ``--json`` for programs."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import click


def age(seconds: int | None) -> str:
    """45s, 12m, 3h, 2d."""
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned columns two spaces apart, a header line first."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)


def emit(as_json: bool, data: Any, text: Callable[[], str]) -> None:
    """Print ``data`` as JSON, or else what ``text()`` makes of it."""
    click.echo(json.dumps(data, ensure_ascii=False, indent=2) if as_json else text())
