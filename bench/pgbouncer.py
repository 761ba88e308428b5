"""PgBouncer in front of the benchmark's PostgreSQL: the bench starts its own, one per pool mode.

Its own ini and userlist in a temporary directory, a free port on 127.0.0.1, every database of
the server (``* =``, so the fresh database of each scenario is reachable through it), trusted
logins. Debian's ``pgbouncer`` refuses to run as root: started by root, it runs as ``postgres``
(``-u``), which then owns the directory. Stopped by its PID, its directory removed.
"""

from __future__ import annotations

import contextlib
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

from bench import dbs

MODES = ("session", "transaction")
RUN_AS = "postgres"  # when started by root
INSTALL_HINT = "apt-get install pgbouncer"


def binary() -> str | None:
    """The ``pgbouncer`` executable (on PATH, or Debian's /usr/sbin), or None."""
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/local/sbin")
    return found


def version() -> str:
    """``PgBouncer 1.18.0``, or why it could not be had."""
    path = binary()
    if path is None:
        return f"PgBouncer: not installed ({INSTALL_HINT})"
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return f"PgBouncer: {type(exc).__name__}: {exc}"
    return (out.splitlines() or ["PgBouncer ?"])[0].strip()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((dbs.HOST, 0))
        return int(probe.getsockname()[1])


Server = tuple[str, int, str]  # PostgreSQL's host, port and user
SERVER: Server = (dbs.HOST, dbs.PG_PORT, dbs.USER)  # the bench's


def render_ini(directory: Path, port: int, mode: str, pool_size: int = 20, server: Server = SERVER) -> str:
    """The ini of one pgbouncer in pool ``mode`` listening on ``port`` in front of ``server``,
    its files in ``directory``."""
    if mode not in MODES:
        raise ValueError(f"pool mode {mode!r}: choose from {', '.join(MODES)}")
    host, server_port, user = server
    return (
        "[databases]\n"
        f"* = host={host} port={server_port}\n"
        "[pgbouncer]\n"
        f"listen_addr = {dbs.HOST}\nlisten_port = {port}\n"
        "unix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {directory / 'userlist.txt'}\n"
        f"admin_users = {user}\n"
        f"pool_mode = {mode}\n"
        f"max_client_conn = 500\ndefault_pool_size = {pool_size}\n"
        f"logfile = {directory / 'pgbouncer.log'}\npidfile =\n"
        # Every scenario (and test) has a database of its own, dropped after it: idle server
        # connections go.
        "server_idle_timeout = 5\nserver_lifetime = 60\n"
    )


def render_userlist(user: str = dbs.USER) -> str:
    return f'"{user}" ""\n'


class PgBouncer:
    """One running pgbouncer in pool ``mode`` on ``port``."""

    def __init__(self, mode: str, directory: Path, port: int, proc: subprocess.Popen[bytes]) -> None:
        self.mode = mode
        self.directory = directory
        self.port = port
        self.proc = proc

    def log_tail(self, chars: int = 400) -> str:
        path = self.directory / "pgbouncer.log"
        return path.read_text(errors="replace")[-chars:].strip() if path.exists() else ""

    def stop(self) -> None:
        """SIGINT (its fast shutdown) to our PID; KILL if it lingers."""
        proc = self.proc
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
            deadline = time.monotonic() + 10
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()


def _answers(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((dbs.HOST, port)) == 0


class StartError(RuntimeError):
    pass


@contextmanager
def running(mode: str, pool_size: int = 20, server: Server = SERVER,
            kind: type[PgBouncer] = PgBouncer) -> Iterator[PgBouncer]:
    """Start a pgbouncer in ``mode`` before ``server`` (the bench's PostgreSQL by default); stop
    it and remove its files after. ``kind``: the class of what is yielded (the tests add to it)."""
    path = binary()
    if path is None:
        raise StartError(f"pgbouncer is not installed ({INSTALL_HINT})")
    directory = Path(tempfile.mkdtemp(prefix=f"ictq-bench-pgbouncer-{mode}-"))
    as_root = os.geteuid() == 0
    proc: subprocess.Popen[bytes] | None = None
    try:
        port = free_port()
        (directory / "userlist.txt").write_text(render_userlist(server[2]))
        (directory / "pgbouncer.ini").write_text(render_ini(directory, port, mode, pool_size, server))
        argv = [path, str(directory / "pgbouncer.ini")]
        if as_root:
            entry = pwd.getpwnam(RUN_AS)
            for item in (directory, *directory.iterdir()):
                os.chown(item, entry.pw_uid, entry.pw_gid)
            argv[1:1] = ["-u", RUN_AS]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while proc.poll() is None and not _answers(port):
            if time.monotonic() > deadline:
                raise StartError("pgbouncer did not listen within 30 s")
            time.sleep(0.05)
        bouncer = kind(mode, directory, port, proc)
        if proc.poll() is not None:
            stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise StartError(f"pgbouncer did not start (exit {proc.returncode}): {stderr.strip()} "
                             f"{bouncer.log_tail()}".strip())
        yield bouncer
    finally:
        if proc is not None:
            PgBouncer(mode, directory, 0, proc).stop()
        shutil.rmtree(directory, ignore_errors=True)
