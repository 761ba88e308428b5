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
                       "ictq_worker_env_secrets", "ictq_worker_dashboard_key"}
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
    for name in ("ictq_worker_db_password", "ictq_worker_mail_password", "ictq_worker_app_key",
                 "ictq_worker_dashboard_key"):
        assert example[name] == f"{{{{ vault_{name} }}}}"
        assert f"vault_{name}" in secrets
    assert len(secrets["vault_ictq_worker_dashboard_key"]) >= 32, "the example key is one the role accepts"
    assert example["ictq_worker_dashboard_enabled"] is False, "enabled per host, in host_vars"


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


# -- the dashboard (`ictq dashboard` under Supervisor) ---------------------------------------------


DASHBOARD = "etc/supervisor/conf.d/ictq-dashboard.conf.j2"
DASHBOARD_KEY = "k" * 31 + "'$x"  # 34 characters, with what .env quoting must keep literal
CHECK_PROGRAM = ROLE / "files" / "check-supervisor-program"


def dashboard_section(**changes: Any) -> configparser.SectionProxy:
    text = render_template(TEMPLATES, DASHBOARD, role_variables(
        ictq_worker_app_dir="/srv/ict", ictq_worker_venv="/opt/ictq/venv", **changes))
    return parse_ini(text)[f"program:{changes.get('ictq_worker_dashboard_program', 'ictq-dashboard')}"]


def test_the_dashboard_program_runs_ictq_dashboard_as_the_workers_run() -> None:
    section = dashboard_section()
    assert section["command"].split() == [
        "/opt/ictq/venv/bin/ictq", "--env-file=/srv/ict/.env", "dashboard", "--listen=127.0.0.1:8089",
    ]
    worker = parse_ini(render_program(program(), TEMPLATES))["program:laravel-worker"]
    for key in ("directory", "user", "environment", "stopsignal", "stopasgroup", "killasgroup", "redirect_stderr",
                "stdout_logfile_maxbytes", "stdout_logfile_backups"):
        assert section[key] == worker[key], key
    assert section["stopsignal"] == "TERM"
    assert section["numprocs"] == "1"
    assert section["autostart"] == section["autorestart"] == "true"
    # Its own log (stderr too: its access lines) in the workers' log directory.
    assert section["stdout_logfile"] == "/var/log/supervisor/%(program_name)s.log"
    assert section["redirect_stderr"] == "true"
    assert "process_name" not in section, "one process, named as the program: supervisorctl status ictq-dashboard"


def test_the_dashboards_settings_reach_its_program() -> None:
    section = dashboard_section(ictq_worker_dashboard_program="dash", ictq_worker_dashboard_listen="[::1]:9000",
                                ictq_worker_user="web", ictq_worker_supervisor_log_dir="/var/log/ictq")
    assert section["command"].split()[-1] == "--listen=[::1]:9000"
    assert section["user"] == "web"
    assert section["stdout_logfile"] == "/var/log/ictq/%(program_name)s.log"


def test_the_dashboard_program_is_not_a_worker_program() -> None:
    # queue_manager.sh and the role's cleanup of stale worker programs go by the workers' marker:
    # the dashboard's file must not carry it, and carries its own (the role finds it by that).
    text = render_template(TEMPLATES, DASHBOARD, role_variables())
    assert "; Managed by the ictq deploy kit" not in text
    assert text.startswith(role_vars()["ictq_worker_dashboard_marker"])


