"""``supervisorctl`` on a worker host: the program's processes, and its exit codes in words."""

from __future__ import annotations

from dataclasses import dataclass

from fabfile.remote import Output

#: supervisorctl status: 3 = some process not running, 4 = unknown name or supervisord unreachable.
NOT_RUNNING = 3
UNKNOWN = 4


@dataclass(frozen=True)
class Process:
    name: str
    state: str
    pid: int | None
    detail: str

    def line(self, width: int) -> str:
        return f"{self.name.ljust(width)}  {self.state.ljust(8)}  {self.detail}".rstrip()


def processes(output: Output) -> list[Process]:
    """The process lines of ``supervisorctl status`` (error lines are left out)."""
    found = []
    for line in output.stdout.splitlines():
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[1].isupper() or "ERROR" in parts[1] or ":" not in parts[0]:
            continue
        detail = parts[2].strip() if len(parts) > 2 else ""
        pid = None
        if detail.startswith("pid "):
            number = detail[4:].split(",", 1)[0]
            pid = int(number) if number.isdigit() else None
        found.append(Process(parts[0], parts[1], pid, detail))
    return found


def table(found: list[Process]) -> list[str]:
    width = max((len(p.name) for p in found), default=0)
    return [p.line(width) for p in found]


def summary(output: Output, program: str) -> tuple[int, str]:
    """(code, plain words) for ``supervisorctl status 'PROGRAM:*'``; code 0 when all run."""
    found = processes(output)
    text = output.text
    if output.exited == 0 and found:
        return 0, f"workers: all {len(found)} running"
    if output.exited == 0:
        return UNKNOWN, f"Supervisor lists no process of the program {program!r}"
    if output.exited == NOT_RUNNING:
        down = [p for p in found if p.state != "RUNNING"]
        states = ", ".join(sorted({p.state for p in down}))
        return NOT_RUNNING, (f"{len(down)} of {len(found)} workers not running ({states}) "
                             "(supervisorctl exit 3: some stopped)")
    if output.exited == UNKNOWN:
        if "no such group" in text or "no such process" in text:
            return UNKNOWN, (f"Supervisor does not know the program {program!r} (supervisorctl exit 4: unknown "
                             "program): deploy it, or check queue.program")
        if "no such file" in text or "refused connection" in text:
            return UNKNOWN, ("supervisord is not running (supervisorctl exit 4: cannot reach supervisord): "
                             "start it with `service supervisor start`")
        return UNKNOWN, f"unknown program or supervisord down (supervisorctl exit 4): {output.first_error()}"
    if "SHUTDOWN_STATE" in text:
        return output.exited, f"supervisord is shutting down (supervisorctl exit {output.exited})"
    if "command not found" in text or "No such file or directory" in text:
        return output.exited, "supervisorctl is not installed on this host"
    return output.exited, f"supervisorctl failed (exit {output.exited}): {output.first_error()}"
