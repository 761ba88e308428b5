"""The deploy kit's test hosts, deployed for the ``fab queue.*`` tests.

A thin wrapper over :mod:`tests.e2e.deployment`: before the one ``ansible-playbook`` run it
points the hosts' ``.env`` at a real SMTP server on 127.0.0.1 (the hosts share the network
namespace) and ships one more job module, written here, with a slow job (to see a graceful
restart wait for it) and a job that fails until it is allowed to succeed (for failed/retry).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.deployment import APP_DIR, BIN, REPO, Deployment
from tests.support.app import App
from tests.support.databases import fresh_database
from tests.support.hosts import HostFleet, TestHost
from tests.support.smtp import FROM_ADDRESS, SmtpServer

JOB_MODULE = "fabric_e2e_jobs"
MAIL_USERNAME = "fab-e2e"
RECORDS = f"{APP_DIR}/storage/e2e/fabric"
ALLOW = f"{APP_DIR}/storage/e2e/allow"
JOB_SOURCE = '''"""Jobs of the fab queue.* e2e tests (written by tests/e2e/fabric_support.py)."""

import os
import time
from pathlib import Path

import ictq

BASE = Path(__file__).resolve().parent / "storage" / "e2e"


def _record(*words: object) -> None:
    (BASE).mkdir(parents=True, exist_ok=True)
    host = Path("/etc/hostname").read_text().strip()
    line = " ".join(str(w) for w in (*words, host, os.getpid())) + "\\n"
    fd = os.open(BASE / "fabric", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@ictq.job("fabric.slow")
def slow(n: int, seconds: float) -> None:
    _record("start", n)
    time.sleep(seconds)
    _record("done", n)


@ictq.job("fabric.flaky", tries=1)
def flaky(n: int) -> None:
    if not (BASE / "allow" / str(n)).exists():
        raise RuntimeError(f"flaky job {n} is not allowed yet")
    _record("ok", n)
'''


@dataclass
class FabricHosts:
    """Two deployed hosts, their inventory and SSH files, and the SMTP server they mail to."""

    deployment: Deployment
    fleet: HostFleet
    hosts: list[TestHost]
    app: App
    smtp: SmtpServer
    outputs: list[str] = field(default_factory=list)

    @property
    def ssh_config(self) -> Path:
        return self.fleet.ssh_config

    @property
    def inventory(self) -> Path:
        return self.deployment.inventory

    def fab(self, *args: str, inventory: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 240) -> subprocess.CompletedProcess[str]:
        """``fab ARGS`` from the repository root; without ``inventory``, no inventory at all."""
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("FABRIC_", "INVOKE_"))}
        environ["FABRIC_QUEUE_INVENTORY"] = str(inventory) if inventory else ""
        environ.update(env or {})
        proc = subprocess.run([str(BIN / "fab"), *args], cwd=REPO, env=environ, capture_output=True, text=True,
                              timeout=timeout, check=False)
        self.outputs.append(proc.stdout + proc.stderr)
        return proc

    def fab_h(self, *args: str, hosts: str = "worker1,worker2", **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """``fab -S <the hosts' ssh config> -H HOSTS ARGS``."""
        return self.fab("-S", str(self.ssh_config), "-H", hosts, *args, **kwargs)

    def sudo(self, host: TestHost, command: str) -> str:
        result = self.deployment.sudo(host, command)
        assert result.returncode == 0, f"{host.name}: {command}: {result.stderr}"
        return result.stdout

    def records(self) -> list[list[str]]:
        """Lines of the fabric jobs, every host: [what, n, host, pid]."""
        lines: list[list[str]] = []
        for host in self.hosts:
            out = self.deployment.sudo(host, f"cat {RECORDS} 2>/dev/null || true").stdout
            lines += [line.split() for line in out.splitlines() if line.strip()]
        return lines

    def allow(self, n: int) -> None:
        for host in self.hosts:
            self.sudo(host, f"install -d -o ictq -g ictq {APP_DIR}/storage/e2e {ALLOW} && touch {ALLOW}/{n}")


def _mail_and_jobs(deployment: Deployment, smtp: SmtpServer, workdir: Path) -> None:
    """Point the inventory's group_vars at the SMTP server and add the job module."""
    module = workdir / f"{JOB_MODULE}.py"
    module.write_text(JOB_SOURCE)
    path = deployment.inventory.parent / "group_vars" / "workers" / "vars.yml"
    variables = yaml.safe_load(path.read_text())
    variables.update({
        "ictq_worker_mail_mailer": "smtp",
        "ictq_worker_mail_host": smtp.host,
        "ictq_worker_mail_username": MAIL_USERNAME,
        "ictq_worker_mail_port": smtp.port,
        "ictq_worker_mail_encryption": "null",
        "ictq_worker_mail_from_address": FROM_ADDRESS,
        "ictq_worker_env_extra": {"MAIL_TIMEOUT": "5", "MAIL_BACKOFF": "1", "APP_URL": "https://ict.example.test"},
        "ictq_worker_jobs": [*variables["ictq_worker_jobs"], JOB_MODULE, "ictq.mail"],
        "ictq_worker_app_files": [*variables["ictq_worker_app_files"],
                                  {"src": str(module), "dest": f"{JOB_MODULE}.py"}],
    })
    path.write_text(yaml.safe_dump(variables, default_flow_style=False, sort_keys=True))


@contextmanager
def fabric_hosts(workdir: Path) -> Iterator[FabricHosts]:
    """Two hosts deployed with ``ansible-playbook`` (once), mailing to a real SMTP server."""
    with ExitStack() as stack:
        fleet = stack.enter_context(HostFleet())
        hosts = fleet.start(2)
        database = stack.enter_context(fresh_database("pgsql", workdir))
        app = App(workdir, "pgsql", database.env)
        stack.callback(app.stop_all)
        users: dict[str, str] = {}
        smtp = SmtpServer("plain", users=users)  # AUTH with the vault's MAIL_PASSWORD (over plain SMTP)
        smtp.start()
        stack.callback(smtp.stop)
        deployment = Deployment(fleet, hosts, database.env, workdir)
        users[MAIL_USERNAME] = deployment.canary_mail
        _mail_and_jobs(deployment, smtp, workdir)
        started = time.monotonic()
        run = deployment.playbook()
        assert run.returncode == 0, run.describe()
        print(f"\ntest hosts: {fleet.timings}; deploy {time.monotonic() - started:.0f}s")
        yield FabricHosts(deployment, fleet, hosts, app, smtp)
