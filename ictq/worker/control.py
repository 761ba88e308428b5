"""The worker's view of the control flags (``ictq restart``, ``ictq pause``; written by
:mod:`ictq.control`), read from the database at most every ``interval`` seconds."""

from __future__ import annotations

from ictq.db import Storage
from ictq.db.control import ControlRepository, ControlState
from ictq.pace import Sampled


class ControlWatcher:
    def __init__(self, storage: Storage, interval: float = 1.0) -> None:
        self._flags = Sampled(ControlRepository(storage).state, every=interval)
        self._initial_restart: str | None = None
        self.state = ControlState(None, frozenset())

    def refresh(self, force: bool = False) -> ControlState:
        """The flags, re-read if ``interval`` has passed (raises DatabaseUnavailable like any read)."""
        first = not self._flags.taken
        self.state = self._flags(force)
        if first:
            self._initial_restart = self.state.restart
        return self.state

    @property
    def restart_requested(self) -> bool:
        return self._flags.taken and self.state.restart != self._initial_restart
