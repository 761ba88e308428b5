"""A real ``ictq dashboard`` on a test app: its key in the .env, two users (an operator and a
viewer) added with the CLI, the server started as a subprocess on a free loopback port, and
HTTP clients that log in through the form as a browser does."""

from __future__ import annotations

import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.app import App, wait_for

OPERATOR = ("olga", "operator-password-1")
VIEWER = ("victor", "viewer-password-1")
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no CSRF token"
    return found.group(1)


def add_users(app: App) -> None:
    """The operator and the viewer added in this process, as ``ictq dashboard user add --update``
    adds them, without a CLI process each (for suites that start many servers)."""
    from ictq.dashboard import auth

    storage = app.storage()
    try:
        for (name, password), role in ((OPERATOR, "operator"), (VIEWER, "viewer")):
            assert auth.add_user(storage, name, role, password, True, int(time.time())) in ("created", "unchanged")
    finally:
        storage.close()


class DashboardServer:
    def __init__(self, app: App, refresh_every: float = 1, users_by_cli: bool = True) -> None:
        self.app = app
        app.write_env(ICTQ_DASHBOARD_KEY=secrets.token_urlsafe(48), ICTQ_DASHBOARD_REFRESH=str(refresh_every))
        users: tuple[tuple[tuple[str, str], str], ...] = ((OPERATOR, "operator"), (VIEWER, "viewer"))
        if not users_by_cli:  # the same users, without two CLI processes
            add_users(app)
            users = ()
        for (name, password), role in users:
            added = app.ictq("dashboard", "user", "add", name, "--role", role, "--password-stdin", "--update",
                             input=password + "\n")
            assert added.returncode == 0 and added.stdout.strip() in ("created", "unchanged"), added.stderr
        self._clients: list[httpx.Client] = []
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path: Path = app.root / "dashboard.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ictq", "--env-file", str(app.env_file), "dashboard", "--listen",
             f"127.0.0.1:{self.port}"], cwd=app.root, env=app.env(), stdout=self._log, stderr=subprocess.STDOUT,
            text=True)
        wait_for(self._up, timeout=60, what="the dashboard to answer /healthz")

    def _up(self) -> bool:
        assert self.proc.poll() is None, f"the dashboard exited: {self.log_path.read_text()}"
        try:
            return httpx.get(self.base + "/healthz", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    def client(self) -> httpx.Client:
        """A new HTTP client of this dashboard (closed when the server stops)."""
        client = httpx.Client(base_url=self.base, follow_redirects=False, timeout=60)
        self._clients.append(client)
        return client

    def login(self, user: tuple[str, str] = OPERATOR) -> httpx.Client:
        """A client logged in through the form (cookies kept, as a browser keeps them); do not
        use it in a ``with`` (it is open already): the server closes it when it stops."""
        client = self.client()
        form = client.get("/login")
        done = client.post("/login", data={"name": user[0], "password": user[1], "csrf_token": csrf_of(form.text),
                                           "next": "/"})
        assert done.status_code == 303, done.text
        return client

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> int:
        for client in self._clients:
            client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(timeout=10)
        self._log.close()
        return code


@contextmanager
def dashboard_server(app: App, refresh_every: float = 1, users_by_cli: bool = True) -> Iterator[DashboardServer]:
    server = DashboardServer(app, refresh_every, users_by_cli)
    try:
        yield server
    finally:
        server.stop()
