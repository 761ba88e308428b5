"""Which hosts a task runs on: ``-H`` names, or else the inventory's ``workers`` group.

``-H`` names that are hosts of the inventory take its connection settings (``ansible_host``,
``ansible_port``, ``ansible_user``, ``ansible_ssh_private_key_file``, ``-o`` options of
``ansible_ssh_common_args`` / ``ansible_ssh_extra_args``) and its ``ictq_worker_*`` paths;
other names are connected to as Fabric does (``~/.ssh/config``, or ``fab -S FILE``).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fabfile import inventory as inventory_module
from fabfile.settings import PROJECT, App, from_config, role_defaults

#: The inventory used when queue.inventory is not set, if it exists (docs/deploy.md: `cp inventory.example inventory`).
DEFAULT_INVENTORY = PROJECT / "inventory"
#: The ssh -o options the connection honours (everything else is refused, not silently dropped).
SSH_OPTIONS = {"userknownhostsfile", "globalknownhostsfile", "stricthostkeychecking", "connecttimeout",
               "identityfile", "identitiesonly", "port", "user", "batchmode", "passwordauthentication",
               "pubkeyauthentication", "controlmaster", "controlpath", "controlpersist", "serveraliveinterval",
               "serveralivecountmax", "loglevel", "compression"}
NO_HOSTS = ("no hosts: name them with -H (fab -H host1,host2 {task}), or point queue.inventory at the Ansible "
            "inventory (FABRIC_QUEUE_INVENTORY=path/to/inventory fab {task}, or queue.inventory in fabric.yaml); "
            "its {group!r} group is used")


class HostsError(Exception):
    """No usable host list (one line)."""


@dataclass(frozen=True)
class Target:
    """One host to run on, and how to connect to it."""

    name: str
    app: App
    host: str | None = None
    port: int | None = None
    user: str | None = None
    key_files: tuple[str, ...] = ()
    ssh_options: dict[str, str] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return self.host or self.name


def resolve(cli_hosts: Sequence[str], queue_config: Any, task: str) -> list[Target]:
    """The targets of ``task``: ``-H`` names, or else the inventory group; never empty."""
    group = str(_get(queue_config, "group") or "workers")
    inventory = _inventory(queue_config)
    base = from_config(role_defaults(), queue_config)
    if cli_hosts:
        targets = []
        for name in dict.fromkeys(cli_hosts):  # once each, in the given order
            known = inventory.hosts.get(name) if inventory else None
            targets.append(_from_inventory(known, base, queue_config) if known else _plain(name, base, queue_config))
        return targets
    if inventory is None:
        raise HostsError(NO_HOSTS.format(task=task, group=group))
    try:
        members = inventory.group(group)
    except inventory_module.InventoryError as exc:
        raise HostsError(str(exc)) from None
    return [_from_inventory(member, base, queue_config) for member in members]


def inventory_path(queue_config: Any) -> Path | None:
    """queue.inventory ("" for none), else ./inventory of the project when it exists."""
    configured = _get(queue_config, "inventory")
    if configured is None:
        return DEFAULT_INVENTORY if DEFAULT_INVENTORY.exists() else None
    text = str(configured).strip()
    return Path(os.path.expanduser(text)) if text else None


def _inventory(queue_config: Any) -> inventory_module.Inventory | None:
    path = inventory_path(queue_config)
    if path is None:
        return None
    try:
        return inventory_module.load(path)
    except inventory_module.InventoryError as exc:
        raise HostsError(str(exc)) from None


def _plain(name: str, base: App, queue_config: Any) -> Target:
    return Target(name=name, app=from_config(base, queue_config))


def _from_inventory(host: inventory_module.InventoryHost, base: App, queue_config: Any) -> Target:
    variables = host.variables
    source = f"the inventory (host {host.name})"
    app = from_config(base.updated(variables, source), queue_config)
    options = ssh_options(" ".join(str(variables.get(k) or "") for k in ("ansible_ssh_common_args",
                                                                          "ansible_ssh_extra_args")), host.name)
    key = variables.get("ansible_ssh_private_key_file") or variables.get("ansible_private_key_file")
    keys = tuple(os.path.expanduser(str(k)) for k in (key, options.pop("identityfile", None)) if k)
    port = variables.get("ansible_port") or variables.get("ansible_ssh_port") or options.pop("port", None)
    user = variables.get("ansible_user") or variables.get("ansible_ssh_user") or options.pop("user", None)
    try:
        port_number = int(port) if port else None
    except ValueError:
        raise HostsError(f"{host.name}: ansible_port {port!r} is not a number") from None
    return Target(name=host.name, app=app, host=str(variables.get("ansible_host") or host.name), port=port_number,
                  user=str(user) if user else None, key_files=keys, ssh_options=options)


def ssh_options(args: str, host: str) -> dict[str, str]:
    """The ``-o Key=Value`` (and ``-i``, ``-p``, ``-l``) options of ssh arguments, keys lower-cased.

    The first value of an option wins, as with ssh. An option the connection cannot honour
    (ProxyJump, ProxyCommand, ...) is an error rather than silently ignored.
    """
    try:
        words = shlex.split(args)
    except ValueError as exc:
        raise HostsError(f"{host}: cannot read its ssh arguments: {exc}") from None
    found: dict[str, str] = {}
    flags = {"-i": "identityfile", "-p": "port", "-l": "user"}
    index = 0
    while index < len(words):
        word = words[index]
        if word in ("-o", *flags) and index + 1 < len(words):
            value, index = words[index + 1], index + 2
        elif word.startswith("-o") and len(word) > 2:
            value, index = word[2:], index + 1
        else:
            raise HostsError(f"{host}: the ssh argument {word!r} is not supported by the fab tasks "
                             "(use -o Key=Value options, or an entry in ~/.ssh/config and fab -S)")
        if word in flags:
            key, setting = flags[word], value
        else:
            key, _, setting = value.replace("=", " ", 1).partition(" ")
            key = key.strip().lower()
        if key not in SSH_OPTIONS:
            raise HostsError(f"{host}: the ssh option {key!r} is not supported by the fab tasks "
                             "(put the host in ~/.ssh/config and use fab -S / -H)")
        found.setdefault(key, setting.strip())
    return found


def _get(config: Any, key: str) -> Any:
    try:
        return config[key]
    except (KeyError, TypeError):
        return None
