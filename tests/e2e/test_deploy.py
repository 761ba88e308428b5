"""``ansible-playbook -i inventory playbooks/deploy.yml`` on two real hosts over SSH.

The hosts are Debian chroots with their own sshd (tests/support/hosts.py), reached as a
non-root deploy user who becomes root through sudo; they share one fresh PostgreSQL database
on 127.0.0.1. Each runs two worker programs under one Supervisor: ictq's, and the PHP workers
of the Laravel application of the test suite (tests/laravel_app), which the deploy ships,
installs PHP for and migrates. The first host also runs the dashboard (`ictq dashboard`, one
operator). Everything is started here and torn down here. The tests run in file order on one
deployment: first deploy and idempotence, then the state of each host (pytest-testinfra over
SSH), the dashboard, jobs of both kinds, secrets, refused configurations, a new release (ictq and
the Laravel app) that restarts both programs and the dashboard, and last the dashboard disabled.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest
import testinfra  # type: ignore[import-untyped]

from tests.e2e.deployment import (
    APP_DIR,
    BIN,
    DASHBOARD_LISTEN,
    DASHBOARD_PROGRAM,
    DASHBOARD_USER,
    NUMPROCS,
    PHP_NUMPROCS,
    PHP_PROGRAM,
    PHP_QUEUE,
    PROGRAM,
    REPO,
    SLEEP,
    VENV,
    Deployment,
    Run,
)
from tests.support.app import App, wait_for
from tests.support.databases import fresh_database
from tests.support.hosts import HostFleet, TestHost

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]
USER = "ictq"


@dataclass
class Deployed:
    deployment: Deployment
    fleet: HostFleet
    hosts: list[TestHost]
    app: App
    first: Run
    second: Run
    pids_after_first: dict[str, dict[str, int]]
    pids_after_second: dict[str, dict[str, int]]
    php_pids_after_first: dict[str, dict[str, int]]
    php_pids_after_second: dict[str, dict[str, int]]
    dashboard_pid_after_first: int
    dashboard_pid_after_second: int


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    workdir = tmp_path_factory.mktemp("deploy")
    with ExitStack() as stack:
        fleet = stack.enter_context(HostFleet())
        hosts = fleet.start(2)
        database = stack.enter_context(fresh_database("pgsql", workdir))
        app = App(workdir, "pgsql", database.env)
        stack.callback(app.stop_all)
        deployment = Deployment(fleet, hosts, database.env, workdir, php=True, dashboard_host=hosts[0])
        first = deployment.playbook("-v", "--diff", timeout=900)  # apt and pip on fresh hosts: minutes when busy
        assert first.returncode == 0, first.describe()
        pids_first, php_pids_first = deployment.pids(), deployment.pids(PHP_PROGRAM)
        dashboard_first = deployment.dashboard_pid()
        second = deployment.playbook("-v", "--diff")
        assert second.returncode == 0, second.describe()
        sys.stderr.write(f"\ntest hosts: {fleet.timings}; deploy: first {first.seconds:.0f}s, "
                         f"second {second.seconds:.0f}s\n")
        yield Deployed(deployment, fleet, hosts, app, first, second, pids_first, deployment.pids(),
                       php_pids_first, deployment.pids(PHP_PROGRAM), dashboard_first, deployment.dashboard_pid())


def infra(deployed: Deployed, host: TestHost) -> Any:
    """A testinfra host over SSH, as the deploy user with sudo."""
    return testinfra.get_host(f"ssh://{host.name}", ssh_config=str(deployed.fleet.ssh_config), sudo=True)


def dispatch(deployed: Deployed, numbers: range) -> None:
    for n in numbers:
        result = deployed.app.ictq("dispatch", "e2e.record", "--data", json.dumps({"n": n}))
        assert result.returncode == 0, result.stderr


def wait_for_records(deployed: Deployed, numbers: range, timeout: float = 60) -> list[list[str]]:
    wanted = {str(n) for n in numbers}

    def done() -> list[list[str]] | None:
        records = [r for r in deployed.deployment.records() if r[0] in wanted]
        return records if {r[0] for r in records} == wanted else None

    records: list[list[str]] = wait_for(done, timeout=timeout, interval=1, what=f"jobs {min(numbers)}..")
    return records


def running_pids(deployed: Deployed, program: str = PROGRAM, numprocs: int = NUMPROCS) -> dict[str, dict[str, int]]:
    pids = deployed.deployment.pids(program)
    for host in deployed.hosts:
        states = deployed.deployment.workers(host, program)
        assert len(states) == numprocs, f"{host.name}: {states}"
        assert all(state == "RUNNING" for state, _ in states.values()), f"{host.name}: {states}"
    return pids


def dispatch_php(deployed: Deployed, tag: str, count: int) -> list[str]:
    """``php artisan app:dispatch ok`` on the first host: Record jobs on the PHP program's queue."""
    result = deployed.deployment.artisan(deployed.hosts[0], "app:dispatch", "ok", f"--count={count}",
                                         f"--queue={PHP_QUEUE}", f"--tag={tag}")
    assert result.returncode == 0, result.stdout + result.stderr
    return [f"{tag}-{i}" for i in range(1, count + 1)]


