"""A real PgBouncer for the tests: its own ini and userlist in a temporary directory, any free
port, every database of the test PostgreSQL server (``* =``), trusted logins, one pool mode.

Debian's ``pgbouncer`` (1.18 on bookworm) refuses to run as root, so it runs as ``postgres``.
A missing ``pgbouncer`` fails the test with the command that installs it; nothing is skipped.
Stopped by its PID (``stop``), its directory removed.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.app import wait_for
from tests.support.databases import PG

PGBOUNCER = "/usr/sbin/pgbouncer"
INSTALL_HINT = "apt-get install pgbouncer (make test installs it: TEST_PACKAGES in the Makefile)"
RUN_AS = "postgres"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _owned_dir(prefix: str, user: str) -> Path:
    """A temporary directory owned by ``user`` (the server processes write there)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


class PgBouncer:
    """One running pgbouncer in ``mode`` (``session`` or ``transaction``)."""

    def __init__(self, mode: str, directory: Path, port: int, proc: subprocess.Popen[bytes]) -> None:
        self.mode = mode
        self.directory = directory
        self.port = port
        self.proc = proc

    def env(self) -> dict[str, str]:
        """The .env lines that send ictq through this pgbouncer."""
        return {"DB_HOST": "127.0.0.1", "DB_PORT": str(self.port), "DB_PGBOUNCER": self.mode}

    def show(self, what: str) -> list[dict[str, Any]]:
        """``SHOW <what>`` on the admin console, as dicts."""
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(host="127.0.0.1", port=self.port, user=PG["user"], dbname="pgbouncer",
                             autocommit=True, connect_timeout=5, prepare_threshold=None) as conn:
            return list(conn.cursor(row_factory=dict_row).execute(f"SHOW {what}").fetchall())

    def log(self) -> str:
        path = self.directory / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _answers(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def running_pgbouncer(mode: str, pool_size: int = 20) -> Iterator[PgBouncer]:
    """Start pgbouncer in pool ``mode`` in front of the test PostgreSQL; kill it by PID after."""
    if not os.path.exists(PGBOUNCER):
        pytest.fail(f"pgbouncer is not installed; install it with: {INSTALL_HINT}", pytrace=False)
    directory = _owned_dir("ictq-pgbouncer-", RUN_AS)
    port = free_port()
    (directory / "userlist.txt").write_text(f'"{PG["user"]}" ""\n')
    (directory / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={PG['host']} port={PG['port']}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\n"
        f"unix_socket_dir =\nauth_type = trust\nauth_file = {directory / 'userlist.txt'}\n"
        f"admin_users = {PG['user']}\npool_mode = {mode}\n"
        f"max_client_conn = 500\ndefault_pool_size = {pool_size}\n"
        f"logfile = {directory / 'pgbouncer.log'}\npidfile =\n"
        # Test databases come and go: an idle server connection to a dropped one is not kept.
        "server_idle_timeout = 5\nserver_lifetime = 60\n"
    )
    for path in directory.iterdir():
        shutil.chown(path, RUN_AS, RUN_AS)
    proc = subprocess.Popen([PGBOUNCER, "-u", RUN_AS, str(directory / "pgbouncer.ini")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: proc.poll() is not None or _answers(port), timeout=30, what="pgbouncer to listen")
        if proc.poll() is not None:
            stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            pytest.fail(f"pgbouncer did not start: {stderr.strip()} {(directory / 'pgbouncer.log').read_text()}",
                        pytrace=False)
        yield PgBouncer(mode, directory, port, proc)
    finally:
        stop(proc)
        shutil.rmtree(directory, ignore_errors=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Kill one pgbouncer by its PID (SIGINT: its fast shutdown; KILL if it lingers)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
    proc.wait(timeout=10)
    if proc.stderr is not None:
        proc.stderr.close()
