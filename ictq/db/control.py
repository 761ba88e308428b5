"""The ``ictq_control`` table: flags every worker obeys (restart stamp, paused queues).
:class:`ControlRepository` is the only caller of the ``control_*`` statements."""

from __future__ import annotations

from dataclasses import dataclass

from ictq.db.base import Storage

RESTART = "restart"
PAUSE_PREFIX = "pause:"


@dataclass(frozen=True)
class ControlState:
    restart: str | None
    paused: frozenset[str]


class ControlRepository:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def all(self) -> dict[str, str]:
        """Every flag, by name."""
        return {str(name): str(value) for name, value in self.storage.fetch("control_all")}

    def set(self, name: str, value: str, now: int) -> None:
        self.storage.run("control_set", {"name": name, "value": value, "now": now})

    def delete(self, name: str) -> bool:
        """Remove a flag; False when there was none."""
        return self.storage.run("control_delete", {"name": name}) > 0

    def state(self) -> ControlState:
        """The flags as the workers read them: the restart stamp and the paused queues."""
        values = self.all()
        paused = frozenset(name[len(PAUSE_PREFIX):] for name in values if name.startswith(PAUSE_PREFIX))
        return ControlState(values.get(RESTART), paused)
