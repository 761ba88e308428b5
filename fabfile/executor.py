"""Run each queue task once, for all its hosts, instead of once per host.

Fabric's own executor calls a task once per ``-H`` host, each time with a fresh
:class:`~fabric.Connection`. The queue tasks need the whole host list at once: to print one
block per host, to go on when a host is down, to end with one exit status for all hosts, and
to run commands that act on the shared database (``retry``, ``test-email``) on one host only.
:class:`FleetExecutor` (named in ``fabric.yaml`` as ``tasks.executor_class``) hands them a
:class:`FleetContext` that carries the ``-H`` names; every other task runs as Fabric runs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fabric.executor import Executor  # type: ignore[import-untyped]
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import Call, Task


class FleetTask(Task):  # type: ignore[type-arg]
    """A task that runs once and works through its hosts itself."""


class FleetContext(Context):
    """A local context that also knows the hosts given with ``-H`` (none: an empty tuple)."""

    def __init__(self, config: Any, cli_hosts: Sequence[str]) -> None:
        super().__init__(config=config)
        self._set(cli_hosts=tuple(cli_hosts))

    cli_hosts: tuple[str, ...]


class FleetCall(Call):
    """A call of a :class:`FleetTask`: one call, whatever the number of hosts."""

    def __init__(self, *args: Any, cli_hosts: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cli_hosts = tuple(cli_hosts)

    def clone_data(self) -> dict[str, Any]:
        data = super().clone_data()
        data["cli_hosts"] = self.cli_hosts
        return data

    def make_context(self, config: Any) -> FleetContext:
        return FleetContext(config, self.cli_hosts)


def split_hosts(value: str | None) -> tuple[str, ...]:
    """``-H a,b, c`` -> ("a", "b", "c")."""
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


class FleetExecutor(Executor):  # type: ignore[misc]
    """Fabric's executor, except that :class:`FleetTask` calls are not repeated per host."""

    def expand_calls(self, calls: list[Any], apply_hosts: bool = True) -> list[Any]:
        normalized = [Call(task=call) if isinstance(call, Task) else call for call in calls]
        if not any(isinstance(call.task, FleetTask) for call in normalized):
            return list(super().expand_calls(normalized, apply_hosts=apply_hosts))
        if self.core.remainder:
            raise Exit("the queue tasks take no '-- command': run it with plain `fab -H HOSTS -- COMMAND`", code=2)
        cli_hosts = split_hosts(self.core[0].args.hosts.value) if apply_hosts else ()
        expanded: list[Any] = []
        for call in normalized:
            if not isinstance(call.task, FleetTask):
                expanded.extend(super().expand_calls([call], apply_hosts=apply_hosts))
                continue
            expanded.extend(self.expand_calls(call.pre, apply_hosts=False))
            expanded.append(call.clone(into=FleetCall, with_={"cli_hosts": cli_hosts}))
            expanded.extend(self.expand_calls(call.post, apply_hosts=False))
        return expanded
