"""Where ictq lives on a worker host: app user, app dir, venv, Supervisor programs, log file.

One source of truth: the deploy role's defaults (``roles/ictq_worker/defaults/main.yml``, read
by :func:`ictq.deploy.role_defaults`, as ``ictq supervisor-config`` reads them), then the host's
``ictq_worker_*`` variables from the Ansible inventory (see :mod:`.inventory`), then explicit
``queue.*`` settings in the Fabric configuration, which win.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from ictq import deploy
from ictq.errors import ConfigError

PROJECT = Path(__file__).resolve().parent.parent

#: App field -> the deploy role's variable.
ROLE_VARIABLES = {
    "user": "ictq_worker_user",
    "app_dir": "ictq_worker_app_dir",
    "venv": "ictq_worker_venv",
    "program": "ictq_worker_program",
    "log_file": "ictq_worker_log_file",
}
#: The deploy role's list of programs (ictq and PHP); only their names matter here.
PROGRAMS_VARIABLE = "ictq_worker_programs"


class SettingsError(Exception):
    """A setting is missing or unusable (one line)."""


@dataclass(frozen=True)
class App:
    """How to reach ictq on one host."""

    user: str
    app_dir: str
    venv: str
    program: str
    log_file: str
    #: Every Supervisor program of the host (ictq and PHP workers); empty: ``program`` alone.
    programs: tuple[str, ...] = ()

    @property
    def ictq(self) -> str:
        return posixpath.join(self.venv, "bin", "ictq")

    @property
    def env_file(self) -> str:
        return posixpath.join(self.app_dir, ".env")

    @property
    def log_path(self) -> str:
        return posixpath.join(self.app_dir, self.log_file)

    @property
    def program_names(self) -> tuple[str, ...]:
        """The Supervisor programs the tasks act on, in the deploy's order."""
        return self.programs or (self.program,)

    @property
    def groups(self) -> list[str]:
        """The Supervisor group patterns of every program's processes (``NAME:*`` each)."""
        return [f"{name}:*" for name in self.program_names]

    @property
    def described(self) -> str:
        """The programs, for messages: ``laravel-worker`` or ``laravel-worker, laravel-php``."""
        return ", ".join(self.program_names)

    def updated(self, values: dict[str, Any], source: str) -> App:
        """This App with the fields that ``values`` (role variable names) set."""
        app = self
        if values.get(PROGRAMS_VARIABLE):
            app = replace(self, programs=program_names(values[PROGRAMS_VARIABLE], f"{PROGRAMS_VARIABLE} in {source}"))
        changes: dict[str, str] = {}
        for field, variable in ROLE_VARIABLES.items():
            value = values.get(variable)
            if value is None:
                continue
            text = str(value)
            if "{{" in text or "{%" in text:
                raise SettingsError(f"{variable} in {source} is a template ({text!r}): the fab tasks need a "
                                    f"plain value; set queue.{field} in fabric.yaml instead")
            if not text.strip():
                raise SettingsError(f"{variable} in {source} is empty")
            changes[field] = text
        return replace(app, **changes)


def program_names(value: Any, where: str) -> tuple[str, ...]:
    """The names of a program list: the role's ``[{name: ..., kind: ...}]``, or names (a list or
    a comma-separated string, as ``queue.programs`` may be given)."""
    if isinstance(value, str):
        if "{{" in value or "{%" in value:
            raise SettingsError(f"{where} is a template ({value!r}): the fab tasks need a plain value; "
                                "set queue.programs in fabric.yaml instead")
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, (list, tuple)):
        raise SettingsError(f"{where}: a list of programs, not {value!r}")
    names = []
    for entry in value:
        name = entry.get("name") if isinstance(entry, dict) else entry
        text = str(name or "")
        if not deploy.NAME.fullmatch(text):
            raise SettingsError(f"{where}: {name!r} is not a Supervisor program name")
        names.append(text)
    return tuple(names)


@lru_cache(maxsize=1)
def role_defaults() -> App:
    """The App of the deploy role's defaults."""
    try:
        data = deploy.role_defaults()
    except ConfigError as exc:
        raise SettingsError(str(exc)) from None
    missing = [v for v in ROLE_VARIABLES.values() if v not in data]
    if missing:
        raise SettingsError(f"{deploy.ROLE_DEFAULTS} lacks {', '.join(missing)}")
    return App(**{field: str(data[variable]) for field, variable in ROLE_VARIABLES.items()})


def from_config(app: App, queue_config: Any) -> App:
    """``app`` with the ``queue.user``, ``queue.app_dir``... settings that are set."""
    values = {variable: _get(queue_config, field) for field, variable in ROLE_VARIABLES.items()}
    app = app.updated({k: v for k, v in values.items() if v not in (None, "")}, "the Fabric configuration")
    programs = _get(queue_config, "programs")
    if programs not in (None, "", []):
        app = replace(app, programs=program_names(programs, "queue.programs in the Fabric configuration"))
    return app


def _get(config: Any, key: str) -> Any:
    try:
        return config[key]
    except (KeyError, TypeError):
        return None
