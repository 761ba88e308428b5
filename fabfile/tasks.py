"""The ``queue`` tasks: ``fab [-H host1,host2] queue.TASK [options]``."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from invoke.collection import Collection
from invoke.exceptions import Exit
from invoke.tasks import task

from fabfile import report as fleet
from fabfile import supervisor
from fabfile.executor import FleetContext, FleetTask
from fabfile.hosts import HostsError, Target, resolve
from fabfile.inventory import InventoryError
from fabfile.remote import HostError, Shell
from fabfile.settings import SettingsError

USAGE = 2
ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+$")
JOB_REF = re.compile(r"^(\d+|[0-9a-fA-F-]{36})$")
EXECUTOR_MISSING = ("the queue tasks need the fabfile's executor: keep fabric.yaml next to the fabfile "
                    "(tasks.executor_class: fabfile.executor.FleetExecutor)")


def fleet_task(**options: Any) -> Callable[[Callable[..., None]], FleetTask]:
    """``@task`` for the queue tasks (run once, for all their hosts)."""

    def decorate(body: Callable[..., None]) -> FleetTask:
        made: FleetTask = task(klass=FleetTask, **options)(body)
        return made

    return decorate


def _targets(c: Any, name: str) -> list[Target]:
    if not isinstance(c, FleetContext):
        raise Exit(EXECUTOR_MISSING, code=USAGE)
    try:
        return resolve(c.cli_hosts, c.config.queue, f"queue.{name}")
    except (HostsError, SettingsError, InventoryError) as exc:
        raise Exit(str(exc), code=USAGE) from None


def _each(c: Any, name: str, action: fleet.Action) -> None:
    targets = _targets(c, name)
    fleet.finish(f"queue.{name}", fleet.on_each(targets, c.config, action))


def _one(c: Any, name: str, action: fleet.Action) -> None:
    targets = _targets(c, name)
    fleet.finish(f"queue.{name}", fleet.on_one(targets, c.config, action))


def _usage(message: str) -> Exit:
    return Exit(message, code=USAGE)


# -- Supervisor ---------------------------------------------------------------------------------


def _supervisor_status(shell: Shell, out: fleet.HostReport) -> tuple[int, str, list[supervisor.Process]]:
    app = shell.target.app
    result = shell.root(["supervisorctl", "status", *app.groups])
    code, words = supervisor.summary(result, app.described)
    found = supervisor.processes(result)
    out.say(words if code == 0 else "workers: " + words.removeprefix("workers: "))
    for line in supervisor.table(found):
        out.say("  " + line)
    return code, words, found


def _queue_line(shell: Shell, out: fleet.HostReport) -> bool:
    result = shell.ictq("size", "--json")
    if result.exited != 0:
        out.say(f"queue: cannot read the queue size: {result.first_error()}")
        return False
    try:
        total = json.loads(result.stdout)["total"]
        oldest = total.get("oldest_pending_age")
        out.say(f"queue: {total['size']} job(s) ({total['pending']} pending, {total['delayed']} delayed, "
                f"{total['reserved']} reserved)" + (f", oldest pending {oldest}s" if oldest is not None else "")
                + f"; {total['failed']} failed ({total['failed_last_hour']} in the last hour)")
    except (ValueError, KeyError, TypeError):
        out.say(f"queue: unexpected answer from `ictq size --json`: {result.first_error()}")
        return False
    return True


@fleet_task()
def status(c: Any) -> None:
    """Workers of every program (supervisorctl status 'laravel-worker:*' ...), queue size, failed jobs, per host.

    Exit 3 when workers are stopped somewhere, 4 when Supervisor does not know the program or
    supervisord is down, 1 for other failures (unreachable host, database...).
    """

    def action(shell: Shell, out: fleet.HostReport) -> None:
        code, words, _ = _supervisor_status(shell, out)
        queue_ok = _queue_line(shell, out)
        if code != 0:
            out.fail(words, code)
        elif not queue_ok:
            out.fail("the queue could not be read (see above)")

    _each(c, "status", action)


def _supervisorctl(verb: str, want: str) -> fleet.Action:
    """Run ``supervisorctl VERB 'PROGRAM:*'``, then check that every process is ``want``."""

    def action(shell: Shell, out: fleet.HostReport) -> None:
        app = shell.target.app
        before = {p.name: p.pid for p in supervisor.processes(shell.root(["supervisorctl", "status", *app.groups]))}
        result = shell.root(["supervisorctl", verb, *app.groups])
        for line in result.text.splitlines():
            out.say(line)
        if result.exited != 0:
            _, words = supervisor.summary(result, app.described)
            raise HostError(f"supervisorctl {verb} failed: {words}", result.exited)
        after = shell.root(["supervisorctl", "status", *app.groups])
        found = supervisor.processes(after)
        wrong = [p for p in found if p.state != want]
        if not found or wrong:
            _, words = supervisor.summary(after, app.described)
            raise HostError(f"after {verb}: {words}" if not wrong else
                            f"after {verb}: {', '.join(f'{p.name} {p.state}' for p in wrong)}")
        if verb == "restart":
            reused = [p.name for p in found if p.pid is not None and p.pid == before.get(p.name)]
            if reused:
                raise HostError(f"restart left the same PID on {', '.join(reused)}")
            out.say("new PIDs: " + ", ".join(f"{p.name.split(':')[-1]} {before.get(p.name) or '-'} -> {p.pid}"
                                             for p in found))
        else:
            out.say(f"workers: all {len(found)} {want.lower()}")

    return action


@fleet_task()
def start(c: Any) -> None:
    """Start the workers of every program (supervisorctl start 'laravel-worker:*' ...), on each host."""
    _each(c, "start", _supervisorctl("start", "RUNNING"))


@fleet_task()
def stop(c: Any) -> None:
    """Stop the workers of every program; each finishes its current job first (supervisorctl stop ...)."""
    _each(c, "stop", _supervisorctl("stop", "STOPPED"))


@fleet_task()
def restart(c: Any) -> None:
    """Restart the workers of every program gracefully: each finishes its job, then runs anew (new PIDs).

    supervisorctl restart 'laravel-worker:*' (and every further program's group, PHP ones
    included) on each host: Supervisor sends TERM, the worker ends its job (within stopwaitsecs)
    and exits, then Supervisor starts it again. Only the named hosts restart (`ictq restart`
    would restart every worker of the database, on every host).
    """
    _each(c, "restart", _supervisorctl("restart", "RUNNING"))


def _passthrough(argv: list[str], what: str) -> fleet.Action:
    def action(shell: Shell, out: fleet.HostReport) -> None:
        result = shell.root(argv)
        for line in result.text.splitlines():
            out.say(line)
        if result.exited != 0:
            raise HostError(f"{what} failed (exit {result.exited}): {result.first_error()}", result.exited)

    return action


@fleet_task()
def reread(c: Any) -> None:
    """Make Supervisor reread its configuration files (supervisorctl reread), on each host."""
    _each(c, "reread", _passthrough(["supervisorctl", "reread"], "supervisorctl reread"))


@fleet_task()
def update(c: Any) -> None:
    """Apply changed program files (supervisorctl update laravel-worker ...), on each host."""

    def action(shell: Shell, out: fleet.HostReport) -> None:
        _passthrough(["supervisorctl", "update", *shell.target.app.program_names], "supervisorctl update")(shell, out)

    _each(c, "update", action)


# -- The queue (ictq, as the app user) ---------------------------------------------------------


def _ictq(*args: str, what: str) -> fleet.Action:
    def action(shell: Shell, out: fleet.HostReport) -> None:
        result = shell.ictq(*args)
        for line in result.text.splitlines():
            out.say(line)
        if result.exited != 0:
            raise HostError(f"{what} failed (exit {result.exited}): {result.first_error()}", result.exited)

    return action


def _queue_args(queue: str) -> list[str]:
    return ["--queue", queue] if queue else []


@fleet_task(help={"queue": "Only these queues, comma-separated (default: all)."})
def size(c: Any, queue: str = "") -> None:
    """Jobs per queue, pending / delayed / reserved, oldest age, failed (ictq size), per host."""
    _each(c, "size", _ictq("size", *_queue_args(queue), what="ictq size"))


@fleet_task(help={"queue": "Only these queues, comma-separated (default: all).",
                  "limit": "At most this many failed jobs (default 20)."})
def failed(c: Any, queue: str = "", limit: str = "20") -> None:
    """Failed jobs, newest first (ictq failed), per host."""
    count = _positive(limit, "--limit")
    _each(c, "failed", _ictq("failed", "--limit", str(count), *_queue_args(queue), what="ictq failed"))


@fleet_task(iterable=["id"], help={"id": "A failed job's ID or UUID; repeat it, or separate with commas.",
                                   "all": "Retry every failed job (of --queue, when given).",
                                   "queue": "With --all: only failed jobs of this queue."})
def retry(c: Any, id: list[str], all: bool = False, queue: str = "") -> None:
    """Put failed jobs back on their queue (ictq retry), on one host: --id=ID[,ID...] or --all."""
    refs = [part.strip() for value in id for part in value.split(",") if part.strip()]
    if bool(refs) == all:
        raise _usage("queue.retry: give --id=ID (repeatable, or ID,ID) or --all, not both")
    bad = [ref for ref in refs if not JOB_REF.match(ref)]
    if bad:
        raise _usage(f"queue.retry: {bad[0]!r} is not a failed job's ID or UUID")
    if queue and not all:
        raise _usage("queue.retry: --queue goes with --all")
    args = ["retry", "all", *_queue_args(queue)] if all else ["retry", *refs]
    _one(c, "retry", _ictq(*args, what="ictq retry"))


@fleet_task(help={"lines": "How many of the last lines (default 50)."})
def logs(c: Any, lines: str = "50") -> None:
    """The last lines of the queue log (storage/logs/queue.log), per host."""
    count = _positive(lines, "--lines")

    def action(shell: Shell, out: fleet.HostReport) -> None:
        path = shell.target.app.log_path
        result = shell.app(["tail", "-n", str(count), "--", path])
        if result.exited != 0:
            raise HostError(f"cannot read {path}: {result.first_error()}", result.exited)
        out.say(f"{path} (last {count} lines):")
        for line in result.stdout.splitlines():
            out.say(line)

    _each(c, "logs", action)


@fleet_task(help={"to": "The address that gets both test notifications (password reset, account activation).",
                  "wait": "Seconds to wait for a worker to send them (default 60; 0: only queue them)."})
def test_email(c: Any, to: str = "", wait: str = "60") -> None:
    """Send both test notifications through the queue, on one worker host, and say whether they went.

    Runs `ictq test-email --email=TO --wait=SECONDS` there: exit 0 both sent, 1 a message
    failed, 3 not sent in time (are workers running?).
    """
    if not to:
        raise _usage("queue.test-email: give the address: --to=ADDRESS")
    if not ADDRESS.match(to):
        raise _usage(f"queue.test-email: {to!r} is not an e-mail address")
    try:
        seconds = float(wait)
    except ValueError:
        raise _usage(f"queue.test-email: --wait={wait!r} is not a number of seconds") from None
    if not 0 <= seconds <= 3600:
        raise _usage("queue.test-email: --wait must be between 0 and 3600 seconds")

    def action(shell: Shell, out: fleet.HostReport) -> None:
        args = ["test-email", f"--email={to}"] + ([f"--wait={seconds:g}"] if seconds else [])
        result = shell.ictq(*args, timeout=max(float(c.config.queue.command_timeout), seconds + 60))
        for line in result.text.splitlines():
            out.say(line)
        if result.exited == 0:
            out.say(f"both notifications sent to {to}" if seconds else f"both notifications queued for {to}")
        elif result.exited == 3:
            raise HostError(f"not sent within {seconds:g}s: are the workers running? (queue.status)", 3)
        elif result.exited == 1 and seconds:
            raise HostError(f"a notification failed: {result.first_error()}", 1)
        else:
            raise HostError(f"ictq test-email failed (exit {result.exited}): {result.first_error()}", result.exited)

    _one(c, "test-email", action)


def _positive(value: str, option: str) -> int:
    if not value.strip().isdigit() or int(value) < 1:
        raise _usage(f"{option}={value!r}: give a whole number of at least 1")
    return int(value)


def collection() -> Collection:
    """The ``queue`` namespace."""
    return Collection("queue", status, start, stop, restart, reread, update, size, failed, retry, logs, test_email)
