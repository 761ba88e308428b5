"""Driving ``ansible-playbook -i INVENTORY playbooks/deploy.yml`` against the test hosts.

A :class:`Deployment` owns a snapshot of the ictq source (so that edits made in the work tree
while the tests run do not change what is deployed), an inventory with its ``group_vars`` and
a vault made for the run, holding canary secrets that must never be shown. With ``php=True``
the hosts also run the Laravel application of the test suite (``tests/laravel_app``, shipped
by the deploy from a snapshot of its own) under a PHP program beside the ictq one. With
``dashboard_host``, that host also runs ``ictq dashboard`` (enabled in its ``host_vars``), with
one operator; its key and the operator's password are canaries of the vault too.
"""

from __future__ import annotations

import base64
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from tests.support.hosts import DEPLOY_USER, HostFleet, TestHost

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
APP_DIR = "/srv/ict"
VENV = "/opt/ictq/venv"
PROGRAM = "laravel-worker"
NUMPROCS = 2
SLEEP = 1
#: The PHP program of a deployment with ``php=True``: Laravel's queue:work on its own queue.
PHP_PROGRAM = "laravel-php"
PHP_NUMPROCS = 1
PHP_QUEUE = "laravel"
LARAVEL_APP = REPO / "tests" / "laravel_app"
#: The dashboard of a deployment with ``dashboard_host``: its Supervisor program, address and user.
DASHBOARD_PROGRAM = "ictq-dashboard"
#: Not the default 127.0.0.1:8089: the test hosts share the machine's loopback, where a developer's
#: own `ictq dashboard` may hold the default port.
DASHBOARD_LISTEN = "127.0.0.1:18089"
DASHBOARD_URL = f"http://{DASHBOARD_LISTEN}"
DASHBOARD_USER = "e2e-operator"
SOURCE_FILES = ("pyproject.toml", "ictq", "README.md", "LICENSE", "queue_manager.sh")
_RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


@dataclass(frozen=True)
class Run:
    """One ansible-playbook run."""

    args: tuple[str, ...]
    returncode: int
    output: str
    seconds: float

    @property
    def recap(self) -> dict[str, dict[str, int]]:
        """PLAY RECAP per host: ok, changed, unreachable, failed."""
        return {
            m[1]: {"ok": int(m[2]), "changed": int(m[3]), "unreachable": int(m[4]), "failed": int(m[5])}
            for m in _RECAP.finditer(self.output)
        }

    def describe(self) -> str:
        failed = "\n".join(line for line in self.output.splitlines() if line.startswith(("fatal: ", "failed: ")))
        return (f"ansible-playbook {' '.join(self.args)} exited {self.returncode}:\n{self.output[-6000:]}"
                + (f"\n\nfailed tasks:\n{failed[-4000:]}" if failed else ""))


