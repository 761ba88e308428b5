"""``ictq dashboard``: the web console, and its users (``ictq dashboard user add|list|remove``)."""

from __future__ import annotations

import contextlib
import signal
import socket
import sys
import time
from collections.abc import Iterator

import click

from ictq.cli.output import emit, say, table
from ictq.cli.state import State, pass_state
from ictq.config import shown, whole_number
from ictq.db.users import ROLES, UsersRepository

DEFAULT_LISTEN = "127.0.0.1:8089"


@click.group(invoke_without_command=True)
@click.option("--listen", default=DEFAULT_LISTEN, show_default=True, metavar="HOST:PORT",
              help="Where to serve the dashboard (loopback by default: put a TLS reverse proxy in front).")
@pass_state
@click.pass_context
def dashboard(ctx: click.Context, state: State, listen: str) -> None:
    """Serve the web dashboard: queues live, charts, workers, failed jobs, capacity.

    Needs ICTQ_DASHBOARD_KEY (32+ random characters) in the .env to sign sessions, and a user
    (ictq dashboard user add NAME --role operator). TERM or INT stop it.
    """
    if ctx.invoked_subcommand is not None:
        return
    # Imported here: every `ictq` command (a starting worker too) loads this module.
    import uvicorn

    from ictq import logs
    from ictq.dashboard.app import Dashboard
    from ictq.metrics import parse_listen

    try:
        whole_number(listen.rpartition(":")[2], 1, 65535)
        host, port = parse_listen(listen)
    except ValueError:
        raise click.BadParameter(f"{shown(listen)} is not HOST:PORT (e.g. 127.0.0.1:8089; a port 1 to 65535 "
                                 "in ASCII digits)", param_hint="--listen") from None
    settings = state.settings
    app = Dashboard(settings)  # refuses a missing or short key before anything listens
    logs.setup(None, settings.log_level, settings.secrets)
    try:
        sock = _listening(host, port)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {listen}: {exc.strerror or exc}") from None
    shown_host = f"[{host}]" if ":" in host else host
    click.echo(f"serving the dashboard on http://{shown_host}:{port}/ ({settings.db.connection})", err=True)
    trusted = settings.values.get("ICTQ_DASHBOARD_TRUSTED_PROXIES", "127.0.0.1").strip() or "127.0.0.1"
    config = uvicorn.Config(app.app, log_level=settings.log_level.lower(), proxy_headers=True,
                            forwarded_allow_ips=trusted, server_header=False, date_header=False,
                            timeout_graceful_shutdown=5)
    _server_class()(config).run(sockets=[sock])


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, stopped by TERM or INT like every ictq command: it finishes the
        requests under way and the command exits 0 (uvicorn would raise the signal again at the
        end, and the process would die of it)."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, self.handle_exit)
            yield

    return Server


def _listening(host: str, port: int) -> socket.socket:
    """The server's socket, bound here so that a taken port is one line. Made with IPPROTO_TCP
    (``socket.create_server`` leaves the protocol 0, and asyncio then leaves Nagle's algorithm on
    for the connections it accepts: a kept-alive request would wait 40 ms for a delayed ACK)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


@dashboard.group()
def user() -> None:
    """The dashboard's users: viewers look, operators also retry, forget, pause, resume, restart."""


@user.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (first line).")
@click.option("--update", is_flag=True, help="Change the role and password of an existing user.")
@pass_state
def user_add(state: State, name: str, role: str, password_stdin: bool, update: bool) -> None:
    """Add a user (prints created, updated or unchanged)."""
    from ictq.dashboard import auth

    auth.check_name(name)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    else:
        raise click.UsageError("no terminal to ask the password on: pass --password-stdin")
    with state.storage() as storage:
        result = auth.add_user(storage, name, role, password, update, int(time.time()))
    click.echo(result)


@user.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def user_list(state: State, as_json: bool) -> None:
    """The users and their roles (never their hashes)."""
    from ictq.dashboard.views import stamp

    with state.storage() as storage:
        users = UsersRepository(storage).all()
    rows = [{"name": u.name, "role": u.role, "created_at": stamp(u.created_at), "updated_at": stamp(u.updated_at)}
            for u in users]
    emit(as_json, rows, lambda: table(["name", "role", "created", "changed"],
                                      [[r["name"], r["role"], r["created_at"], r["updated_at"]] for r in rows])
         if rows else "no dashboard users (add one: ictq dashboard user add NAME --role operator)")


@user.command("remove")
@click.argument("name")
@pass_state
def user_remove(state: State, name: str) -> None:
    """Remove a user (their sessions end at their next request)."""
    from ictq.dashboard import auth

    with state.storage() as storage:
        auth.remove_user(storage, name)
    say(f"removed dashboard user {name}")


__all__ = ["dashboard"]
