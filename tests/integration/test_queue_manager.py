"""``queue_manager.sh`` in both modes: with a real supervisord running the laravel-worker
program, or every program of the deploy kit found in an include directory, and without
Supervisor (one background worker and a pid file)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.app import REPO, App, wait_for
from tests.support.smtp import SmtpServer, smtp_fixture, smtp_servers_fixture, use_server  # noqa: F401

SCRIPT = REPO / "queue_manager.sh"
BIN = Path(sys.executable).parent


def manage(app: App, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = app.env(APP_DIR=str(app.root), ICTQ=str(BIN / "ictq"), STOP_TIMEOUT="20", **env)
    return subprocess.run(["bash", str(SCRIPT), *args], env=environment, capture_output=True, text=True, timeout=60)


def test_shellcheck_is_clean() -> None:
    assert shutil.which("shellcheck"), "shellcheck is not installed (make test installs it)"
    result = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_usage_errors(sqlite_app: App) -> None:
    assert manage(sqlite_app).returncode == 2
    wrong = manage(sqlite_app, "launch")
    assert wrong.returncode == 2 and "unknown command 'launch'" in wrong.stderr
    assert "Usage: queue_manager.sh COMMAND" in manage(sqlite_app, "--help").stdout
    assert manage(sqlite_app, "logs", "-n", "x").returncode == 2


def test_local_mode_start_status_stop(app: App) -> None:
    started = manage(app, "start", QUEUE_WORK_ARGS="--sleep 0.1")
    assert started.returncode == 0, started.stderr
    pid = int((app.root / "storage" / "queue-worker.pid").read_text())
    second = manage(app, "start")
    assert second.returncode == 1 and f"already running (pid {pid})" in second.stderr
    status = manage(app, "status")
    assert status.returncode == 0 and f"worker running: pid {pid}" in status.stdout
    assert "queue" in status.stdout and "pending" in status.stdout
    app.client().dispatch("test.slow", {"n": 1, "seconds": 1.5})
    wait_for(lambda: app.executions("started"), what="the job to start")
    stopped = manage(app, "stop")
    assert stopped.returncode == 0 and f"worker stopped (pid {pid})" in stopped.stdout
    assert app.executions("record") == ["1"]  # the running job was finished
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    after = manage(app, "status")
    assert after.returncode == 3 and "worker not running" in after.stdout
    assert "no worker is running" in manage(app, "stop").stdout


def test_list_and_logs(sqlite_app: App) -> None:
    sqlite_app.client().dispatch("test.record", {"n": 1}, queue="emails")
    listed = manage(sqlite_app, "list", "--queue", "emails")
    assert listed.returncode == 0 and "test.record" in listed.stdout
    assert manage(sqlite_app, "logs").returncode == 1  # no log yet: said in one line
    assert sqlite_app.ictq("work", "--queue", "emails", "--stop-when-empty").returncode == 0
    logs = manage(sqlite_app, "logs", "-n", "2")
    assert logs.returncode == 0 and len(logs.stdout.splitlines()) == 2 and "worker-stopping" in logs.stdout


def _program(app: App, name: str, queue: str, numprocs: int) -> str:
    """A program file as the deploy kit writes one (its marker line first), for ``app``."""
    env = ",".join(f'{k}="{v}"' for k, v in app.env().items() if k in ("PYTHONPATH", "ICTQ_TEST_OUT", "PATH"))
    return f"""; Managed by the ictq deploy kit (a test's copy): local edits are overwritten.
[program:{name}]
process_name=%(program_name)s_%(process_num)02d
command={BIN / "ictq"} --env-file {app.env_file} work --queue={queue} --sleep 0.1 --max-time=3600
directory={app.root}
numprocs={numprocs}
autostart=true
autorestart=true
stopasgroup=true
killasgroup=true
stopwaitsecs=30
environment={env}
stdout_logfile={app.root}/storage/logs/%(program_name)s_%(process_num)02d.out
redirect_stderr=true
"""


def _start_supervisord(app: App, programs: str) -> str:
    conf = app.root / "supervisord.conf"
    sock = app.root / "supervisor.sock"
    conf.write_text(f"""
[unix_http_server]
file={sock}
[supervisord]
logfile={app.root}/supervisord.log
pidfile={app.root}/supervisord.pid
nodaemon=false
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[supervisorctl]
serverurl=unix://{sock}
{programs}""")
    (app.root / "storage" / "logs").mkdir(parents=True, exist_ok=True)
    subprocess.run([str(BIN / "supervisord"), "-c", str(conf)], check=True)
    return f"{BIN / 'supervisorctl'} -c {conf}"


def _stop_supervisord(app: App) -> None:
    pid = int((app.root / "supervisord.pid").read_text())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)


@pytest.fixture
def two_programs(app: App) -> Iterator[tuple[str, Path]]:
    """A real supervisord running two programs of the kit from an include directory: laravel-worker
    (2 processes, queue default) and laravel-mail (1 process, queue emails); and that directory,
    which also holds a program that is not the kit's."""
    conf_dir = app.root / "conf.d"
    conf_dir.mkdir()
    (conf_dir / "laravel-worker.conf").write_text(_program(app, "laravel-worker", "default", 2))
    (conf_dir / "laravel-mail.conf").write_text(_program(app, "laravel-mail", "emails", 1))
    (conf_dir / "other.conf").write_text("[program:other]\ncommand=sleep 3600\n")
    ctl = _start_supervisord(app, f"[include]\nfiles={conf_dir}/*.conf\n")
    try:
        yield ctl, conf_dir
    finally:
        _stop_supervisord(app)


def test_supervisor_mode_drives_every_program_of_the_kit(app: App, two_programs: tuple[str, Path]) -> None:
    ctl, conf_dir = two_programs
    env = {"SUPERVISORCTL": ctl, "SUPERVISOR_CONF_DIR": str(conf_dir)}

    def status() -> subprocess.CompletedProcess[str]:
        return manage(app, "status", **env)

    def pids() -> dict[str, int]:
        lines = [line.split() for line in status().stdout.splitlines()]
        return {parts[0]: int(parts[3].rstrip(",")) for parts in lines if len(parts) > 3 and parts[2] == "pid"}

    wait_for(lambda: status().stdout.count("RUNNING") == 3, what="the three workers RUNNING")
    first = status()
    assert first.returncode == 0, first.stdout
    assert first.stdout.startswith("laravel-mail:\n"), "each program under its name"
    assert "\nlaravel-worker:\n" in first.stdout
    assert set(pids()) == {"laravel-mail:laravel-mail_00", "laravel-worker:laravel-worker_00",
                           "laravel-worker:laravel-worker_01"}, "the kit's programs, not the others"
    app.client().dispatch("test.record", {"n": 1})
    app.client().dispatch("test.record", {"n": 2}, queue="emails")
    wait_for(lambda: sorted(app.executions()) == ["1", "2"], what="a job of each program's queue")

    stopped = manage(app, "stop", **env)
    assert stopped.returncode == 0, stopped.stderr
    after = status()
    assert after.returncode == 3 and after.stdout.count("STOPPED") == 3
    assert "some laravel-mail processes are not running" in after.stdout
    assert "other" not in after.stdout

    assert manage(app, "start", **env).returncode == 0
    wait_for(lambda: status().stdout.count("RUNNING") == 3, what="the three workers RUNNING again")
    before = pids()
    assert manage(app, "restart", **env).returncode == 0
    wait_for(lambda: status().stdout.count("RUNNING") == 3, what="the three workers RUNNING after restart")
    after_restart = pids()
    assert set(after_restart) == set(before)
    assert not set(after_restart.values()) & set(before.values()), "every program restarted"

    only = manage(app, "status", SUPERVISORCTL=ctl, SUPERVISOR_CONF_DIR=str(conf_dir),
                  SUPERVISOR_PROGRAMS="laravel-worker")
    assert only.returncode == 0 and "laravel-mail" not in only.stdout
    bad = manage(app, "status", SUPERVISOR_PROGRAMS="x;y")
    assert bad.returncode == 2 and bad.stderr.strip() == "queue_manager: 'x;y' is not a Supervisor program name"


@pytest.fixture
def supervisord(app: App) -> Iterator[str]:
    """A real supervisord with the laravel-worker program (2 processes) on ``app``."""
    env = ",".join(f'{k}="{v}"' for k, v in app.env().items() if k in ("PYTHONPATH", "ICTQ_TEST_OUT", "PATH"))
    ctl = _start_supervisord(app, f"""[program:laravel-worker]
process_name=%(program_name)s_%(process_num)02d
command={BIN / "ictq"} --env-file {app.env_file} work --sleep 0.1 --max-time=3600
directory={app.root}
numprocs=2
autostart=true
autorestart=true
stopasgroup=true
killasgroup=true
stopwaitsecs=30
environment={env}
stdout_logfile={app.root}/storage/logs/worker_%(process_num)02d.out
stderr_logfile={app.root}/storage/logs/worker_%(process_num)02d.err
""")
    try:
        yield ctl
    finally:
        _stop_supervisord(app)


def test_supervisor_mode_drives_the_laravel_worker_group(app: App, supervisord: str) -> None:
    def status() -> subprocess.CompletedProcess[str]:
        return manage(app, "status", SUPERVISORCTL=supervisord)

    wait_for(lambda: status().stdout.count("RUNNING") == 2, what="both workers RUNNING")
    first = status()
    assert first.returncode == 0
    assert "laravel-worker:laravel-worker_00" in first.stdout and "laravel-worker:laravel-worker_01" in first.stdout
    app.client().dispatch("test.record", {"n": 1})
    wait_for(lambda: app.executions() == ["1"], what="a job run by the supervised workers")

    stopped = manage(app, "stop", SUPERVISORCTL=supervisord)
    assert stopped.returncode == 0, stopped.stderr
    after = status()
    assert after.returncode == 3 and after.stdout.count("STOPPED") == 2
    assert "not running" in after.stdout

    assert manage(app, "start", SUPERVISORCTL=supervisord).returncode == 0
    wait_for(lambda: status().stdout.count("RUNNING") == 2, what="both workers RUNNING again")
    assert manage(app, "restart", SUPERVISORCTL=supervisord).returncode == 0
    wait_for(lambda: status().stdout.count("RUNNING") == 2, what="both workers RUNNING after restart")
    app.client().dispatch("test.record", {"n": 2})
    wait_for(lambda: app.executions() == ["1", "2"], what="a job after restart")
    assert manage(app, "stop", SUPERVISORCTL=supervisord).returncode == 0


def test_a_configured_program_with_supervisord_down_is_reported_not_replaced(sqlite_app: App) -> None:
    conf = sqlite_app.root / "supervisord.conf"
    conf.write_text(f"[supervisorctl]\nserverurl=unix://{sqlite_app.root}/absent.sock\n")
    program = sqlite_app.root / "laravel-worker.conf"
    program.write_text("[program:laravel-worker]\ncommand=true\n")
    env = {"SUPERVISORCTL": f"{BIN / 'supervisorctl'} -c {conf}", "SUPERVISOR_CONF": str(program)}
    status = manage(sqlite_app, "status", **env)
    assert status.returncode == 3 and "supervisord is not running" in status.stdout
    assert manage(sqlite_app, "start", **env).returncode != 0
    assert not (sqlite_app.root / "storage" / "queue-worker.pid").exists()


def test_test_sends_both_notifications_through_the_queue(sqlite_app: App, smtp: SmtpServer) -> None:
    use_server(sqlite_app, smtp)
    bad = manage(sqlite_app, "test", "not-an-address")
    assert bad.returncode == 2 and "not a valid e-mail address" in bad.stderr
    assert manage(sqlite_app, "test").returncode == 2
    assert manage(sqlite_app, "start", QUEUE_WORK_ARGS="--sleep 0.1").returncode == 0
    try:
        sent = manage(sqlite_app, "test", "ops@example.test", TEST_EMAIL_WAIT="30")
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert sent.stdout.count("queued mail.") == 2
    finally:
        assert manage(sqlite_app, "stop").returncode == 0
    received = smtp.wait_for(2)
    assert {tuple(r.rcpt_tos) for r in received} == {("ops@example.test",)}


def test_ictq_is_found_on_the_path_when_not_named(sqlite_app: App) -> None:
    environment = sqlite_app.env(APP_DIR=str(sqlite_app.root), PATH=f"{BIN}:/usr/bin:/bin")
    result = subprocess.run(["bash", str(SCRIPT), "list"], env=environment, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("id")