class Deployment:
    """The inventory, vault and source snapshot of one test run."""

    def __init__(self, fleet: HostFleet, hosts: list[TestHost], db_env: dict[str, str], workdir: Path,
                 php: bool = False, dashboard_host: TestHost | None = None) -> None:
        self.fleet = fleet
        self.hosts = hosts
        self.db_env = db_env
        self.workdir = workdir
        self.php = php
        self.dashboard_host = dashboard_host
        self.source = workdir / "src"
        self.laravel_app = workdir / "laravel_app"
        self.wheelhouse = workdir / "wheelhouse"
        self.canary_db = f"canary-db-{uuid.uuid4().hex}"
        self.canary_mail = f"canary-mail-{uuid.uuid4().hex}"
        self.canary_dashboard_key = f"canary-dashboard-key-{uuid.uuid4().hex}"  # 53 characters
        self.canary_dashboard_password = f"canary-dashboard-pw-{uuid.uuid4().hex}"
        self.vault_password_file = workdir / "vault-password"
        self.vault_password_file.write_text(uuid.uuid4().hex + "\n")
        self.vault_password_file.chmod(0o600)
        self._snapshot_source()
        self.inventory = self._write_inventory(workdir / "inventory", with_secrets=True)
        self.inventory_without_secrets = self._write_inventory(workdir / "inventory-no-secrets", with_secrets=False)
        self.runs: list[Run] = []

    # -- source -------------------------------------------------------------------------------

    def _snapshot_source(self) -> None:
        if self.php:
            shutil.copytree(LARAVEL_APP, self.laravel_app, ignore=shutil.ignore_patterns(".env"))
        self.source.mkdir()
        for name in SOURCE_FILES:
            path = REPO / name
            if path.is_dir():
                shutil.copytree(path, self.source / name, ignore=shutil.ignore_patterns("__pycache__"))
            elif path.is_file():
                shutil.copy2(path, self.source / name)

    @property
    def version(self) -> str:
        match = re.search(r'^version\s*=\s*"([^"]+)"', (self.source / "pyproject.toml").read_text(), re.M)
        assert match, "no version in pyproject.toml"
        return match[1]

    def bump_version(self, local: str) -> str:
        """Give the snapshot a new version (``X+local``) in pyproject.toml and ictq.__version__."""
        old = self.version
        new = f"{old.split('+')[0]}+{local}"
        for path, pattern in ((self.source / "pyproject.toml", r'^version\s*=\s*"[^"]+"'),
                              (self.source / "ictq" / "__init__.py", r'^__version__\s*=\s*"[^"]+"')):
            text, count = re.subn(pattern, lambda m: m[0].replace(old, new), path.read_text(), flags=re.M)
            assert count == 1, f"no version line in {path}"
            path.write_text(text)
        return new

    # -- inventory and vault --------------------------------------------------------------------

    def _write_inventory(self, directory: Path, with_secrets: bool) -> Path:
        (directory / "group_vars" / "workers").mkdir(parents=True)
        ssh_args = (f"-o UserKnownHostsFile={self.fleet.known_hosts} -o StrictHostKeyChecking=yes "
                    "-o IdentitiesOnly=yes -o ConnectTimeout=10")
        lines = ["[workers]"] + [f"{h.name} ansible_host={h.address}" for h in self.hosts] + [
            "", "[workers:vars]", f"ansible_user={DEPLOY_USER}",
            f"ansible_ssh_private_key_file={self.fleet.identity}", f"ansible_ssh_common_args='{ssh_args}'", "",
        ]
        (directory / "hosts.ini").write_text("\n".join(lines))
        # group_vars/all applies to the implicit localhost too: the wheelhouse play reads it.
        (directory / "group_vars" / "all.yml").write_text(
            f"ictq_deploy_wheelhouse: {self.wheelhouse}\nictq_wheelhouse_source: {self.source}\n"
        )
        variables = {
            "ictq_worker_db_connection": "pgsql",
            "ictq_worker_db_host": self.db_env["DB_HOST"],
            "ictq_worker_db_port": self.db_env["DB_PORT"],
            "ictq_worker_db_database": self.db_env["DB_DATABASE"],
            "ictq_worker_db_username": self.db_env["DB_USERNAME"],
            "ictq_worker_numprocs": str(NUMPROCS),
            "ictq_worker_sleep": str(SLEEP),
            "ictq_worker_mail_mailer": "smtp",
            "ictq_worker_jobs": "[e2e_jobs]",
            "ictq_worker_queue_manager_src": str(self.source / "queue_manager.sh"),
            "ictq_worker_app_files": f"[{{src: {Path(__file__).parent / 'e2e_jobs.py'}, dest: e2e_jobs.py}}]",
        }
        if self.php:  # the ictq program as before (its keys from the variables above), and a PHP one
            variables["ictq_worker_programs"] = (
                f"[{{name: {PROGRAM}, kind: ictq}}, "
                f"{{name: {PHP_PROGRAM}, kind: php, queue: {PHP_QUEUE}, numprocs: {PHP_NUMPROCS}}}]")
            variables["ictq_worker_laravel_app_src"] = str(self.laravel_app)
        if self.dashboard_host is not None:  # enabled for one host, as docs/deploy.md says: its host_vars
            (directory / "host_vars").mkdir()
            (directory / "host_vars" / f"{self.dashboard_host.name}.yml").write_text(
                f"ictq_worker_dashboard_enabled: true\nictq_worker_dashboard_listen: \"{DASHBOARD_LISTEN}\"\n")
        if with_secrets:
            variables["ictq_worker_db_password"] = '"{{ vault_ictq_worker_db_password }}"'
            variables["ictq_worker_mail_password"] = '"{{ vault_ictq_worker_mail_password }}"'
            variables["ictq_worker_dashboard_key"] = '"{{ vault_ictq_worker_dashboard_key }}"'
            variables["ictq_worker_dashboard_users"] = (
                f"[{{name: {DASHBOARD_USER}, role: operator, "
                "password: '{{ vault_ictq_worker_dashboard_operator_password }}'}]")
            vault = directory / "group_vars" / "workers" / "vault.yml"
            vault.write_text(f"vault_ictq_worker_db_password: {self.canary_db}\n"
                             f"vault_ictq_worker_mail_password: {self.canary_mail}\n"
                             f"vault_ictq_worker_dashboard_key: {self.canary_dashboard_key}\n"
                             f"vault_ictq_worker_dashboard_operator_password: {self.canary_dashboard_password}\n")
            self._ansible("ansible-vault", "encrypt", "--vault-password-file", str(self.vault_password_file),
                          str(vault))
            assert self.canary_db not in vault.read_text()
            assert self.canary_dashboard_key not in vault.read_text()
        (directory / "group_vars" / "workers" / "vars.yml").write_text(
            "".join(f"{key}: {value}\n" for key, value in variables.items())
        )
        return directory / "hosts.ini"

    # -- running ----------------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
        (self.workdir / "ansible-cp").mkdir(exist_ok=True)
        (self.workdir / "ansible-tmp").mkdir(exist_ok=True)
        env.update({
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(self.workdir / "ansible-cp"),
            "ANSIBLE_LOCAL_TEMP": str(self.workdir / "ansible-tmp"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        })
        return env

    def _ansible(self, tool: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(BIN / tool), *args], cwd=REPO, env=self._env(), capture_output=True,
                              text=True, timeout=timeout, check=False)
        if tool == "ansible-vault" and proc.returncode != 0:
            raise AssertionError(f"{tool} {' '.join(args)} failed: {proc.stderr}")
        return proc

    def playbook(self, *extra: str, inventory: Path | None = None, timeout: float = 600) -> Run:
        """``ansible-playbook -i INVENTORY playbooks/deploy.yml`` from the repository root."""
        args = ("-i", str(inventory or self.inventory), "playbooks/deploy.yml",
                "--vault-password-file", str(self.vault_password_file), *extra)
        started = time.monotonic()
        proc = self._ansible("ansible-playbook", *args, timeout=timeout)
        run = Run(args, proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started)
        self.runs.append(run)
        # The whole output, for a failure that describe()'s tail does not show.
        (self.workdir / f"ansible-playbook-{len(self.runs)}.log").write_text(run.output)
        return run

    # -- looking at the hosts ---------------------------------------------------------------------

    def sudo(self, host: TestHost, command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``command`` as root on ``host``, over SSH (deploy user, then sudo)."""
        return self.fleet.ssh(host, f"sudo -n sh -c {_quote(command)}", timeout=timeout)

    def workers(self, host: TestHost, program: str = PROGRAM) -> dict[str, tuple[str, int]]:
        """Supervisor's view of ``program`` on ``host``: process name -> (state, pid)."""
        out = self.sudo(host, f"supervisorctl status '{program}:*'").stdout
        found: dict[str, tuple[str, int]] = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 2:
                pid = int(parts[3].rstrip(",")) if len(parts) > 3 and parts[2] == "pid" else 0
                found[parts[0]] = (parts[1], pid)
        return found

    def dashboard_pid(self) -> int:
        """The dashboard's PID on its host (0 when it does not run)."""
        assert self.dashboard_host is not None
        out = self.sudo(self.dashboard_host, f"supervisorctl status {DASHBOARD_PROGRAM}").stdout.split()
        return int(out[3].rstrip(",")) if len(out) > 3 and out[1] == "RUNNING" and out[2] == "pid" else 0

    def http_status(self, host: TestHost, path: str, user: str | None = None, password: str = "") -> int:
        """What ``curl -s -o /dev/null -w %{http_code} [-u user:password] DASHBOARD_URL/path`` prints on
        ``host`` (as the deploy user, no sudo), done with the host's python3: the test hosts have no curl.
        The credentials travel base64-encoded, as in the Authorization header itself; 0 when nothing answers."""
        header = ""
        if user is not None:
            header = base64.b64encode(f"{user}:{password}".encode()).decode()
        script = (
            "import sys, urllib.error, urllib.request\n"
            "request = urllib.request.Request(sys.argv[1])\n"
            "if sys.argv[2]: request.add_header('Authorization', 'Basic ' + sys.argv[2])\n"
            "try:\n"
            "    print(urllib.request.urlopen(request, timeout=10).status)\n"
            "except urllib.error.HTTPError as exc:\n"
            "    print(exc.code)\n"
            "except OSError:\n"
            "    print(0)\n"
        )
        proc = self.fleet.ssh(host, shlex.join(["python3", "-c", script, DASHBOARD_URL + path, header]), timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return int(proc.stdout.strip())

    def pids(self, program: str = PROGRAM) -> dict[str, dict[str, int]]:
        return {h.name: {name: pid for name, (_, pid) in self.workers(h, program).items()} for h in self.hosts}

    def artisan(self, host: TestHost, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``php artisan ARGS`` on ``host``, in the app dir, as the app user."""
        command = f"cd {APP_DIR} && " + shlex.join(["runuser", "-u", "ictq", "--", "php", "artisan", *args])
        return self.sudo(host, command, timeout=timeout)

    def php_ran(self) -> dict[str, list[str]]:
        """Tags the Laravel app's Record jobs appended to storage/app/ran.log, per host."""
        return {h.name: self.sudo(h, f"cat {APP_DIR}/storage/app/ran.log 2>/dev/null || true").stdout.split()
                for h in self.hosts}

    def records(self) -> list[list[str]]:
        """What the e2e job wrote on every host: [n, host, pid, __version__, metadata version]."""
        lines: list[list[str]] = []
        for host in self.hosts:
            out = self.sudo(host, f"cat {APP_DIR}/storage/e2e/records 2>/dev/null || true").stdout
            lines += [line.split() for line in out.splitlines() if line.strip()]
        return lines


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"
