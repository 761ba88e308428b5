"""The Ansible inventory, read with Ansible's own inventory API (the deploy's source of hosts).

Only the inventory itself and the plain ``group_vars/`` / ``host_vars/`` files next to it are
read; files encrypted with Ansible Vault are skipped (the fab tasks need no secret), and no
vault password is ever asked for.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VARS_EXTENSIONS = ("", ".yml", ".yaml", ".json")


class InventoryError(Exception):
    """The inventory cannot be used (one line)."""


@dataclass(frozen=True)
class InventoryHost:
    """One host of the inventory and the variables the fab tasks look at."""

    name: str
    variables: dict[str, Any]


@dataclass(frozen=True)
class Inventory:
    path: Path
    hosts: dict[str, InventoryHost]
    groups: dict[str, tuple[str, ...]]

    def group(self, name: str) -> list[InventoryHost]:
        if name not in self.groups:
            known = ", ".join(sorted(g for g in self.groups if g not in ("all", "ungrouped"))) or "none"
            raise InventoryError(f"the inventory {self.path} has no group {name!r} (its groups: {known})")
        members = [self.hosts[h] for h in self.groups[name]]
        if not members:
            raise InventoryError(f"the group {name!r} of the inventory {self.path} has no hosts")
        return members


def load(path: Path) -> Inventory:
    """Parse ``path`` (a file or a directory, as for ``ansible-playbook -i``)."""
    if not path.exists():
        raise InventoryError(f"the inventory {path} does not exist")
    from ansible.errors import AnsibleError  # type: ignore[import-untyped]
    from ansible.inventory.helpers import get_group_vars, sort_groups  # type: ignore[import-untyped]
    from ansible.inventory.manager import InventoryManager  # type: ignore[import-untyped]
    from ansible.parsing.dataloader import DataLoader  # type: ignore[import-untyped]
    from ansible.utils.vars import combine_vars  # type: ignore[import-untyped]

    loader = DataLoader()
    said = io.StringIO()
    try:
        # Ansible prints its parse warnings itself: keep them for the one-line error instead.
        with contextlib.redirect_stderr(said), contextlib.redirect_stdout(said):
            manager = InventoryManager(loader=loader, sources=[str(path)])
    except AnsibleError as exc:
        raise InventoryError(f"cannot parse the inventory {path}: {_first_line(str(exc))}") from None
    if not manager.hosts:
        detail = _parse_failure(said.getvalue())
        raise InventoryError(f"cannot parse the inventory {path}" + (f": {detail}" if detail else ": no hosts in it"))
    hosts: dict[str, InventoryHost] = {}
    for host in manager.hosts.values():
        groups = sort_groups(host.get_groups())
        base = Path(str(host.vars.get("inventory_dir") or (path if path.is_dir() else path.parent)))
        variables = get_group_vars(groups)
        for group in groups:
            variables = combine_vars(variables, _vars_files(loader, base / "group_vars", group.name))
        variables = combine_vars(variables, host.get_vars())
        variables = combine_vars(variables, _vars_files(loader, base / "host_vars", host.name))
        hosts[host.name] = InventoryHost(host.name, dict(variables))
    groups = {name: tuple(h.name for h in group.get_hosts()) for name, group in manager.groups.items()}
    return Inventory(path, hosts, groups)


def _vars_files(loader: Any, directory: Path, name: str) -> dict[str, Any]:
    """What Ansible's host_group_vars plugin reads for ``name``, minus vault-encrypted files."""
    from ansible.errors import AnsibleError
    from ansible.parsing.vault import is_encrypted_file  # type: ignore[import-untyped]
    from ansible.utils.vars import combine_vars

    merged: dict[str, Any] = {}
    for found in _candidates(directory, name):
        with found.open("rb") as handle:
            if is_encrypted_file(handle):
                continue
        try:
            data = loader.load_from_file(str(found), unsafe=True)
        except AnsibleError as exc:
            raise InventoryError(f"cannot read {found}: {_first_line(str(exc))}") from None
        if data is None:
            continue
        if not isinstance(data, dict):
            raise InventoryError(f"{found} is not a mapping of variables")
        merged = combine_vars(merged, data)
    return merged


def _candidates(directory: Path, name: str) -> Iterator[Path]:
    for extension in VARS_EXTENSIONS:
        candidate = directory / f"{name}{extension}"
        if candidate.is_file():
            yield candidate
        elif candidate.is_dir() and not extension:
            for path in sorted(candidate.rglob("*")):
                if path.is_file() and path.suffix in VARS_EXTENSIONS and not path.name.startswith("."):
                    yield path


def _parse_failure(said: str) -> str:
    """The reason in Ansible's parse warnings ("Failed to parse inventory: ..."), if any."""
    lines = [line.strip().removeprefix("[WARNING]: ").strip() for line in said.splitlines()]
    for prefix in ("Failed to parse inventory:", "Failed to parse", "Unable to parse"):
        found = next((line for line in lines if line.startswith(prefix)), "")
        if found:
            return found
    return ""


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), text)