def wait_for_php_jobs(deployed: Deployed, tags: list[str], timeout: float = 90) -> dict[str, list[str]]:
    """Until every tag ran (on some host); returns host -> the tags it ran, of these."""
    wanted = set(tags)

    def done() -> dict[str, list[str]] | None:
        ran = {host: [t for t in found if t in wanted] for host, found in deployed.deployment.php_ran().items()}
        return ran if {t for found in ran.values() for t in found} == wanted else None

    ran: dict[str, list[str]] = wait_for(done, timeout=timeout, interval=1, what=f"PHP jobs {tags[0]}..")
    return ran


# --------------------------------------------------------------------------------------------


def test_first_deploy_changes_the_hosts_and_the_second_changes_nothing(deployed: Deployed) -> None:
    first, second = deployed.first.recap, deployed.second.recap
    assert set(first) == {"localhost", "worker1", "worker2"}, deployed.first.describe()
    for name in ("worker1", "worker2"):
        assert first[name]["changed"] > 0
    for name, counts in second.items():
        assert counts["changed"] == 0, f"{name} changed on the second run:\n{deployed.second.describe()}"
        assert counts["failed"] == counts["unreachable"] == 0
    expected = {f"{PROGRAM}:{PROGRAM}_{i:02d}" for i in range(NUMPROCS)}
    for host in deployed.hosts:
        assert set(deployed.pids_after_first[host.name]) == expected
        assert all(deployed.pids_after_first[host.name].values())
    assert deployed.pids_after_second == deployed.pids_after_first
    php_expected = {f"{PHP_PROGRAM}:{PHP_PROGRAM}_{i:02d}" for i in range(PHP_NUMPROCS)}
    for host in deployed.hosts:
        assert set(deployed.php_pids_after_first[host.name]) == php_expected
        assert all(deployed.php_pids_after_first[host.name].values())
    assert deployed.php_pids_after_second == deployed.php_pids_after_first
    assert deployed.dashboard_pid_after_first, "the dashboard runs on its host"
    assert deployed.dashboard_pid_after_second == deployed.dashboard_pid_after_first
    # The wheelhouse was built on the control node, where the inventory said.
    assert list(deployed.deployment.wheelhouse.glob("ictq-*.whl"))


