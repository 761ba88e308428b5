"""Running a task's work on its hosts: one block of output per host, one exit status for all.

Hosts are served in parallel (``queue.parallel`` at a time); each host's lines are printed
together, in the order the hosts were given. A host that cannot be reached or fails is reported
in its block and the others are still served; the exit status is then non-zero.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from invoke.exceptions import Exit

from fabfile.hosts import Target
from fabfile.remote import HostError, Shell

INDENT = "  "


@dataclass
class HostReport:
    """What happened on one host."""

    target: Target
    lines: list[str] = field(default_factory=list)
    code: int = 0
    error: str | None = None
    ran: bool = False

    @property
    def ok(self) -> bool:
        return self.code == 0

    def say(self, text: str) -> None:
        self.lines += text.rstrip("\n").splitlines() or [""]

    def fail(self, message: str, code: int = 1) -> None:
        self.error, self.code = message, code or 1

    def render(self) -> str:
        body = [INDENT + line if line else "" for line in self.lines]
        if self.error is not None:
            body.append(f"{INDENT}FAILED: {self.error}")
        return "\n".join([f"{self.target.name}:", *body])


Action = Callable[[Shell, HostReport], None]


def _serve(target: Target, config: Any, timeout: float, action: Action) -> HostReport:
    report = HostReport(target)
    try:
        shell = Shell(target, config, timeout)
    except HostError as exc:
        report.fail(str(exc), exc.code)
        return report
    try:
        shell.open()
        report.ran = True
        action(shell, report)
    except HostError as exc:
        report.fail(str(exc), exc.code)
    finally:
        shell.close()
    return report


def on_each(targets: Sequence[Target], config: Any, action: Action) -> list[HostReport]:
    """Run ``action`` on every target, in parallel; print each host's block in order."""
    settings = config.queue
    timeout = float(settings.command_timeout)
    workers = max(1, min(int(settings.parallel), len(targets)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fab-queue") as pool:
        futures = [pool.submit(_serve, target, config, timeout, action) for target in targets]
        reports = []
        for future in futures:
            report = future.result()
            print(report.render(), flush=True)
            reports.append(report)
    return reports


def on_one(targets: Sequence[Target], config: Any, action: Action) -> list[HostReport]:
    """Run ``action`` on the first host that can be reached (for commands on the shared database).

    Hosts tried before it that could not be reached are reported as skipped, not failed.
    """
    timeout = float(config.queue.command_timeout)
    reports = []
    for target in targets:
        report = _serve(target, config, timeout, action)
        reports.append(report)
        if report.ran:
            break
    if reports[-1].ran:
        for skipped in reports[:-1]:
            skipped.say(f"skipped: {skipped.error}")
            skipped.error, skipped.code = None, 0
    for report in reports:
        print(report.render(), flush=True)
    return reports


def finish(task: str, reports: Sequence[HostReport]) -> None:
    """Exit non-zero when a host failed; say which, in one line (on stderr)."""
    failed = [r for r in reports if not r.ok]
    if not failed:
        return
    codes = {r.code for r in failed}
    code = codes.pop() if len(codes) == 1 else 1
    names = ", ".join(r.target.name for r in failed)
    sys.stdout.flush()
    raise Exit(f"{task} failed on {len(failed)} of {len(reports)} host(s): {names}", code=code)
