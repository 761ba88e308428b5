"""The Supervisor program of a worker, as the deploy role writes it (``ictq supervisor-config``,
:mod:`ictq.cli.deploy`, prints it for installing by hand): ictq workers (``ictq work``) or the
Laravel application's PHP workers (``php artisan queue:work database``), under the same rules.

It renders the Ansible role's own template (``roles/ictq_worker/templates/``,
``etc/supervisor/conf.d/laravel-worker.conf.j2``) with the same variable names and the role's own
defaults (``roles/ictq_worker/defaults/main.yml``), and refuses the same wrong settings. The role is
the single source: ``ictq/deploy_role`` links to it in a checkout, and a built package ships its
defaults and templates there. Templates are looked up in ``--templates DIR``, ``$ICTQ_TEMPLATES``
(each a directory laid out like the role's ``templates/``), then the role.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from ictq.config import MAX_COUNT, MAX_MEGABYTES, MAX_SECONDS, MAX_TRIES, seconds_list, shown
from ictq.errors import ConfigError

#: The deploy role (roles/ictq_worker), as shipped with the package.
ROLE = Path(__file__).resolve().parent / "deploy_role"
ROLE_DEFAULTS = ROLE / "defaults" / "main.yml"
ROLE_TEMPLATES = ROLE / "templates"
PROGRAM_TEMPLATE = "etc/supervisor/conf.d/laravel-worker.conf.j2"
TEMPLATES_ENV = "ICTQ_TEMPLATES"

T = TypeVar("T")

MAX_PROCS = 1000  #: worker processes in one program
KINDS = ("ictq", "php")  #: what a program runs: ``ictq work``, or Laravel's ``php artisan queue:work``
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}", re.ASCII)  #: a program or account name
_BYTES = re.compile(r"[0-9]{1,12}(KB|MB|GB)?", re.ASCII)
#: Characters Supervisor gives a meaning to in a value: INI sections, comments and ``%(x)s``
#: expansions; the shell-like split of ``command=`` (quotes, backslashes); ``,`` is allowed
#: (queue lists), ``=`` too (``--opt=value``).
_SUPERVISOR_SPECIAL = frozenset("[];#%\"'\\`")


def unsafe_in_supervisor(value: str) -> str | None:
    """What makes ``value`` unsafe in a Supervisor program file, or None."""
    if not value:
        return "must not be empty"
    if any(c.isspace() or not c.isprintable() for c in value):
        return "must not hold blanks, line breaks or control characters"
    found = sorted(set(value) & _SUPERVISOR_SPECIAL)
    if found:
        return f"must not hold {' '.join(found)} (Supervisor reads them as syntax)"
    return None


@cache
def role_defaults() -> dict[str, Any]:
    """The role's ``defaults/main.yml``: every ``ictq_worker_*`` variable with its default."""
    import yaml

    # libyaml's safe loader when PyYAML has it: 1 ms instead of 10 at every start of ictq.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(ROLE_DEFAULTS.read_text(encoding="utf-8"), Loader=loader)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the deploy role's defaults {ROLE_DEFAULTS}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{ROLE_DEFAULTS}: not a mapping of variables")
    return data


def _role_default(name: str, kind: type[T]) -> T:
    """The role's default for ``ictq_worker_<name>``, which must be a ``kind``."""
    variable = f"ictq_worker_{name}"
    value = role_defaults().get(variable)
    bool_mismatch = isinstance(value, bool) != (kind is bool)  # YAML's true is an int to isinstance
    if not isinstance(value, kind) or bool_mismatch:
        raise ConfigError(f"{ROLE_DEFAULTS}: {variable} must be a {kind.__name__}, not {value!r}")
    return value