@pytest.mark.parametrize("index", [0, 1], ids=["worker1", "worker2"])
def test_host_state(deployed: Deployed, index: int) -> None:
    host = deployed.hosts[index]
    remote = infra(deployed, host)

    user = remote.user(USER)
    assert user.exists and user.uid != 0 and user.group == USER
    assert user.shell == "/usr/sbin/nologin"

    env = remote.file(f"{APP_DIR}/.env")
    assert env.is_file and env.mode == 0o640 and env.user == USER and env.group == USER
    assert "DB_CONNECTION='pgsql'" in env.content_string
    assert f"DB_DATABASE='{deployed.deployment.db_env['DB_DATABASE']}'" in env.content_string

    for i in range(NUMPROCS):
        program = remote.supervisor(f"{PROGRAM}:{PROGRAM}_{i:02d}")
        assert program.is_running, program.status
        assert remote.process.get(pid=program.pid).user == USER
        # One Supervisor log per process: no two processes write one rotated file.
        assert remote.file(f"/var/log/supervisor/{PROGRAM}_{i:02d}.log").is_file

    conf = remote.file(f"/etc/supervisor/conf.d/{PROGRAM}.conf")
    assert conf.user == "root" and conf.mode == 0o644
    assert conf.content_string == _supervisor_config_by_hand()

    check = remote.run("timeout 60 logrotate --debug /etc/logrotate.d/ictq")
    assert check.rc == 0 and "error" not in check.stderr.lower(), check.stderr

    size = remote.run(f"timeout 60 runuser -u {USER} -- {VENV}/bin/ictq --env-file={APP_DIR}/.env size --json")
    assert size.rc == 0, size.stderr
    assert isinstance(json.loads(size.stdout), (dict, list))

    log = remote.file(f"{APP_DIR}/storage/logs/queue.log")  # where the seed says
    assert log.is_file and log.user == USER
    for i in range(NUMPROCS):
        assert f"worker={PROGRAM}_{i:02d}" in log.content_string

    manager = remote.file(f"{APP_DIR}/queue_manager.sh")
    assert manager.is_file and manager.mode == 0o750
    shipped = deployed.deployment.source / "queue_manager.sh"
    assert manager.sha256sum == hashlib.sha256(shipped.read_bytes()).hexdigest()
    status = remote.run(f"cd {APP_DIR} && timeout 60 ./queue_manager.sh status")
    assert status.rc == 0, status.stdout + status.stderr
    # Both programs, found by the kit's marker in their files.
    assert {f"{PHP_PROGRAM}:", f"{PROGRAM}:"} <= set(status.stdout.splitlines()), status.stdout


@pytest.mark.parametrize("index", [0, 1], ids=["worker1", "worker2"])
def test_host_runs_the_laravel_app_under_its_php_program(deployed: Deployed, index: int) -> None:
    host = deployed.hosts[index]
    remote = infra(deployed, host)
    for package in ("php-cli", "php-laravel-framework", "php-pgsql", "php-mbstring", "php-xml"):
        assert remote.package(package).is_installed, package

    for i in range(PHP_NUMPROCS):
        program = remote.supervisor(f"{PHP_PROGRAM}:{PHP_PROGRAM}_{i:02d}")
        assert program.is_running, program.status
        process = remote.process.get(pid=program.pid)
        assert process.user == USER and "artisan queue:work database" in process.args, process.args
    conf = remote.file(f"/etc/supervisor/conf.d/{PHP_PROGRAM}.conf")
    assert conf.user == "root" and conf.mode == 0o644
    assert conf.content_string == _supervisor_config_by_hand(
        "--kind", "php", "--program", PHP_PROGRAM, "--queue", PHP_QUEUE, "--numprocs", str(PHP_NUMPROCS))

    # The app as in the repository, less what belongs to the host; the .env is the deploy's, shared.
    artisan = remote.file(f"{APP_DIR}/artisan")
    shipped = deployed.deployment.laravel_app / "artisan"
    assert artisan.sha256sum == hashlib.sha256(shipped.read_bytes()).hexdigest()
    assert artisan.user == "root" and artisan.group == USER and artisan.mode == 0o640
    env = remote.file(f"{APP_DIR}/.env").content_string
    assert "QUEUE_CONNECTION=database" in env and "CACHE_DRIVER='file'" in env
    assert not remote.file(f"{APP_DIR}/storage/logs/.gitignore").exists, "storage/ contents are not shipped"
    for writable in ("storage/app", "storage/framework/cache/data", "storage/framework/views",
                     "storage/framework/sessions", "bootstrap/cache"):
        directory = remote.file(f"{APP_DIR}/{writable}")
        assert directory.is_directory and directory.user == USER, writable
    migrated = remote.run(f"cd {APP_DIR} && runuser -u {USER} -- php artisan migrate:status")
    assert migrated.rc == 0 and "create_jobs_table" in migrated.stdout, migrated.stdout + migrated.stderr
    assert "| No " not in migrated.stdout, migrated.stdout