def test_supervisor_parses_the_dashboard_program(tmp_path: Path) -> None:
    # What the role's `validate:` runs before installing the file: Supervisor's own parser.
    import pwd

    user = pwd.getpwuid(os.getuid()).pw_name
    text = render_template(TEMPLATES, DASHBOARD, role_variables(
        ictq_worker_user=user, ictq_worker_supervisor_log_dir=str(tmp_path)))
    conf = tmp_path / "ictq-dashboard.conf"
    conf.write_text(text)
    proc = subprocess.run([sys.executable, str(CHECK_PROGRAM), str(conf)], capture_output=True, text=True,
                          check=False, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("ictq-dashboard: /opt/ictq/venv/bin/ictq --env-file=/srv/ict/.env dashboard")


@pytest.mark.parametrize("enabled", [False, "false", "no"])
def test_the_env_holds_no_dashboard_key_unless_enabled(enabled: Any) -> None:
    text = render_template(TEMPLATES, ENV, role_variables(ictq_worker_dashboard_enabled=enabled,
                                                          ictq_worker_dashboard_key=DASHBOARD_KEY))
    assert "ICTQ_DASHBOARD_KEY" not in text
    assert "k" * 31 not in text
    # Nor does it need the key at all (secrets have no default: undefined is the usual case).
    assert render_template(TEMPLATES, ENV, role_variables(ictq_worker_dashboard_enabled=enabled)) == text


@pytest.mark.parametrize("enabled", [True, "true", "yes"])
def test_the_env_holds_the_dashboard_key_when_enabled(tmp_path: Path, enabled: Any) -> None:
    text = render_template(TEMPLATES, ENV, role_variables(ictq_worker_dashboard_enabled=enabled,
                                                          ictq_worker_dashboard_key=DASHBOARD_KEY))
    assert text.count("ICTQ_DASHBOARD_KEY=") == 1
    env = tmp_path / ".env"
    env.write_text(text)
    assert load_settings(env, environ={}).get("ICTQ_DASHBOARD_KEY") == DASHBOARD_KEY


def test_the_env_task_never_shows_the_file_and_keeps_it_private() -> None:
    tasks = yaml.safe_load((ROLE / "tasks" / "app.yml").read_text())
    [render] = [task for task in tasks if task.get("ansible.builtin.template", {}).get("src") == ENV]
    assert render["no_log"] is True and render["diff"] is False
    assert render["ansible.builtin.template"]["mode"] == "0640"


def test_the_dashboard_defaults() -> None:
    defaults = role_defaults()
    assert defaults["ictq_worker_dashboard_enabled"] is False
    assert defaults["ictq_worker_dashboard_listen"] == "127.0.0.1:8089", "loopback unless told otherwise"
    assert defaults["ictq_worker_dashboard_users"] == []
    assert defaults["ictq_worker_dashboard_program"] == "ictq-dashboard"
    assert "ictq_worker_dashboard_key" not in defaults, "a secret: from the vault"


def test_ansibles_validator_checks_each_dashboard_user() -> None:
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    spec = {"ictq_worker_dashboard_users": role_options()["ictq_worker_dashboard_users"]}
    assert spec["ictq_worker_dashboard_users"]["options"]["password"]["no_log"] is True
    good = [{"name": "ann", "role": "operator", "password": "pw"}, {"name": "bob", "role": "viewer", "password": "x"}]
    assert not ArgumentSpecValidator(spec).validate({"ictq_worker_dashboard_users": good}).error_messages
    for bad in ([{"name": "ann", "role": "admin", "password": "pw"}], [{"name": "ann", "role": "viewer"}],
                [{"role": "viewer", "password": "pw"}], [{"name": "a", "role": "viewer", "password": "p", "x": 1}]):
        assert ArgumentSpecValidator(spec).validate({"ictq_worker_dashboard_users": bad}).error_messages, bad


OPERATOR = [{"name": "ops", "role": "operator", "password": "pw-" + "x" * 20}]


@pytest.mark.parametrize(("variables", "task", "message"), [
    ({"ictq_worker_dashboard_enabled": True}, "Check the dashboard's key",
     "ictq_worker_dashboard_key (ICTQ_DASHBOARD_KEY) is missing or shorter than 32 characters"),
    ({"ictq_worker_dashboard_enabled": True, "ictq_worker_dashboard_key": "short-key-canary"},
     "Check the dashboard's key", "secrets.token_urlsafe(48)"),
    ({"ictq_worker_dashboard_enabled": True, "ictq_worker_dashboard_key": ""}, "Check the dashboard's key",
     "is missing or shorter than 32 characters"),
    ({"ictq_worker_dashboard_program": "laravel-worker"}, "Check the dashboard's program and address",
     "that no worker program has"),
    ({"ictq_worker_dashboard_listen": "8089"}, "Check the dashboard's program and address", "listen as HOST:PORT"),
    ({"ictq_worker_dashboard_enabled": True, "ictq_worker_dashboard_key": DASHBOARD_KEY,
      "ictq_worker_dashboard_users": [{"name": "ops", "role": "admin", "password": "pw"}]},
     "Check the dashboard's users", "role viewer or operator"),
    ({"ictq_worker_dashboard_enabled": True, "ictq_worker_dashboard_key": DASHBOARD_KEY,
      "ictq_worker_dashboard_users": OPERATOR * 2}, "Check the dashboard's users", "Need unique names"),
    ({"ictq_worker_dashboard_enabled": True, "ictq_worker_dashboard_key": DASHBOARD_KEY,
      "ictq_worker_dashboard_users": [{"name": "ops", "role": "viewer", "password": "short-key-canary"[:9]}]},
     "Check the dashboard's users", "a password of 10 to 1024 characters"),
    ({"ictq_worker_dashboard_enabled": True, "ictq_worker_dashboard_key": DASHBOARD_KEY,
      "ictq_worker_dashboard_users": [{"name": "-ops", "role": "viewer", "password": "x" * 10}]},
     "Check the dashboard's users", "starting with a letter or digit"),
], ids=["no-key", "short-key", "empty-key", "program-of-a-worker", "listen-without-host", "unknown-role",
        "duplicate-user", "short-password", "name-like-an-option"])
def test_the_role_refuses_a_dashboard_that_cannot_work(tmp_path: Path, variables: dict[str, Any], task: str,
                                                       message: str) -> None:
    proc = validate_role(tmp_path, **variables)
    assert proc.returncode != 0, proc.stdout
    last_task = [line for line in proc.stdout.splitlines() if line.startswith("TASK [")][-1]
    assert last_task.startswith(f"TASK [ictq_worker : {task}"), proc.stdout
    assert message in " ".join(proc.stdout.split()), proc.stdout
    assert "short-key-canary" not in proc.stdout + proc.stderr, "the key is never shown"


def test_the_role_accepts_a_dashboard_without_users(tmp_path: Path) -> None:
    proc = validate_role(tmp_path, ictq_worker_dashboard_enabled=True, ictq_worker_dashboard_key=DASHBOARD_KEY)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_role_accepts_a_dashboard_with_its_key_and_users(tmp_path: Path) -> None:
    proc = validate_role(tmp_path, ictq_worker_dashboard_enabled=True, ictq_worker_dashboard_key=DASHBOARD_KEY,
                         ictq_worker_dashboard_users=OPERATOR, ictq_worker_dashboard_listen="0.0.0.0:8089")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "k" * 31 not in proc.stdout + proc.stderr


# The users task, run by Ansible against a stand-in for `ictq dashboard user add` that keeps its
# users in a file and answers as the real one does (created, updated, unchanged).
FAKE_ICTQ = """\
#!{python}
import json, pathlib, sys
here = pathlib.Path(__file__).resolve().parents[2]
args = sys.argv[1:]
password = sys.stdin.read()
with open(here / "calls", "a") as calls:
    calls.write(json.dumps([args, password]) + "\\n")
assert args[0].startswith("--env-file=") and args[1:4] == ["dashboard", "user", "add"], args
assert args[5:] == ["--role", args[6], "--password-stdin", "--update"], args
name, role = args[4], args[6]
if name == "broken":
    sys.exit("ictq: no such table: dashboard_users")
state = here / "users.json"
users = json.loads(state.read_text()) if state.exists() else {{}}
old = users.get(name)
users[name] = [role, password]
state.write_text(json.dumps(users))
print("created" if old is None else "unchanged" if old == [role, password] else "updated")
"""

USERS_PLAY = """\
- name: The dashboard's users only
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Users
      ansible.builtin.include_role:
        name: ictq_worker
        tasks_from: dashboard_users
"""


def add_users(tmp_path: Path, users: list[dict[str, str]], enabled: bool = True) -> subprocess.CompletedProcess[str]:
    venv_bin = tmp_path / "venv" / "bin"
    if not venv_bin.exists():
        venv_bin.mkdir(parents=True)
        (venv_bin / "ictq").write_text(FAKE_ICTQ.format(python=sys.executable))
        (venv_bin / "ictq").chmod(0o755)
        (tmp_path / "app").mkdir()
        (tmp_path / "play.yml").write_text(USERS_PLAY)
    import pwd

    extra = {"ansible_python_interpreter": sys.executable, "ansible_become_method": "su",
             "ictq_worker_user": pwd.getpwuid(os.getuid()).pw_name, "ictq_worker_venv": str(tmp_path / "venv"),
             "ictq_worker_app_dir": str(tmp_path / "app"), "ictq_worker_dashboard_enabled": enabled,
             "ictq_worker_dashboard_users": users}
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"))
    return subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-v", "-i", "localhost,",
                           str(tmp_path / "play.yml"), "-e", json.dumps(extra)],
                          cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=280)


