"""Options and values several command families share, and the types that check them.

Every number and name a command takes goes through one of the types below, so that a wrong
value is refused before anything runs: one line naming the option, exit 2. The ranges live in
:mod:`ictq.config` (``MAX_SECONDS``, ``MAX_HOURS``, ``MAX_COUNT``, ``MAX_TRIES``, ...), shared with the
``.env`` keys.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import click

from ictq.config import (
    MAX_COUNT,
    MAX_HOURS,
    MAX_ID,
    MAX_MEGABYTES,
    MAX_SECONDS,
    MAX_TRIES,
    comma_list,
    decimal_number,
    seconds_list,
    shown,
    whole_number,
)
from ictq.db.control import PAUSE_PREFIX

MAX_CONTROL_NAME = 191  # ictq_control.name: varchar(191)

__all__ = [
    "BACKOFF", "COUNT", "FAILED_REF", "HOURS", "JOB_NAME", "LIMIT", "MEGABYTES", "NAME", "PAUSED_QUEUE", "QUEUE",
    "QUEUES", "SECONDS", "TRIES", "WHOLE_SECONDS", "Decimal", "Duration", "Name", "NameList", "WholeNumber",
    "comma_list", "json_option", "queue_option",
]

MAX_NAME = 255  # the queue column of Laravel's jobs table: varchar(255)


class WholeNumber(click.ParamType[int]):
    """A whole number in ASCII digits within ``minimum..maximum`` (never beyond 64 bits)."""

    name = "integer"

    def __init__(self, minimum: int = 0, maximum: int = MAX_COUNT, name: str = "integer") -> None:
        self.minimum, self.maximum, self.name = minimum, maximum, name

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        text = str(value)
        try:
            return whole_number(text, self.minimum, self.maximum)
        except ValueError as exc:
            self.fail(f"{shown(text)} {exc}", param, ctx)


class Decimal(click.ParamType[float]):
    """A finite number in ASCII digits (``1.5``, ``2e3``; never ``nan`` or ``inf``) within a range."""

    name = "seconds"

    def __init__(self, minimum: float = 0, maximum: float = MAX_SECONDS, name: str = "seconds") -> None:
        self.minimum, self.maximum, self.name = minimum, maximum, name

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        text = str(value)
        try:
            return decimal_number(text, self.minimum, self.maximum)
        except ValueError as exc:
            self.fail(f"{shown(text)} {exc}", param, ctx)


class Duration(click.ParamType[float]):
    """Seconds, or a number with a unit: ``10``, ``10s``, ``1.5m``, ``15m``, ``2h``, ``1d``, within a
    range (in seconds)."""

    name = "duration"
    UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

    def __init__(self, minimum: float = 0, maximum: float = MAX_SECONDS) -> None:
        self.minimum, self.maximum = minimum, maximum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, (int, float)):
            return float(value)
        text = str(value).strip()
        unit = self.UNITS.get(text[-1:].lower(), 0)
        try:
            seconds = decimal_number(text[:-1] if unit else text, 0, MAX_SECONDS) * (unit or 1)
        except ValueError:
            self.fail(f"{shown(text)} is not a duration (a number of seconds, or with s, m, h or d: 10s, 15m)",
                      param, ctx)
        if not self.minimum <= seconds <= self.maximum:
            self.fail(f"{shown(text)} is out of range ({self.minimum:g}s to {self.maximum:g}s)", param, ctx)
        return seconds


class Backoff(click.ParamType[tuple[int, ...]]):
    """Whole seconds, or a comma list of them (``10,60,300``), each ``0..MAX_SECONDS``."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, ...]:
        if isinstance(value, tuple):
            return value
        text = str(value)
        try:
            return seconds_list(text)
        except ValueError as exc:
            self.fail(f"{shown(text)} {exc}", param, ctx)


def name_problem(text: str, maximum: int = MAX_NAME, forbidden: str = "") -> str | None:
    """What is wrong with ``text`` as a queue or job name, or None: empty or blank, blanks around
    it, too long, holding a control character or a line break, or one of ``forbidden``."""
    if not text.strip():
        return "is empty or blank"
    if text != text.strip():
        return "begins or ends with a blank"
    if any(c in forbidden for c in text):
        return f"holds one of {' '.join(forbidden)} (lists of queues are comma-separated)"
    if len(text) > maximum:
        return f"is longer than {maximum} characters"
    if any(unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") for c in text):
        return "holds a control character or a line break"
    return None


class Name(click.ParamType[str]):
    """A queue or job name: see :func:`name_problem`."""

    name = "name"

    def __init__(self, maximum: int = MAX_NAME, forbidden: str = "") -> None:
        self.maximum, self.forbidden = maximum, forbidden

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        problem = name_problem(text, self.maximum, self.forbidden)
        if problem:
            self.fail(f"{shown(text)} {problem}", param, ctx)
        return text


class NameList(click.ParamType[str]):
    """Comma-separated names (``high,default``), each a :class:`Name`; blanks around them trimmed."""

    name = "names"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        parts = [part.strip() for part in text.split(",")]
        for part in parts:
            problem = name_problem(part)  # blanks around each were trimmed
            if problem:
                self.fail(f"{shown(text)}: the name {shown(part)} {problem}", param, ctx)
        return ",".join(parts)


class FailedRef(click.ParamType[str]):
    """A failed job's id (ASCII digits, 1 to 2**63-1) or uuid (a name)."""

    name = "id|uuid"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip()
        if text.isdigit() or text.isdecimal():  # "²" and "٣" are digits to Python
            try:
                return str(whole_number(text, 1, MAX_ID))
            except ValueError as exc:
                self.fail(f"{shown(text)} {exc}", param, ctx)
        problem = name_problem(text)
        if problem:
            self.fail(f"{shown(str(value))} {problem}", param, ctx)
        return text


COUNT = WholeNumber(0, MAX_COUNT)
LIMIT = WholeNumber(1, MAX_COUNT)
TRIES = WholeNumber(0, MAX_TRIES, "tries")
MEGABYTES = WholeNumber(0, MAX_MEGABYTES, "megabytes")
HOURS = WholeNumber(0, MAX_HOURS, "hours")
WHOLE_SECONDS = WholeNumber(0, MAX_SECONDS, "seconds")
SECONDS = Decimal(0, MAX_SECONDS)
BACKOFF = Backoff()
NAME = Name()
JOB_NAME = Name()
QUEUE = Name(forbidden=",")  # one queue: a comma would make a name no `--queue` list can reach
#: a queue to pause: its flag's name (``pause:QUEUE``) must fit ictq_control's name column
PAUSED_QUEUE = Name(MAX_CONTROL_NAME - len(PAUSE_PREFIX), forbidden=",")
QUEUES = NameList()
FAILED_REF = FailedRef()

queue_option = click.option("--queue", type=QUEUES, help="Queues, comma-separated (default: all).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