def test_the_dashboard_runs_on_its_host(deployed: Deployed) -> None:
    deployment = deployed.deployment
    host = deployed.hosts[0]
    remote = infra(deployed, host)

    program = remote.supervisor(DASHBOARD_PROGRAM)
    assert program.is_running, program.status
    process = remote.process.get(pid=program.pid)
    assert process.user == USER and f"dashboard --listen={DASHBOARD_LISTEN}" in process.args, process.args
    conf = remote.file(f"/etc/supervisor/conf.d/{DASHBOARD_PROGRAM}.conf")
    assert conf.user == "root" and conf.mode == 0o644
    assert "autorestart=true" in conf.content_string and "stopsignal=TERM" in conf.content_string
    assert remote.file(f"/var/log/supervisor/{DASHBOARD_PROGRAM}.log").is_file

    env = remote.file(f"{APP_DIR}/.env")
    assert env.mode == 0o640 and env.user == USER and env.group == USER
    assert f"ICTQ_DASHBOARD_KEY='{deployment.canary_dashboard_key}'" in env.content_string

    # On the host, over loopback, as a probe and as a script would.
    assert deployment.http_status(host, "/healthz") == 200
    assert deployment.http_status(host, "/api/overview") == 401
    assert deployment.http_status(host, "/api/overview", DASHBOARD_USER, deployment.canary_dashboard_password) == 200
    assert deployment.http_status(host, "/api/overview", DASHBOARD_USER, "not-the-password") == 401

    users = remote.run(f"timeout 60 runuser -u {USER} -- {VENV}/bin/ictq --env-file={APP_DIR}/.env "
                       "dashboard user list --json")
    assert users.rc == 0, users.stderr
    assert [(u["name"], u["role"]) for u in json.loads(users.stdout)] == [(DASHBOARD_USER, "operator")]

    # Not a worker program: queue_manager.sh drives the workers only.
    status = remote.run(f"cd {APP_DIR} && timeout 60 ./queue_manager.sh status")
    assert f"{DASHBOARD_PROGRAM}:" not in status.stdout.splitlines(), status.stdout


def test_the_dashboard_runs_only_where_it_is_enabled(deployed: Deployed) -> None:
    host = deployed.hosts[1]
    remote = infra(deployed, host)
    assert not remote.file(f"/etc/supervisor/conf.d/{DASHBOARD_PROGRAM}.conf").exists
    assert "ICTQ_DASHBOARD_KEY" not in remote.file(f"{APP_DIR}/.env").content_string
    status = remote.run(f"supervisorctl status {DASHBOARD_PROGRAM}")
    assert "no such process" in (status.stdout + status.stderr).lower(), status.stdout + status.stderr
    # (Its loopback is the first host's too: test hosts share the machine's network, so no HTTP check here.)


def _supervisor_config_by_hand(*extra: str) -> str:
    """What `ictq supervisor-config` prints for the role's settings: the same template."""
    args = ["--app-dir", APP_DIR, "--venv", VENV, "--user", USER, "--numprocs", str(NUMPROCS),
            "--sleep", str(SLEEP), "--retry-after", "90", *extra]
    proc = subprocess.run([sys.executable, "-m", "ictq", "supervisor-config", *args], capture_output=True,
                          text=True, check=False, cwd="/")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_jobs_dispatched_from_the_control_node_run_on_the_hosts(deployed: Deployed) -> None:
    numbers = range(1, 21)
    dispatch(deployed, numbers)
    records = wait_for_records(deployed, numbers)
    assert sorted(int(r[0]) for r in records) == list(numbers), "each job runs exactly once"
    pids = deployed.deployment.pids()
    version = deployed.deployment.version
    for n, host, pid, module_version, dist_version in records:
        assert int(pid) in pids[host].values(), f"job {n} ran in {pid}, not a worker of {host}"
        assert module_version == dist_version == version


