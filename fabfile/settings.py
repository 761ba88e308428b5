"""Where ictq lives on a worker host: app user, app dir, venv, Supervisor program, log file.

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
    def group(self) -> str:
        """The Supervisor group pattern of the program's processes."""
        return f"{self.program}:*"

    def updated(self, values: dict[str, Any], source: str) -> App:
        """This App with the fields that ``values`` (role variable names) set."""
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
        return replace(self, **changes)


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
    return app.updated({k: v for k, v in values.items() if v not in (None, "")}, "the Fabric configuration")


def _get(config: Any, key: str) -> Any:
    try:
        return config[key]
    except (KeyError, TypeError):
        return None
