"""``ictq supervisor-config``: the Supervisor program for installing by hand.

It renders ``templates/laravel-worker.conf.j2``, the same file the Ansible role
(``roles/ictq_worker``) renders, with the same variable names and the same defaults, and
refuses the same wrong settings. The templates live at the top of the repository, outside the
package; they are looked up, in order, in ``--templates DIR``, ``$ICTQ_TEMPLATES``, the
repository ictq runs from (a checkout or an editable install), and ``<prefix>/share/ictq/templates``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ictq.errors import ConfigError

PROGRAM_TEMPLATE = "laravel-worker.conf.j2"
TEMPLATES_ENV = "ICTQ_TEMPLATES"


@dataclass(frozen=True)
class WorkerProgram:
    """The variables of ``laravel-worker.conf.j2``; defaults equal the role's (a test checks)."""

    app_dir: str
    venv: str
    user: str = "ictq"
    program: str = "laravel-worker"
    numprocs: int = 2
    queue: str = "default"
    sleep: int = 3
    tries: int = 3
    backoff: str = "0"
    timeout: int = 60
    memory: int = 128
    max_time: int = 3600
    max_jobs: int = 0
    extra_args: tuple[str, ...] = field(default=())
    autostart: bool = True
    autorestart: bool = True
    stopwaitsecs: int = 75
    retry_after: int = 90
    supervisor_log_dir: str = "/var/log/supervisor"
    supervisor_log_maxbytes: str = "10MB"
    supervisor_log_backups: int = 5

    def check(self) -> None:
        """Refuse what the role refuses, saying what to change."""
        if self.numprocs < 1:
            raise ConfigError(f"numprocs={self.numprocs}: run at least one worker (--numprocs)")
        if not 1 <= self.timeout < self.retry_after:
            raise ConfigError(
                f"timeout={self.timeout} must be at least 1 and below DB_QUEUE_RETRY_AFTER={self.retry_after}, "
                "or a job still running is handed to a second worker (lower --timeout or raise --retry-after)"
            )
        if self.stopwaitsecs <= self.timeout:
            raise ConfigError(
                f"stopwaitsecs={self.stopwaitsecs} must be above timeout={self.timeout}, or Supervisor kills "
                "a running job on every stop (raise --stopwaitsecs)"
            )
        if self.user in ("root", "0"):
            raise ConfigError("workers never run as root: pass --user with an unprivileged account")

    def variables(self) -> dict[str, Any]:
        """The template's variables: the role's names (``ictq_worker_*``)."""
        values = asdict(self)
        values["extra_args"] = list(self.extra_args)
        return {f"ictq_worker_{key}": value for key, value in values.items()}


def find_templates(explicit: str | None = None, environ: Mapping[str, str] = os.environ) -> Path:
    """The directory holding the deploy templates (see the module docstring for the order)."""
    candidates = [Path(p) for p in (explicit, environ.get(TEMPLATES_ENV)) if p]
    candidates += [Path(__file__).resolve().parents[1] / "templates", Path(sys.prefix) / "share" / "ictq" / "templates"]
    for directory in candidates:
        if (directory / PROGRAM_TEMPLATE).is_file():
            return directory
        if directory in candidates[:1] and explicit:
            raise ConfigError(f"--templates {directory}: no {PROGRAM_TEMPLATE} there")
    looked = ", ".join(str(c) for c in candidates)
    raise ConfigError(
        f"deploy templates not found (looked in {looked}); pass --templates DIR (the repository's templates/) "
        f"or set {TEMPLATES_ENV}"
    )


def render_template(templates: Path, name: str, variables: Mapping[str, Any]) -> str:
    """Render ``name`` the way Ansible's template module does (trim_blocks, strict variables)."""
    try:
        import jinja2
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise ConfigError("rendering deploy templates needs Jinja2: pip install 'ictq[deploy]'") from None
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # configuration files, not HTML
    )
    return environment.get_template(name).render(**variables)


def render_program(program: WorkerProgram, templates: Path) -> str:
    """The checked Supervisor program file for ``program``."""
    program.check()
    return render_template(templates, PROGRAM_TEMPLATE, program.variables())
