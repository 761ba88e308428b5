"""What the dashboard's pages read, kept a few seconds: stale while it is read again.

The overview's exact counts read every entry of the jobs index per queue (half a second on
MariaDB at a million pending jobs), a week's chart sums 150,000 history rows. Each page of every
open browser asks for them every few seconds. So :class:`Cached` keeps each answer for
``max_age`` seconds; a request that finds it older gets the kept answer at once while one
background thread computes the next (never two at once for one key), and only a request that
finds nothing waits for it. A change made from the dashboard clears everything
(:meth:`Cached.clear`), so an operator sees their own change at once; changes from elsewhere
show within ``max_age`` plus one computation. Entries are bounded (``size``): hostile query
strings cannot grow the cache.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from ictq import display
from ictq.errors import IctqError, one_line

T = TypeVar("T")
log = logging.getLogger("ictq.dashboard")


class Cached:
    def __init__(self, size: int = 256, clock: Callable[[], float] = time.monotonic) -> None:
        self.size = size
        self.clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._refreshing: set[Hashable] = set()
        self._generation = 0

    def get(self, key: Hashable, max_age: float, compute: Callable[[], T]) -> T:
        """The kept answer for ``key`` when it is at most ``max_age`` seconds old; an older one
        while a thread computes the next; else ``compute()`` now (its errors are the caller's)."""
        now = self.clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                if now - entry[0] <= max_age:
                    return entry[1]  # type: ignore[no-any-return]
                refresh = key not in self._refreshing
                if refresh:
                    self._refreshing.add(key)
            generation = self._generation
        if entry is None:
            value = compute()
            self._put(key, value, now, generation)
            return value
        if refresh:
            threading.Thread(target=self._refresh, args=(key, compute, generation), daemon=True,
                             name="ictq-dashboard-refresh").start()
        return entry[1]  # type: ignore[no-any-return]

    def _refresh(self, key: Hashable, compute: Callable[[], Any], generation: int) -> None:
        started = self.clock()
        try:
            self._put(key, compute(), started, generation)
        except IctqError as exc:  # the next request tries again (and a page says what is wrong)
            log.warning("dashboard data not refreshed: %s", display.mask(one_line(exc)))
        except Exception as exc:  # noqa: BLE001 - a background refresh must not die loudly
            log.error("dashboard data not refreshed: %s: %s", type(exc).__name__, display.mask(one_line(exc)))
        finally:
            with self._lock:
                self._refreshing.discard(key)

    def _put(self, key: Hashable, value: Any, at: float, generation: int) -> None:
        with self._lock:
            if generation != self._generation:
                return  # computed before a change the dashboard made: not kept
            self._entries[key] = (at, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every answer (after a change made from the dashboard); computations under way
        are not kept."""
        with self._lock:
            self._entries.clear()
            self._generation += 1
