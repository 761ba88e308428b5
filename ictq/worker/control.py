"""The worker's view of the control flags (``ictq restart``, ``ictq pause``; written by
:mod:`ictq.control`), read from the database at most every ``interval`` seconds; and, beside a
Laravel application, of Laravel's signals in its cache store (``php artisan queue:restart``,
Laravel 11's ``queue:pause``), read as often."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from ictq import laravel_cache
from ictq.db import Storage
from ictq.db.control import ControlRepository, ControlState
from ictq.errors import DatabaseUnavailable, IctqError
from ictq.laravel_cache import CacheStore
from ictq.pace import Sampled

_UNSET = object()


class ControlWatcher:
    def __init__(self, storage: Storage, interval: float = 1.0, laravel: CacheStore | None = None,
                 queues: Sequence[str] = (), connection: str = "database",
                 trouble: Callable[[str | None], None] = lambda _message: None) -> None:
        """``laravel``: the Laravel app's cache store (None: no Laravel app); ``queues``: the
        worker's queues, whose Laravel pause flags it reads; ``trouble``: told the one-line
        reason when the Laravel store cannot be read, and None when it can again."""
        self._flags = Sampled(self._read, every=interval)
        self._repository = ControlRepository(storage)
        self._laravel, self._queues, self._connection, self._trouble = laravel, tuple(queues), connection, trouble
        self._initial_restart: str | None = None
        self._laravel_restart: Any = _UNSET  # Laravel's restart value at start
        self._laravel_now: Any = None
        self._laravel_failing = False
        self.state = ControlState(None, frozenset())

    def refresh(self, force: bool = False) -> ControlState:
        """The flags, re-read if ``interval`` has passed (raises DatabaseUnavailable like any read)."""
        first = not self._flags.taken
        self.state = self._flags(force)
        if first:
            self._initial_restart = self.state.restart
            self._laravel_restart = self._laravel_now
        return self.state

    @property
    def restart_requested(self) -> bool:
        if not self._flags.taken:
            return False
        return self.state.restart != self._initial_restart or self.laravel_restart_requested

    @property
    def laravel_restart_requested(self) -> bool:
        """Laravel's signal alone changed (``php artisan queue:restart``, not ``ictq restart``)."""
        return (self._laravel_restart is not _UNSET and self._laravel_now != self._laravel_restart
                and self.state.restart == self._initial_restart)

    def _read(self) -> ControlState:
        state = self._repository.state()
        if self._laravel is None:
            return state
        try:
            self._laravel_now = self._laravel.get(laravel_cache.RESTART_KEY)
            paused = {queue for queue in self._queues
                      if self._laravel.get(laravel_cache.pause_key(self._connection, queue))}
        except DatabaseUnavailable:
            raise
        except IctqError as exc:  # Laravel's store is unreachable: ictq's own flags still count
            if not self._laravel_failing:
                self._laravel_failing = True
                self._trouble(str(exc))
            return state
        if self._laravel_failing:
            self._laravel_failing = False
            self._trouble(None)
        return dataclasses.replace(state, paused=state.paused | paused) if paused else state
