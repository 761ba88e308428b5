"""Doing something at most every N seconds: the one rule for readings the worker loop looks at
on every turn but need not take that often (the control flags, the maintenance file), and for
chores done now and then (pruning old failed jobs, pruning the mail ledger)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar, cast

T = TypeVar("T")


class Every:
    """``due()`` is True at the first call and then once ``every`` seconds have passed since
    the last True (by ``clock``, monotonic unless given)."""

    def __init__(self, every: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self._clock = clock
        self._at = float("-inf")

    def due(self) -> bool:
        now = self._clock()
        if now - self._at < self.every:
            return False
        self._at = now
        return True


class Sampled(Generic[T]):
    """``sampled()`` returns the last reading, taken again once ``every`` seconds have passed
    (or when forced). A reading that raises is not kept: the next call reads again."""

    def __init__(self, read: Callable[[], T], every: float) -> None:
        self._read = read
        self.every = every
        self._at = float("-inf")
        self._value: T | None = None
        self.taken = False  # whether there was a reading yet

    def __call__(self, force: bool = False) -> T:
        now = time.monotonic()
        if force or now - self._at >= self.every:
            value = self._read()
            self._value, self._at, self.taken = value, now, True
            return value
        return cast(T, self._value)