@dataclass(frozen=True)
class WorkerProgram:
    """The variables of the program template; every default is the role's (``defaults/main.yml``)."""

    app_dir: str
    venv: str
    user: str = _role_default("user", str)
    program: str = _role_default("program", str)
    kind: str = KINDS[0]
    php: str = _role_default("php", str)
    numprocs: int = _role_default("numprocs", int)
    queue: str = _role_default("queue", str)
    sleep: int = _role_default("sleep", int)
    tries: int = _role_default("tries", int)
    backoff: str = _role_default("backoff", str)
    timeout: int = _role_default("timeout", int)
    memory: int = _role_default("memory", int)
    max_time: int = _role_default("max_time", int)
    max_jobs: int = _role_default("max_jobs", int)
    extra_args: tuple[str, ...] = field(default=tuple(_role_default("extra_args", list)))
    autostart: bool = _role_default("autostart", bool)
    autorestart: bool = _role_default("autorestart", bool)
    stopwaitsecs: int = _role_default("stopwaitsecs", int)
    retry_after: int = _role_default("retry_after", int)
    supervisor_log_dir: str = _role_default("supervisor_log_dir", str)
    supervisor_log_maxbytes: str = _role_default("supervisor_log_maxbytes", str)
    supervisor_log_backups: int = _role_default("supervisor_log_backups", int)

    def check(self) -> None:
        """Refuse what the role refuses, saying what to change; and any value that would change the
        meaning of the file: Supervisor reads it as INI (``[section]``, ``;`` and ``#`` comments,
        ``%(name)s`` expansions) and splits ``command=`` like a shell (blanks, quotes, backslashes)."""
        if self.kind not in KINDS:
            raise ConfigError(f"--kind {shown(self.kind)}: one of {', '.join(KINDS)}")
        self._check_text()
        self._check_numbers()
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

    def _check_text(self) -> None:
        names = {"program": self.program, "user": self.user}
        for option, value in names.items():
            if not NAME.fullmatch(value):
                raise ConfigError(f"--{option} {shown(value)}: use letters, digits, '.', '_' and '-' only "
                                  "(not starting with '-')")
        texts = {"queue": self.queue, "backoff": self.backoff, "app-dir": self.app_dir, "venv": self.venv,
                 "php": self.php, "log-dir": self.supervisor_log_dir}
        for option, value in texts.items():
            if problem := unsafe_in_supervisor(value):
                raise ConfigError(f"--{option} {shown(value)}: {problem}")
        for arg in self.extra_args:
            if problem := unsafe_in_supervisor(arg):
                raise ConfigError(f"--extra-arg {shown(arg)}: {problem}")
        if any(not part.strip() for part in self.queue.split(",")):
            raise ConfigError(f"--queue {shown(self.queue)}: name one queue or more, comma-separated, none empty")
        try:
            seconds_list(self.backoff)
        except ValueError as exc:
            raise ConfigError(f"--backoff {shown(self.backoff)} {exc}") from None
        if not _BYTES.fullmatch(self.supervisor_log_maxbytes):
            raise ConfigError(f"ictq_worker_supervisor_log_maxbytes {shown(self.supervisor_log_maxbytes)}: "
                              "a size such as 10MB")

    def _check_numbers(self) -> None:
        if self.numprocs > MAX_PROCS:
            raise ConfigError(f"numprocs={self.numprocs}: at most {MAX_PROCS} worker processes (--numprocs)")
        ranges = {"sleep": (self.sleep, MAX_SECONDS), "tries": (self.tries, MAX_TRIES),
                  "timeout": (self.timeout, MAX_SECONDS), "memory": (self.memory, MAX_MEGABYTES),
                  "max-time": (self.max_time, MAX_SECONDS), "max-jobs": (self.max_jobs, MAX_COUNT),
                  "stopwaitsecs": (self.stopwaitsecs, MAX_SECONDS), "retry-after": (self.retry_after, MAX_SECONDS),
                  "supervisor-log-backups": (self.supervisor_log_backups, MAX_COUNT)}
        for option, (value, maximum) in ranges.items():
            if not 0 <= value <= maximum:
                raise ConfigError(f"--{option} {value} is out of range (0 to {maximum})")

    def variables(self) -> dict[str, Any]:
        """The template's variables: the role's names (``ictq_worker_*``), and the program itself as
        the role passes each entry of ``ictq_worker_programs`` (``ictq_worker_supervisor_program``)."""
        values = asdict(self)
        values["extra_args"] = list(self.extra_args)
        names = {f"ictq_worker_{key}": value for key, value in values.items()}
        names["ictq_worker_supervisor_program"] = {
            "name": self.program, **{key: values[key] for key in _PROGRAM_KEYS},
        }
        return names


#: What each entry of the role's ``ictq_worker_programs`` holds besides its name.
_PROGRAM_KEYS = ("kind", "queue", "numprocs", "sleep", "tries", "backoff", "timeout", "memory", "max_time",
                 "max_jobs", "extra_args", "autostart", "autorestart", "stopwaitsecs")


def find_templates(explicit: str | None = None, environ: Mapping[str, str] = os.environ) -> Path:
    """The directory holding the deploy templates (see the module docstring for the order)."""
    candidates = [Path(p) for p in (explicit, environ.get(TEMPLATES_ENV)) if p] + [ROLE_TEMPLATES]
    for directory in candidates:
        if (directory / PROGRAM_TEMPLATE).is_file():
            return directory
        if directory in candidates[:1] and explicit:
            raise ConfigError(f"--templates {directory}: no {PROGRAM_TEMPLATE} there")
    looked = ", ".join(str(c) for c in candidates)
    raise ConfigError(
        f"deploy templates not found (looked in {looked}); pass --templates DIR (the role's templates/, "
        f"roles/ictq_worker/templates in the repository) or set {TEMPLATES_ENV}"
    )


def render_template(templates: Path, name: str, variables: Mapping[str, Any]) -> str:
    """Render ``name`` the way Ansible's template module does (trim_blocks, strict variables)."""
    import jinja2  # a dependency, imported here because most commands never render a template
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
