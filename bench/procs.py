"""Worker processes: started in their own session, stopped with SIGTERM, killed if they linger;
their CPU time and resident memory read from /proc."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Workers:
    """A group of worker processes of one system (each the leader of its own process group)."""

    def __init__(self, argvs: list[list[str]], cwd: Path, env: Mapping[str, str], log_dir: Path) -> None:
        self.argvs = argvs
        self.cwd = cwd
        self.env = dict(env)
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for index, argv in enumerate(self.argvs):
            with open(self.log_dir / f"worker{index}.log", "ab") as log:
                self.procs.append(subprocess.Popen(
                    argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    start_new_session=True,
                ))

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def any_alive(self) -> bool:
        return any(p.poll() is None for p in self.procs)

    def describe_exit(self) -> str:
        codes = [p.poll() for p in self.procs]
        return f"workers exited early (exit codes {codes}): {self.log_tail()}"

    def log_tail(self, chars: int = 300) -> str:
        texts = []
        paths = sorted(self.log_dir.glob("worker*.log")) + sorted(self.cwd.glob("storage/logs/*.log"))
        for path in paths:
            text = path.read_text(errors="replace").strip()
            if text:
                texts.append(text[-chars:])
        return " | ".join(texts)[-chars * 2:] or "(no output)"

    def stop(self, grace: float = 10.0) -> list[int | None]:
        """SIGTERM every worker, wait up to ``grace`` seconds, then SIGKILL what is left of each group."""
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # the group we started: its leader and any children
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        return [p.returncode for p in self.procs]


def descendants(pid: int) -> list[int]:
    """``pid`` and all its live descendants."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            parents[int(entry)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    found = [pid]
    index = 0
    while index < len(found):
        current = found[index]
        found.extend(child for child, parent in parents.items() if parent == current)
        index += 1
    return found


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of ``pids`` and their descendants, in seconds."""
    ticks = 0
    for root in pids:
        for pid in descendants(root):
            try:
                with open(f"/proc/{pid}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])
            except (OSError, IndexError, ValueError):
                continue
    return ticks / CLOCK_TICKS


def rss_mb(pids: list[int]) -> float:
    """Resident memory (VmRSS) of ``pids`` and their descendants, in MB."""
    total_kb = 0
    for root in pids:
        for pid in descendants(root):
            try:
                with open(f"/proc/{pid}/status") as handle:
                    for line in handle:
                        if line.startswith("VmRSS:"):
                            total_kb += int(line.split()[1])
                            break
            except (OSError, ValueError):
                continue
    return total_kb / 1024
