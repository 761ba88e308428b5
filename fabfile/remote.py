"""Commands on a worker host over SSH: as root or as the app user (sudo), in the app dir.

Every connection checks the host key against ``~/.ssh/known_hosts``, the system file and any
``UserKnownHostsFile`` the SSH config or the inventory names, and refuses an unknown host
unless ``StrictHostKeyChecking no`` (or ``accept-new``) or ``queue.host_key_checking: false``
says otherwise (Fabric alone would accept any key). Connection problems become one-line
:class:`HostError` messages.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import paramiko  # type: ignore[import-untyped]
from fabric import Connection  # type: ignore[import-untyped]
from invoke.exceptions import CommandTimedOut, Failure, ResponseNotAccepted
from invoke.runners import Result
from invoke.watchers import FailingResponder

from fabfile.hosts import Target

SUDO_PROMPT = "[sudo] password for fab-queue: "
SYSTEM_KNOWN_HOSTS = ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")


class HostError(Exception):
    """Something failed on one host; the message is one line."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Output:
    """What a command printed, and its exit code."""

    stdout: str
    stderr: str
    exited: int

    @property
    def text(self) -> str:
        return (self.stdout + self.stderr).strip()

    def first_error(self) -> str:
        """The first line of stderr (else stdout), for a one-line report."""
        for stream in (self.stderr, self.stdout):
            for line in stream.splitlines():
                if line.strip():
                    return line.strip()
        return f"exit code {self.exited}"


class Shell:
    """One host's connection and the ways the tasks run commands there."""

    def __init__(self, target: Target, config: Any, timeout: float) -> None:
        self.target = target
        self.timeout = timeout
        self._password: str | None = _sudo_password(config)
        try:
            self.connection = connect(target, config)
        except ValueError as exc:
            raise HostError(f"cannot connect to {target.address!r}: {exc}") from None

    def close(self) -> None:
        self.connection.close()

    def open(self) -> None:
        """Connect now (so that an unreachable host is told apart from a failing command)."""
        try:
            self.connection.open()
        except (OSError, paramiko.SSHException, EOFError) as exc:
            raise HostError(connect_error(exc, self.target)) from None

    # -- commands ---------------------------------------------------------------------------

    def root(self, argv: Sequence[str], timeout: float | None = None) -> Output:
        """``argv`` as root (sudo)."""
        return self._sudo(None, shlex.join(argv), timeout)

    def app(self, argv: Sequence[str], timeout: float | None = None) -> Output:
        """``argv`` as the app user, in the app dir."""
        app = self.target.app
        script = f"cd {shlex.quote(app.app_dir)} && exec {shlex.join(argv)}"
        return self._sudo(app.user, shlex.join(["sh", "-c", script]), timeout)

    def ictq(self, *args: str, timeout: float | None = None) -> Output:
        """``ictq --env-file=<app>/.env ARGS`` as the app user, in the app dir."""
        app = self.target.app
        return self.app([app.ictq, f"--env-file={app.env_file}", *args], timeout=timeout)

    def _sudo(self, user: str | None, command: str, timeout: float | None) -> Output:
        as_user = ["-H", "-u", user] if user else []
        watchers: list[FailingResponder] = []
        if self._password is None:
            sudo = shlex.join(["sudo", "-n", *as_user, "--"])
        else:
            sudo = shlex.join(["sudo", "-S", "-p", SUDO_PROMPT, *as_user, "--"])
            watchers.append(FailingResponder(pattern=re.escape(SUDO_PROMPT), response=f"{self._password}\n",
                                             sentinel="Sorry, try again."))
        try:
            result: Result = self.connection.run(f"{sudo} {command}", hide=True, warn=True, in_stream=False,
                                                 pty=False, watchers=watchers, timeout=timeout or self.timeout)
        except CommandTimedOut as exc:
            raise HostError(f"no answer within {exc.timeout:g}s from: {_short(command)}") from None
        except Failure as exc:
            if isinstance(exc.reason, ResponseNotAccepted):
                raise HostError("sudo refused the password (sudo.password / --prompt-for-sudo-password)") from None
            raise
        except (OSError, paramiko.SSHException, EOFError) as exc:
            raise HostError(connect_error(exc, self.target)) from None
        output = Output(result.stdout, result.stderr, int(result.exited))
        _check_sudo(output, user)
        return output


