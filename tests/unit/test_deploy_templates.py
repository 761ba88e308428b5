"""The deploy role (``roles/ictq_worker``): its templates, rendered as Ansible and ``ictq supervisor-config`` do,
its interface (``meta/argument_specs.yml`` against ``defaults/main.yml``) and the copy the package ships."""

from __future__ import annotations

import configparser
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from ictq import deploy
from ictq.cli import root
from ictq.config import load_settings
from ictq.deploy import WorkerProgram, find_templates, render_program, render_template
from ictq.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "roles" / "ictq_worker"
TEMPLATES = ROLE / "templates"
PROGRAM = "etc/supervisor/conf.d/laravel-worker.conf.j2"
ENV = "srv/ict/env.j2"
LOGROTATE = "etc/logrotate.d/ictq.j2"
EXAMPLE_VARS = REPO / "group_vars.example" / "workers"
EXAMPLE_VAULT_PASSWORD = "ictq-example-vault-password"


def role_defaults(role: Path = ROLE) -> dict[str, Any]:
    data = yaml.safe_load((role / "defaults" / "main.yml").read_text())
    assert isinstance(data, dict)
    return data


def role_options(role: Path = ROLE) -> dict[str, dict[str, Any]]:
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())
    options = specs["argument_specs"]["main"]["options"]
    assert isinstance(options, dict)
    return options


def role_variables(**changes: Any) -> dict[str, Any]:
    """The role's defaults as Ansible would pass them, for rendering with plain Jinja2."""
    values = {k: v for k, v in role_defaults().items() if "{{" not in str(v)}
    values.update(changes)
    return values


def role_vars() -> dict[str, Any]:
    data = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    assert isinstance(data, dict)
    return data


def program(**changes: Any) -> WorkerProgram:
    return WorkerProgram(app_dir="/srv/ict", venv="/opt/ictq/venv", **changes)