def changed(proc: subprocess.CompletedProcess[str]) -> int:
    recap = proc.stdout[proc.stdout.index("PLAY RECAP"):]
    return int(recap.split("changed=")[1].split()[0])


def test_the_dashboards_users_are_added_once_and_never_shown(tmp_path: Path) -> None:
    canary = f"canary-{os.getpid()}-pw"
    users = [{"name": "ops", "role": "operator", "password": canary}, {"name": "eve", "role": "viewer",
                                                                       "password": canary + "2"}]
    first = add_users(tmp_path, users)
    assert first.returncode == 0, first.stdout + first.stderr
    assert changed(first) == 1
    calls = [json.loads(line) for line in (tmp_path / "calls").read_text().splitlines()]
    assert [(args[4], args[6], password) for args, password in calls] == [
        ("ops", "operator", canary), ("eve", "viewer", canary + "2")], "the password on stdin, as it is"
    assert calls[0][0][0] == f"--env-file={tmp_path}/app/.env"

    second = add_users(tmp_path, users)
    assert second.returncode == 0, second.stdout + second.stderr
    assert changed(second) == 0, "unchanged users: no change"

    third = add_users(tmp_path, [users[0], {**users[1], "role": "operator"}])
    assert third.returncode == 0 and changed(third) == 1, "an updated user is a change"
    for proc in (first, second, third):
        assert canary not in proc.stdout + proc.stderr


