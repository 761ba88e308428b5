"""Throw-away PostgreSQL clusters for the failover tests: a primary and a streaming replica,
made with Debian's own binaries (``initdb``, ``pg_basebackup -R``, ``pg_ctl``) as ``postgres``
in temporary directories, on free ports of 127.0.0.1, with trusted logins.

The machine's shared PostgreSQL (127.0.0.1:5432) is never touched. Teardown stops each cluster
by its data directory (``pg_ctl stop -m immediate``: it kills only that postmaster, by the PID
in its ``postmaster.pid``) and removes the directory. Missing binaries fail the test with the
command that installs them.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.app import wait_for
from tests.support.pgbouncer import free_port

RUN_AS = "postgres"
SUPERUSER = "postgres"
INSTALL_HINT = "apt-get install postgresql (Debian's binaries in /usr/lib/postgresql/<version>/bin)"


def bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda path: int(path.split("/")[4]))
    if not found:
        pytest.fail(f"PostgreSQL's initdb was not found; install it with: {INSTALL_HINT}", pytrace=False)
    return Path(found[-1]).parent


def _as_postgres(*command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["runuser", "-u", RUN_AS, "--", *command], capture_output=True, text=True,
                            timeout=timeout, cwd="/")
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed: {result.stdout.strip()} {result.stderr.strip()}")
    return result


@dataclass
class Cluster:
    name: str
    directory: Path  # owned by postgres; the data directory is directory/data
    port: int

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def pg_ctl(self, *args: str, timeout: float = 120) -> None:
        _as_postgres(str(bin_dir() / "pg_ctl"), "-D", str(self.data), *args, timeout=timeout)

    def start(self) -> None:
        self.pg_ctl("-l", str(self.directory / "server.log"), "-w", "-t", "110", "start")

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("-m", mode, "-w", "-t", "110", "stop")

    def promote(self) -> None:
        self.pg_ctl("-w", "-t", "110", "promote")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def connect(self, dbname: str = "postgres") -> Any:
        import psycopg

        return psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname=dbname, autocommit=True,
                               connect_timeout=5)

    def query(self, sql: str, dbname: str = "postgres") -> list[tuple[Any, ...]]:
        with self.connect(dbname) as conn:
            cursor = conn.execute(sql)
            return list(cursor.fetchall()) if cursor.description is not None else []

    def log(self) -> str:
        path = self.directory / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def destroy(self) -> None:
        if self.running():
            with suppress(AssertionError, subprocess.TimeoutExpired):
                self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)


def _directory(name: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=f"ictq-pg-{name}-"))
    entry = pwd.getpwnam(RUN_AS)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


def _settings(port: int) -> str:
    return (f"\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
            "max_connections = 60\nshared_buffers = 16MB\nwal_level = replica\nmax_wal_senders = 4\n"
            "hot_standby = on\nfsync = off\nfull_page_writes = off\nlog_min_messages = warning\n")


@contextmanager
def primary_and_replica() -> Iterator[tuple[Cluster, Cluster]]:
    """A primary and its streaming replica (``pg_basebackup -R``), both running; both stopped
    and removed afterwards."""
    clusters: list[Cluster] = []
    try:
        primary = Cluster("primary", _directory("primary"), free_port())
        clusters.append(primary)
        _as_postgres(str(bin_dir() / "initdb"), "-D", str(primary.data), "-U", SUPERUSER, "--auth=trust",
                     "--no-sync", "-E", "UTF8", "--locale=C")
        with (primary.data / "postgresql.conf").open("a") as conf:
            conf.write(_settings(primary.port))
        (primary.data / "pg_hba.conf").write_text("host all all 127.0.0.1/32 trust\n"
                                                  "host replication all 127.0.0.1/32 trust\n")
        primary.start()
        replica = Cluster("replica", _directory("replica"), free_port())
        clusters.append(replica)
        _as_postgres(str(bin_dir() / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port), "-U",
                     SUPERUSER, "-D", str(replica.data), "-R", "-X", "stream", "--no-sync")
        with (replica.data / "postgresql.conf").open("a") as conf:
            conf.write(f"\nport = {replica.port}\n")
        replica.start()
        wait_for(lambda: primary.query("SELECT 1 FROM pg_stat_replication WHERE state = 'streaming'"),
                 timeout=60, interval=0.2, what="the replica to stream")
        yield primary, replica
    finally:
        for cluster in reversed(clusters):
            cluster.destroy()