def _check_sudo(output: Output, user: str | None) -> None:
    """Raise for sudo's own refusals (the command never ran)."""
    if output.exited == 0:
        return
    err = output.stderr
    if "a password is required" in err or "a terminal is required" in err:
        raise HostError("sudo asks for a password: give the SSH user passwordless sudo, or run fab with "
                        "--prompt-for-sudo-password")
    if "is not in the sudoers file" in err or "is not allowed to execute" in err:
        raise HostError(f"sudo refused{' to become ' + user if user else ''}: {output.first_error()}")
    if re.search(r"^sudo: unknown user", err, re.M):
        raise HostError(f"the app user {user!r} does not exist on this host (queue.user / ictq_worker_user)")
    if re.search(r"^sh: \d+: cd: can't cd to", err, re.M):
        raise HostError(f"the app dir does not exist or cannot be entered: {output.first_error()}")


def _sudo_password(config: Any) -> str | None:
    try:
        password = config.sudo.password
    except (AttributeError, KeyError):
        return None
    return str(password) if password else None


def connect(target: Target, config: Any) -> Connection:
    """A Fabric connection to ``target`` (not opened yet) that checks the host key."""
    options = target.ssh_options
    kwargs: dict[str, Any] = {"config": config}
    if target.user:
        kwargs["user"] = target.user
    if target.port:
        kwargs["port"] = target.port
    if options.get("connecttimeout"):
        kwargs["connect_timeout"] = int(options["connecttimeout"])
    connect_kwargs = dict(config.connect_kwargs) if config is not None and "connect_kwargs" in config else {}
    if target.key_files:
        given = connect_kwargs.get("key_filename") or []
        given = [given] if isinstance(given, str) else list(given)
        connect_kwargs["key_filename"] = [*target.key_files, *given]
    kwargs["connect_kwargs"] = connect_kwargs
    connection = Connection(target.address, **kwargs)
    if connection.connect_timeout is None:
        connection.connect_timeout = int(_queue_setting(config, "connect_timeout", 10))
    _host_keys(connection, target, config)
    return connection


def _host_keys(connection: Connection, target: Target, config: Any) -> None:
    client = connection.client
    client.load_system_host_keys()
    ssh_config = connection.ssh_config
    files: list[str] = []
    for source in (target.ssh_options, ssh_config):
        for key in ("userknownhostsfile", "globalknownhostsfile"):
            value = source.get(key)
            if value:
                files += value if isinstance(value, list) else str(value).split()
    store = client.get_host_keys()  # loading into it (not load_host_keys) never writes a file
    for path in [*files, *SYSTEM_KNOWN_HOSTS]:
        expanded = os.path.expanduser(path)
        if expanded != "/dev/null" and os.path.isfile(expanded):
            try:
                store.load(expanded)
            except (OSError, paramiko.SSHException) as exc:
                raise HostError(f"cannot read the known-hosts file {expanded}: {exc}") from None
    strict = str(target.ssh_options.get("stricthostkeychecking") or ssh_config.get("stricthostkeychecking") or "")
    checking = _queue_setting(config, "host_key_checking", True)
    if strict.lower() in ("no", "off", "accept-new") or not checking:
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # in memory only
    else:
        client.set_missing_host_key_policy(paramiko.RejectPolicy())


def _queue_setting(config: Any, key: str, default: Any) -> Any:
    try:
        value = config.queue[key]
    except (AttributeError, KeyError, TypeError):
        return default
    return default if value is None else value


def connect_error(exc: BaseException, target: Target) -> str:
    """A one-line description of why ``target`` could not be reached or logged into."""
    where = target.address
    if isinstance(exc, paramiko.BadHostKeyException):
        return (f"host key mismatch for {where}: the key it offers is not the one in known_hosts "
                "(refusing to connect)")
    if isinstance(exc, paramiko.AuthenticationException):
        return f"SSH login refused on {where}: {exc} (check the user and key: ansible_user, -i, ~/.ssh/config)"
    if isinstance(exc, paramiko.SSHException) and "not found in known_hosts" in str(exc):
        return (f"unknown host key for {where}: add it to known_hosts (ssh-keyscan, or ssh once), or set "
                "queue.host_key_checking: false")
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        return f"unreachable: connection refused by {where} (port {_ports(exc)}): is the host or its sshd down?"
    if isinstance(exc, socket.gaierror):
        return f"unreachable: cannot resolve the host name {where!r}"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return f"unreachable: no answer from {where} (connect timeout)"
    if isinstance(exc, ConnectionRefusedError):
        return f"unreachable: connection refused by {where}: is the host or its sshd down?"
    if isinstance(exc, OSError):
        return f"unreachable: {where}: {exc.strerror or exc}"
    if isinstance(exc, EOFError):
        return f"the SSH connection to {where} was closed"
    return f"SSH error with {where}: {exc}"


def _ports(exc: paramiko.ssh_exception.NoValidConnectionsError) -> str:
    ports = sorted({str(address[1]) for address in exc.errors})
    return ",".join(ports) or "?"


def _short(command: str) -> str:
    return command if len(command) <= 120 else command[:117] + "..."