def parse_ini(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    return parser


# -- laravel-worker.conf ----------------------------------------------------------------------


def test_the_program_has_what_supervisor_needs_for_several_workers() -> None:
    section = parse_ini(render_program(program(), TEMPLATES))["program:laravel-worker"]
    assert section["process_name"] == "%(program_name)s_%(process_num)02d"
    assert section["command"].split() == [
        "/opt/ictq/venv/bin/ictq", "--env-file=/srv/ict/.env", "work", "--queue=default", "--sleep=3",
        "--tries=3", "--backoff=0", "--timeout=60", "--memory=128", "--max-time=3600",
        "--name=%(program_name)s_%(process_num)02d",
    ]
    assert section["directory"] == "/srv/ict"
    assert section["user"] == "ictq"
    assert section["numprocs"] == "2"
    for key in ("autostart", "autorestart", "stopasgroup", "killasgroup"):
        assert section[key] == "true"
    assert int(section["stopwaitsecs"]) > 60
    # One log file per process: Supervisor rotates it, and no two processes share it.
    assert "%(process_num)02d" in section["stdout_logfile"]
    assert section["redirect_stderr"] == "true"


def test_options_reach_the_command_line() -> None:
    text = render_program(program(queue="high,default", numprocs=8, max_jobs=500, timeout=30,
                                  extra_args=("--force",), autostart=False), TEMPLATES)
    section = parse_ini(text)["program:laravel-worker"]
    assert "--queue=high,default" in section["command"].split()
    assert "--max-jobs=500" in section["command"].split()
    assert section["command"].endswith(" --force")
    assert section["numprocs"] == "8"
    assert section["autostart"] == "false"


def test_the_role_and_the_command_render_the_same_file() -> None:
    by_role = render_template(TEMPLATES, PROGRAM,
                              role_variables(ictq_worker_app_dir="/srv/ict", ictq_worker_venv="/opt/ictq/venv"))
    assert by_role == render_program(program(), TEMPLATES)


def test_the_command_has_the_role_defaults() -> None:
    defaults = role_defaults()
    for item in dataclasses.fields(WorkerProgram):
        if item.name in ("app_dir", "venv", "extra_args", "kind"):
            continue
        assert getattr(WorkerProgram, item.name) == defaults[f"ictq_worker_{item.name}"], item.name
    assert defaults["ictq_worker_extra_args"] == []
    assert WorkerProgram.kind == role_vars()["ictq_worker_program_base"]["kind"] == "ictq"


@pytest.mark.parametrize(("changes", "message"), [
    ({"timeout": 90}, "below DB_QUEUE_RETRY_AFTER=90"),
    ({"timeout": 120, "stopwaitsecs": 150}, "below DB_QUEUE_RETRY_AFTER=90"),
    ({"timeout": 0}, "at least 1"),
    ({"stopwaitsecs": 60}, "raise --stopwaitsecs"),
    ({"numprocs": 0}, "at least one worker"),
    ({"user": "root"}, "never run as root"),
])
def test_a_config_that_cannot_work_is_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        render_program(program(**changes), TEMPLATES)


# -- several programs, ictq and PHP --------------------------------------------------------------


def test_a_php_program_runs_laravels_worker_in_the_app_dir() -> None:
    text = render_program(program(program="laravel-php", kind="php", queue="laravel,mail", numprocs=3,
                                  timeout=50, stopwaitsecs=70, max_time=1800), TEMPLATES)
    section = parse_ini(text)["program:laravel-php"]
    assert section["command"].split() == [
        "/usr/bin/php", "/srv/ict/artisan", "queue:work", "database", "--queue=laravel,mail", "--sleep=3",
        "--tries=3", "--timeout=50", "--memory=128", "--max-time=1800",
    ]
    assert section["directory"] == "/srv/ict" and section["user"] == "ictq" and section["numprocs"] == "3"
    assert section["stopwaitsecs"] == "70" and section["stopasgroup"] == section["killasgroup"] == "true"
    assert "PYTHONUNBUFFERED" not in section["environment"]
    assert "%(process_num)02d" in section["stdout_logfile"]
    assert text.startswith("; Managed by the ictq deploy kit "), "queue_manager.sh finds the kit's files by it"


def test_a_php_programs_optional_limits_reach_artisan() -> None:
    command = parse_ini(render_program(
        program(program="php", kind="php", backoff="5,30", max_jobs=100, extra_args=("--rest=1",)), TEMPLATES,
    ))["program:php"]["command"].split()
    assert command[-3:] == ["--max-jobs=100", "--backoff=5,30", "--rest=1"]


@pytest.mark.parametrize("kind", ["ictq", "php"])
@pytest.mark.parametrize(("changes", "message"), [
    ({"timeout": 90}, "below DB_QUEUE_RETRY_AFTER=90"),
    ({"stopwaitsecs": 60}, "raise --stopwaitsecs"),
    ({"numprocs": 0}, "at least one worker"),
    ({"php": "/usr/bin/php;rm"}, "Supervisor reads them as syntax"),
])
def test_every_kind_of_program_has_the_same_invariants(kind: str, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        render_program(program(kind=kind, **changes), TEMPLATES)


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ConfigError, match="--kind 'perl': one of ictq, php"):
        render_program(program(kind="perl"), TEMPLATES)


@pytest.mark.parametrize("kind", ["ictq", "php"])
def test_the_role_renders_each_program_as_the_command_does(kind: str) -> None:
    # The role passes each entry of ictq_worker_programs, completed, as ictq_worker_supervisor_program.
    made = program(program=f"w-{kind}", kind=kind, queue="q1", numprocs=1, timeout=30, stopwaitsecs=40)
    entry = made.variables()["ictq_worker_supervisor_program"]
    by_role = render_template(TEMPLATES, PROGRAM, role_variables(
        ictq_worker_app_dir="/srv/ict", ictq_worker_venv="/opt/ictq/venv", ictq_worker_supervisor_program=entry,
    ))
    assert by_role == render_program(made, TEMPLATES)


def test_a_program_entry_has_the_keys_the_role_completes_it_with() -> None:
    entry = program().variables()["ictq_worker_supervisor_program"]
    base = role_vars()["ictq_worker_program_base"]
    assert set(entry) == {"name", *base}
    for key, value in base.items():
        if key != "kind":
            assert value == f"{{{{ ictq_worker_{key} }}}}", key
    suboptions = role_options()["ictq_worker_programs"]["options"]
    assert set(suboptions) == set(entry)
    assert suboptions["name"].get("required") is True
    assert all("default" not in spec for spec in suboptions.values()), "a key left out takes the single variable"


def test_ansibles_validator_checks_each_program() -> None:
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    spec = {"ictq_worker_programs": role_options()["ictq_worker_programs"]}
    good = [{"name": "w", "kind": "ictq"}, {"name": "p", "kind": "php", "numprocs": 2, "timeout": 30}]
    assert not ArgumentSpecValidator(spec).validate({"ictq_worker_programs": good}).error_messages
    for bad in ([{"kind": "php"}], [{"name": "p", "kind": "perl"}], [{"name": "p", "numprocs": "many"}],
                [{"name": "p", "tmeout": 30}]):
        assert ArgumentSpecValidator(spec).validate({"ictq_worker_programs": bad}).error_messages, bad


def test_supervisor_config_command(tmp_path: Path) -> None:
    out = tmp_path / "laravel-worker.conf"
    runner = CliRunner()
    result = runner.invoke(root, ["supervisor-config", "--app-dir", "/srv/ict", "--venv", "/opt/ictq/venv",
                                 "--numprocs", "4", "--retry-after", "90", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert parse_ini(out.read_text())["program:laravel-worker"]["numprocs"] == "4"


def test_supervisor_config_reads_retry_after_from_the_env_file(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("DB_CONNECTION=sqlite\nDB_QUEUE_RETRY_AFTER=40\n")
    proc = subprocess.run([sys.executable, "-m", "ictq", "--env-file", str(env), "supervisor-config"],
                          capture_output=True, text=True, check=False, cwd=tmp_path)
    assert proc.returncode != 0
    assert "timeout=60 must be at least 1 and below DB_QUEUE_RETRY_AFTER=40" in proc.stderr
    assert proc.stderr.count("\n") == 1, "one line, no traceback"


def test_templates_are_found_or_the_error_says_where_to_look(tmp_path: Path) -> None:
    assert find_templates().resolve() == TEMPLATES
    assert find_templates(environ={"ICTQ_TEMPLATES": str(TEMPLATES)}) == TEMPLATES
    with pytest.raises(ConfigError, match=r"no etc/supervisor/conf\.d/laravel-worker\.conf\.j2 there"):
        find_templates(str(tmp_path))


# -- .env -------------------------------------------------------------------------------------


def test_env_round_trips_through_ictqs_own_parser(tmp_path: Path) -> None:
    # Single-quoted values stay literal in ictq's parser, as in Laravel's: ${NAME} included.
    tricky = "p'a\\ss $HOME ${HOME} {x} \"q\" #x $y"
    text = render_template(TEMPLATES, ENV, role_variables(
        ictq_worker_db_password=tricky, ictq_worker_mail_password="m@il'pw", ictq_worker_jobs=["app.jobs", "b"],
        ictq_worker_env_extra={"APP_DEBUG": "false"}, ictq_worker_env_secrets={"SENTRY_TOKEN": "t0k3n'"},
    ))
    env = tmp_path / ".env"
    env.write_text(text)
    settings = load_settings(env, environ={})
    assert settings.db.password == tricky
    assert settings.db.connection == "pgsql" and settings.db.host == "127.0.0.1" and settings.db.port == 5432
    assert settings.retry_after == 90
    assert settings.job_modules == ("app.jobs", "b")
    assert settings.queue_connection == "database"
    assert settings.get("MAIL_PASSWORD") == "m@il'pw"
    assert settings.get("SENTRY_TOKEN") == "t0k3n'"
    assert settings.get("APP_DEBUG") == "false"
    assert tricky in settings.secrets


# -- logrotate --------------------------------------------------------------------------------


@pytest.mark.parametrize("copytruncate", [True, False])
def test_logrotate_file_passes_logrotate_debug(tmp_path: Path, copytruncate: bool) -> None:
    logrotate = shutil.which("logrotate") or "/usr/sbin/logrotate"
    if not Path(logrotate).exists():
        pytest.fail("logrotate is not installed (see TEST_PACKAGES in the Makefile)")
    (tmp_path / "storage" / "logs").mkdir(parents=True)
    (tmp_path / "storage" / "logs" / "queue.log").write_text("line\n" * 10)
    text = render_template(TEMPLATES, LOGROTATE, role_variables(
        ictq_worker_app_dir=str(tmp_path), ictq_worker_user="root", ictq_worker_group="root",
        ictq_worker_logrotate_copytruncate=copytruncate, ictq_worker_logrotate_postrotate="true",
    ))
    assert ("copytruncate" in text) is copytruncate
    assert f"{tmp_path}/storage/logs/*.log {{" in text
    config = tmp_path / "ictq.logrotate"
    config.write_text(text)
    config.chmod(0o644)
    proc = subprocess.run([logrotate, "--debug", "--state", str(tmp_path / "state"), str(config)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "error" not in proc.stderr.lower(), proc.stderr
    assert "queue.log" in proc.stderr


def test_logrotate_debug_rejects_a_broken_file(tmp_path: Path) -> None:
    logrotate = shutil.which("logrotate") or "/usr/sbin/logrotate"
    config = tmp_path / "broken"
    config.write_text(f"{tmp_path}/*.log {{\n    rotate many\n}}\n")
    proc = subprocess.run([logrotate, "--debug", "--state", str(tmp_path / "state"), str(config)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode != 0, "the role's validate step relies on this exit code"


# -- role interface and examples --------------------------------------------------------------


ROLES = sorted((REPO / "roles").iterdir())
#: What an option of a role's argument spec may say (Ansible's argument spec keys).
SPEC_KEYS = {"type", "elements", "required", "default", "choices", "no_log", "description", "options", "aliases",
             "version_added", "apply_defaults"}
#: The Python type of a value of each spec type, as YAML reads it.
SPEC_TYPES: dict[str, type] = {"str": str, "path": str, "int": int, "bool": bool, "list": list, "dict": dict}


def _is(value: Any, spec_type: str) -> bool:
    kind = SPEC_TYPES[spec_type]
    return isinstance(value, kind) and (isinstance(value, bool) == (kind is bool))


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.name)
def test_every_argument_spec_entry_is_well_formed(role: Path) -> None:
    # A flow mapping with an unquoted comma ({description: A (b, c).}) once split four entries in two.
    for name, spec in role_options(role).items():
        assert isinstance(spec, dict), name
        assert set(spec) <= SPEC_KEYS, f"{name}: unknown keys {sorted(set(spec) - SPEC_KEYS)}"
        assert spec.get("type") in SPEC_TYPES, name
        assert isinstance(spec.get("description"), str) and spec["description"].strip(), name
        assert name.startswith(f"{role.name}_"), name


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.name)
def test_every_default_has_a_spec_of_its_type(role: Path) -> None:
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator  # type: ignore[import-untyped]

    options, defaults = role_options(role), role_defaults(role)
    assert set(defaults) <= set(options), f"no spec for {sorted(set(defaults) - set(options))}"
    plain = {name: value for name, value in defaults.items() if "{{" not in str(value)}
    for name, value in plain.items():
        spec = options[name]
        assert spec.get("default") == value, f"{name}: the spec says {spec.get('default')!r}, the default {value!r}"
        assert _is(value, spec["type"]), f"{name}: {value!r} is not a {spec['type']}"
        assert all(_is(item, spec["elements"]) for item in value) if "elements" in spec else True, name
        assert value in spec.get("choices", [value]), name
    for name, spec in options.items():
        assert not (spec.get("required") and name in defaults), f"{name}: required, yet it has a default"
        assert name in defaults or "default" not in spec, f"{name}: the spec has a default, defaults/main.yml none"
    # And Ansible's own validator, as the role's argument validation runs it, accepts the defaults.
    required = {name: "/x" for name, spec in options.items() if spec.get("required")}
    result = ArgumentSpecValidator(options).validate({**plain, **required})
    assert not result.error_messages, result.error_messages


def test_the_secrets_have_no_default() -> None:
    options, defaults = role_options(), role_defaults()
    secrets = {name for name, spec in options.items() if spec.get("no_log")}
    assert secrets == {"ictq_worker_db_password", "ictq_worker_mail_password", "ictq_worker_app_key",
                       "ictq_worker_env_secrets"}
    assert not secrets & set(defaults), "secrets have no default"


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.name)
def test_the_role_does_not_assume_the_repository_around_it(role: Path) -> None:
    for path in role.rglob("*"):
        if path.is_file():
            text = path.read_text()
            for assumption in ("playbook_dir", "role_path", "/../"):
                assert assumption not in text, f"{path.relative_to(REPO)} uses {assumption}"


# -- the copy the package ships -----------------------------------------------------------------


def shipped_files() -> list[Path]:
    """The role's files that ``ictq supervisor-config`` reads, relative to the role."""
    return [Path("defaults/main.yml"), *sorted(p.relative_to(ROLE) for p in TEMPLATES.rglob("*.j2"))]


def test_the_package_reads_the_roles_own_files() -> None:
    assert deploy.ROLE.resolve() == ROLE
    for relative in shipped_files():
        assert (deploy.ROLE / relative).read_bytes() == (ROLE / relative).read_bytes(), relative
    assert deploy.role_defaults() == role_defaults()


def test_a_wheel_ships_the_roles_defaults_and_templates_unchanged(tmp_path: Path) -> None:
    # Built from a copy (so nothing is written into the checkout) that keeps ictq/deploy_role a link.
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "ictq", "roles"):
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, source / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        elif path.is_file():
            shutil.copy2(path, source / name)
    assert (source / "ictq" / "deploy_role").is_symlink()
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--disable-pip-version-check",
                           "--wheel-dir", str(tmp_path / "wheels"), str(source)],
                          capture_output=True, text=True, check=False, timeout=280)
    assert proc.returncode == 0, proc.stderr
    [wheel] = (tmp_path / "wheels").glob("ictq-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for relative in shipped_files():
            member = f"ictq/deploy_role/{relative}"
            assert member in names, member
            assert archive.read(member) == (ROLE / relative).read_bytes(), member
        assert not any(name.startswith("ictq/deploy_role/tasks/") for name in names), "only what the command reads"


def test_the_example_vars_show_every_variable_with_the_secrets_vaulted() -> None:
    from ansible.parsing.vault import VaultLib, VaultSecret  # type: ignore[import-untyped]

    example = yaml.safe_load((EXAMPLE_VARS / "vars.yml").read_text())
    missing = set(role_options()) - set(example) - {"ictq_worker_wheelhouse"}
    assert not missing, f"not shown in the example vars: {sorted(missing)}"
    vault_text = (EXAMPLE_VARS / "vault.yml").read_bytes()
    assert vault_text.startswith(b"$ANSIBLE_VAULT;")
    vault = VaultLib([("default", VaultSecret(EXAMPLE_VAULT_PASSWORD.encode()))])
    secrets = yaml.safe_load(vault.decrypt(vault_text))
    for name in ("ictq_worker_db_password", "ictq_worker_mail_password", "ictq_worker_app_key"):
        assert example[name] == f"{{{{ vault_{name} }}}}"
        assert f"vault_{name}" in secrets


def test_the_playbook_parses() -> None:
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "--syntax-check",
                           "-i", "inventory.example", "playbooks/deploy.yml"],
                          cwd=REPO, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- the role's refusals, run by Ansible itself (the role's validate tasks, on the control node) --------


VALIDATE_PLAY = """\
- name: The role's checks only
  hosts: localhost
  connection: local
  gather_facts: true
  tasks:
    - name: Validate
      ansible.builtin.include_role:
        name: ictq_worker
        tasks_from: validate
"""


def validate_role(tmp_path: Path, **variables: Any) -> subprocess.CompletedProcess[str]:
    (tmp_path / "play.yml").write_text(VALIDATE_PLAY)
    (tmp_path / "wheels").mkdir(exist_ok=True)
    (tmp_path / "wheels" / "ictq-1.0-py3-none-any.whl").touch()
    extra = {"ansible_python_interpreter": sys.executable, "ictq_worker_wheelhouse": str(tmp_path / "wheels"),
             "ictq_worker_db_password": "x", **variables}
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"))
    return subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,",
                           str(tmp_path / "play.yml"), "-e", json.dumps(extra)],
                          cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=280)