def test_php_jobs_dispatched_with_artisan_run_under_the_php_program(deployed: Deployed) -> None:
    tags = dispatch_php(deployed, "first", 10)
    ran = wait_for_php_jobs(deployed, tags)
    assert sorted(t for found in ran.values() for t in found) == sorted(tags), "each job runs exactly once"
    # Run by the PHP program's processes: Laravel's worker logs each job to its Supervisor log.
    def processed() -> int | None:
        count = 0
        for host in deployed.hosts:
            log = deployed.deployment.sudo(host, f"cat /var/log/supervisor/{PHP_PROGRAM}_*.log").stdout
            count += sum(1 for line in log.splitlines() if "Processed:" in line and "App\\Jobs\\Record" in line)
        return count if count == len(tags) else None

    wait_for(processed, timeout=60, interval=1, what="the PHP program's log of each job")
    for host in deployed.hosts:
        ictq_log = deployed.deployment.sudo(host, f"cat {APP_DIR}/storage/logs/queue.log").stdout
        assert "App\\Jobs\\Record" not in ictq_log, "an ictq worker took a PHP job"
    # Nothing of Laravel's failed, and the ictq program kept to its own queue.
    failed = deployed.app.ictq("failed", "--json")
    assert failed.returncode == 0 and json.loads(failed.stdout) == [], failed.stdout


def test_fab_queue_tasks_drive_both_programs(deployed: Deployed) -> None:
    # The program list comes from the deploy's own inventory (ictq_worker_programs).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FABRIC_", "INVOKE_"))}
    env["FABRIC_QUEUE_INVENTORY"] = str(deployed.deployment.inventory)

    def fab(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "fab"), *args], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=240, check=False)

    status = fab("queue.status")
    assert status.returncode == 0, status.stdout + status.stderr
    for program in (PROGRAM, PHP_PROGRAM):
        assert status.stdout.count(f"{program}:{program}_00 ") == len(deployed.hosts), status.stdout
    assert status.stdout.count(f"workers: all {NUMPROCS + PHP_NUMPROCS} running") == len(deployed.hosts)
    before, php_before = running_pids(deployed), running_pids(deployed, PHP_PROGRAM, PHP_NUMPROCS)
    restart = fab("queue.restart")
    assert restart.returncode == 0, restart.stdout + restart.stderr
    after, php_after = running_pids(deployed), running_pids(deployed, PHP_PROGRAM, PHP_NUMPROCS)
    for host in deployed.hosts:
        assert not set(after[host.name].values()) & set(before[host.name].values())
        assert not set(php_after[host.name].values()) & set(php_before[host.name].values())


def test_logs_survive_rotation(deployed: Deployed) -> None:
    for host in deployed.hosts:
        rotate = deployed.deployment.sudo(host, "logrotate --force /etc/logrotate.d/ictq")
        assert rotate.returncode == 0, rotate.stderr
    numbers = range(101, 111)
    dispatch(deployed, numbers)
    wait_for_records(deployed, numbers)
    for host in deployed.hosts:
        rotated = deployed.deployment.sudo(host, f"ls {APP_DIR}/storage/logs/")
        assert "queue.log.1" in rotated.stdout, rotated.stdout
        after = deployed.deployment.sudo(host, f"cat {APP_DIR}/storage/logs/queue.log").stdout
        assert after.strip(), f"{host.name}: nothing logged after rotation"