def test_a_user_that_cannot_be_added_fails_the_deploy_by_name_only(tmp_path: Path) -> None:
    canary = f"canary-{os.getpid()}-pw"
    proc = add_users(tmp_path, [{"name": "ops", "role": "operator", "password": "pw"},
                                {"name": "broken", "role": "viewer", "password": canary}])
    assert proc.returncode != 0
    assert "failed for broken (exit 1: ictq: no such table: dashboard_users)" in " ".join(proc.stdout.split())
    assert canary not in proc.stdout + proc.stderr


def test_no_user_is_added_where_the_dashboard_is_off(tmp_path: Path) -> None:
    proc = add_users(tmp_path, [{"name": "ops", "role": "operator", "password": "pw"}], enabled=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not (tmp_path / "calls").exists()


# -- the wheelhouse's binary wheels against the host's Python (the dashboard's argon2 is stable-ABI) --


HOST_TAG = f"cp{sys.version_info.major}{sys.version_info.minor}"


@pytest.mark.parametrize(("wheel", "accepted"), [
    (f"psycopg_binary-3.2.1-{HOST_TAG}-{HOST_TAG}-manylinux_2_17_x86_64.whl", True),
    ("argon2_cffi_bindings-25.1.0-cp39-abi3-manylinux_2_26_x86_64.whl", True),
    (f"x-1.0-{HOST_TAG}-abi3-manylinux_2_26_x86_64.whl", True),
    ("psycopg_binary-3.2.1-cp39-cp39-manylinux_2_17_x86_64.whl", False),
    (f"x-1.0-cp{sys.version_info.major}{sys.version_info.minor + 1}-abi3-manylinux_2_26_x86_64.whl", False),
], ids=["same-version", "abi3-older", "abi3-same", "other-version", "abi3-newer"])
def test_the_role_checks_binary_wheels_against_the_hosts_python(tmp_path: Path, wheel: str, accepted: bool) -> None:
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / wheel).touch()
    proc = validate_role(tmp_path)
    assert (proc.returncode == 0) is accepted, proc.stdout + proc.stderr
    if not accepted:
        assert "TASK [ictq_worker : Check the wheelhouse against this host's Python" in proc.stdout


def _role_tasks(name: str = "main.yml") -> list[dict[str, Any]]:
    """The role's tasks in the order they run, imports expanded."""
    tasks: list[dict[str, Any]] = []
    for task in yaml.safe_load((ROLE / "tasks" / name).read_text()):
        imported = task.get("ansible.builtin.import_tasks")
        tasks += _role_tasks(imported) if imported else [task]
    return tasks


def test_the_supervisor_program_check_is_installed_before_any_program_is_checked_with_it() -> None:
    # A fresh host has no check yet: the first deploy failed on the dashboard's program this way.
    tasks = _role_tasks()
    names = [task["name"] for task in tasks]
    installed = names.index("Install the Supervisor program check")
    users = [i for i, task in enumerate(tasks)
             if "ictq-check-supervisor-program" in str(task.get("ansible.builtin.template", {}).get("validate", ""))]
    assert len(users) == 2, "the workers' programs and the dashboard's"
    assert all(i > installed for i in users), [names[i] for i in users]
    # And the dashboard's users come after migrate, its program before the handlers are flushed.
    assert names.index("Add or update the dashboard's users") > names.index("Run ictq migrate")
    assert names.index("Render the dashboard's Supervisor program (parsed by Supervisor before it is installed)") \
        < names.index("Apply the changes now")