MIXED = [{"name": "laravel-worker"}, {"name": "laravel-php", "kind": "php", "queue": "laravel", "timeout": 30}]


@pytest.mark.parametrize(("variables", "task", "message"), [
    ({"ictq_worker_db_connection": "sqlite", "ictq_worker_programs": MIXED}, "Refuse PHP programs on SQLite",
     "database is locked"),
    ({"ictq_worker_programs": [MIXED[0], {**MIXED[1], "timeout": 95, "stopwaitsecs": 100}]},
     "Check the worker timeouts", "program laravel-php: numprocs=2, timeout=95, retry_after=90"),
    ({"ictq_worker_programs": [MIXED[0], {**MIXED[1], "stopwaitsecs": 30}]},
     "Check the worker timeouts", "raise ictq_worker_stopwaitsecs, or the program's stopwaitsecs"),
    ({"ictq_worker_programs": [MIXED[0], {**MIXED[1], "name": "laravel-worker"}]},
     "Check the worker programs' names and kinds", "Need unique names"),
    ({"ictq_worker_laravel_app_src": "/nonexistent/laravel"}, "Check the Laravel application on the control node",
     "is not a Laravel application on the control node (no artisan there)"),
], ids=["php-on-sqlite", "php-timeout", "php-stopwaitsecs", "duplicate-name", "no-laravel-app"])
def test_the_role_refuses_what_cannot_work(tmp_path: Path, variables: dict[str, Any], task: str,
                                           message: str) -> None:
    proc = validate_role(tmp_path, **variables)
    assert proc.returncode != 0, proc.stdout
    last_task = [line for line in proc.stdout.splitlines() if line.startswith("TASK [")][-1]
    assert last_task.startswith(f"TASK [ictq_worker : {task}"), proc.stdout
    assert message in " ".join(proc.stdout.split()), proc.stdout


def test_the_role_accepts_php_and_ictq_programs_on_postgresql(tmp_path: Path) -> None:
    proc = validate_role(tmp_path, ictq_worker_programs=MIXED,
                         ictq_worker_laravel_app_src=str(REPO / "tests" / "laravel_app"))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_env_names_laravels_cache_only_beside_a_laravel_app() -> None:
    plain = render_template(TEMPLATES, ENV, role_variables())
    assert "CACHE_DRIVER" not in plain, "an ictq-only host's .env is as before"
    with_php = render_template(TEMPLATES, ENV, role_variables(
        ictq_worker_programs=[{"name": "p", "kind": "php"}], ictq_worker_cache_driver="database"))
    assert "QUEUE_CONNECTION=database\nCACHE_DRIVER='database'\n" in with_php
    with_app = render_template(TEMPLATES, ENV, role_variables(ictq_worker_laravel_app_src="/src/laravel"))
    assert "CACHE_DRIVER='file'" in with_app