def test_vault_secrets_are_never_shown(deployed: Deployed) -> None:
    deployment = deployed.deployment
    canaries = (deployment.canary_db, deployment.canary_mail, deployment.canary_dashboard_key,
                deployment.canary_dashboard_password)
    for host in deployed.hosts:
        env = deployment.sudo(host, f"cat {APP_DIR}/.env").stdout
        assert deployment.canary_db in env and deployment.canary_mail in env, "the canaries did reach the hosts"
        assert (deployment.canary_dashboard_key in env) is (host == deployment.dashboard_host)
        for canary in canaries:
            found = deployment.sudo(host, f"grep -rlF -- {shlex.quote(canary)} /var/log {APP_DIR}/storage")
            assert found.returncode == 1, f"{host.name}: canary in {found.stdout}{found.stderr}"
    for run in deployment.runs:
        assert "-v" in run.args
        for canary in canaries:
            assert canary not in run.output, f"canary in the output of ansible-playbook {' '.join(run.args)}"


@pytest.mark.parametrize(("extra", "message"), [
    (["-e", "ictq_worker_timeout=90"], "lower ictq_worker_timeout or raise ictq_worker_retry_after"),
    (["-e", "ictq_worker_stopwaitsecs=60"], "raise ictq_worker_stopwaitsecs"),
    (["-e", "ictq_worker_numprocs=0"], "Need numprocs >= 1"),
    (["--missing-secret"], "a secret is missing: ictq_worker_db_password"),
    (["-e", "ictq_worker_db_connection=sqlite"], 'concurrent workers fail with "database is locked"'),
    (["-e", "ictq_worker_dashboard_enabled=true", "-e", "ictq_worker_dashboard_key=too-short-a-key"],
     "ictq_worker_dashboard_key (ICTQ_DASHBOARD_KEY) is missing or shorter than 32 characters"),
], ids=["timeout-not-below-retry-after", "stopwaitsecs-not-above-timeout", "numprocs-0", "missing-secret",
        "php-on-sqlite", "dashboard-key-too-short"])
def test_bad_variables_fail_fast(deployed: Deployed, extra: list[str], message: str) -> None:
    deployment = deployed.deployment
    before = deployment.pids()
    if extra == ["--missing-secret"]:
        run = deployment.playbook("-v", inventory=deployment.inventory_without_secrets)
    else:
        run = deployment.playbook("-v", *extra)
    assert run.returncode != 0, run.describe()
    assert message in " ".join(run.output.split()), run.describe()
    for name in ("worker1", "worker2"):
        assert run.recap[name]["changed"] == 0 and run.recap[name]["failed"] == 1, run.describe()
    assert deployment.pids() == before
    assert "too-short-a-key" not in run.output.replace("ictq_worker_dashboard_key=too-short-a-key", "")


