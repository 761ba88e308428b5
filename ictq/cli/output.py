"""How commands print: tables and ages for people, ``--json`` for programs.

Everything a command prints goes through here, and so through the one masking function
(:class:`ictq.display.Masker`, the secrets of the settings the command read): any value from
any row (a display name with control characters, undecodable bytes, a secret in a queue name
or a payload) prints as safe text. Table cells are cut at :data:`MAX_CELL` characters; JSON
keeps whole values, secrets masked and lone surrogates written as ``\\udcxx`` text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

import click

from ictq.cli.state import State
from ictq.display import printable

MAX_CELL = 255
_SURROGATE = re.compile("[\ud800-\udfff]")


def age(seconds: int | None) -> str:
    """45s, 12m, 3h, 2d."""
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _mask() -> Callable[[str], str]:
    """The masking function of the running command's settings (none before they are read)."""
    context = click.get_current_context(silent=True)
    state = context.find_object(State) if context is not None else None
    return state.mask if state is not None else str


def cell(value: Any, mask: Callable[[str], str] | None = None) -> str:
    """One table cell: secrets masked, on one line, control characters escaped, cut."""
    text = value if isinstance(value, str) else printable(value)
    return printable((mask or _mask())(text), MAX_CELL)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned columns two spaces apart, a header line first."""
    mask = _mask()
    cells = [[str(h) for h in headers]] + [[cell(c, mask) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)


def safe_json(data: Any, mask: Callable[[str], str] | None = None) -> Any:
    """``data`` with every string (keys too) masked and lone surrogates written out as text."""
    mask = mask or _mask()
    if isinstance(data, str):
        text = mask(data)
        return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) if not text.isascii() else text
    if isinstance(data, bytes | bytearray):
        return safe_json(printable(data), mask)
    if isinstance(data, dict):
        return {safe_json(str(key), mask): safe_json(value, mask) for key, value in data.items()}
    if isinstance(data, list | tuple | set | frozenset):
        return [safe_json(item, mask) for item in data]
    return data


def shown(text: str) -> str:
    """Text for a person: secrets masked, control characters other than newlines and tabs escaped."""
    return printable(_mask()(text), lines=True)


def say(text: str) -> None:
    """Print one line (or a few) of a command's result through :func:`shown`."""
    click.echo(shown(text))


def emit(as_json: bool, data: Any, text: Callable[[], str]) -> None:
    """Print ``data`` as JSON, or else what ``text()`` makes of it."""
    click.echo(json.dumps(safe_json(data), ensure_ascii=False, indent=2) if as_json else shown(text()))