def test_a_new_release_restarts_both_programs_on_the_new_code(deployed: Deployed) -> None:
    deployment = deployed.deployment
    before = running_pids(deployed)
    php_before = running_pids(deployed, PHP_PROGRAM, PHP_NUMPROCS)
    dashboard_before = deployment.dashboard_pid()
    # Jobs of both kinds waiting or running while the release goes out: none may be lost.
    queued = dispatch_php(deployed, "during", 10)
    dispatch(deployed, range(301, 311))
    new_version = deployment.bump_version(f"e2e{int(time.time())}")
    (deployment.laravel_app / "RELEASE").write_text(new_version + "\n")  # a new release of the Laravel app too
    run = deployment.playbook("-v")
    assert run.returncode == 0, run.describe()
    for name in ("worker1", "worker2"):
        assert run.recap[name]["changed"] > 0

    def restarted(program: str, numprocs: int, old: dict[str, dict[str, int]]) -> dict[str, dict[str, int]] | None:
        pids = deployment.pids(program)
        for host in deployed.hosts:
            states = deployment.workers(host, program)
            if len(states) != numprocs or any(state != "RUNNING" for state, _ in states.values()):
                return None
            if set(pids[host.name].values()) & set(old[host.name].values()):
                return None
        return pids

    after = wait_for(lambda: restarted(PROGRAM, NUMPROCS, before), timeout=90, interval=1,
                     what="every ictq worker restarted with a new PID")
    php_after = wait_for(lambda: restarted(PHP_PROGRAM, PHP_NUMPROCS, php_before), timeout=90, interval=1,
                         what="every PHP worker restarted with a new PID")
    for host in deployed.hosts:
        release = deployment.sudo(host, f"cat {APP_DIR}/RELEASE").stdout.strip()
        assert release == new_version, f"{host.name}: the Laravel app's new release is not there"
    queued += dispatch_php(deployed, "after", 10)
    ran = wait_for_php_jobs(deployed, queued)
    assert sorted(t for found in ran.values() for t in found) == sorted(queued), "no PHP job lost or run twice"
    wait_for_records(deployed, range(301, 311))
    numbers = range(201, 221)
    dispatch(deployed, numbers)
    for n, host, pid, module_version, dist_version in wait_for_records(deployed, numbers):
        assert module_version == dist_version == new_version, f"job {n} ran on the old code"
        assert int(pid) in after[host].values()

    # The dashboard runs the new code too: restarted by the deploy, and answering.
    dashboard_after = deployment.dashboard_pid()
    assert dashboard_after and dashboard_after != dashboard_before
    assert deployment.http_status(deployment.hosts[0], "/healthz") == 200

    again = deployment.playbook("-v")
    assert again.returncode == 0, again.describe()
    assert all(counts["changed"] == 0 for counts in again.recap.values()), again.describe()
    assert deployment.pids() == after
    assert deployment.pids(PHP_PROGRAM) == php_after
    assert deployment.dashboard_pid() == dashboard_after


def test_disabling_the_dashboard_stops_and_removes_it(deployed: Deployed) -> None:
    """Also (sharing this run): the deploy asks each host in one command whether it holds the
    wheels and the Laravel app as shipped, and copies them only when not; a wheel and an app
    file changed on the second host, a mode changed and a directory removed must be repaired."""
    deployment = deployed.deployment
    host, other = deployed.hosts
    (wheel,) = [path for path in deployment.wheelhouse.glob("ictq-*.whl")]
    remote_wheel = f"/opt/ictq/wheelhouse/{wheel.name}"
    tampered = deployment.sudo(other, f"echo tampered >> {remote_wheel} && echo tampered >> {APP_DIR}/artisan && "
                                      f"chmod 0666 {APP_DIR}/routes/console.php && rm -r {APP_DIR}/resources")
    assert tampered.returncode == 0, tampered.stderr
    run = deployment.playbook("-v", "-e", "ictq_worker_dashboard_enabled=false")
    assert run.returncode == 0, run.describe()
    repaired = infra(deployed, other)
    assert repaired.file(remote_wheel).sha256sum == hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert repaired.file(f"{APP_DIR}/artisan").sha256sum == hashlib.sha256(
        (deployment.laravel_app / "artisan").read_bytes()).hexdigest()
    assert repaired.file(f"{APP_DIR}/routes/console.php").mode == 0o640
    for path in (deployment.laravel_app / "resources").rglob("*"):
        assert repaired.file(f"{APP_DIR}/{path.relative_to(deployment.laravel_app)}").exists, path
    remote = infra(deployed, host)
    assert not remote.file(f"/etc/supervisor/conf.d/{DASHBOARD_PROGRAM}.conf").exists
    status = remote.run(f"supervisorctl status {DASHBOARD_PROGRAM}")
    assert "no such process" in (status.stdout + status.stderr).lower(), status.stdout + status.stderr
    assert deployment.http_status(host, "/healthz") == 0, "nothing listens any more"
    env = remote.file(f"{APP_DIR}/.env")
    assert "ICTQ_DASHBOARD_KEY" not in env.content_string and env.mode == 0o640
    running_pids(deployed)  # the workers are all there
    running_pids(deployed, PHP_PROGRAM, PHP_NUMPROCS)
