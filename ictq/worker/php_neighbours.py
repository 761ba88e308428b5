"""PHP queue workers sharing a SQLite database with ictq's workers: refused.

Laravel 8's database queue reads then writes in a deferred SQLite transaction (``BEGIN``, a
``SELECT``, then ``UPDATE``/``DELETE``). SQLite cannot upgrade such a transaction while another
connection writes, and answers ``database is locked`` at once, without waiting: in either
journal mode, 2 to 4 of every 1,000 PHP jobs then stay reserved after running (their delete
failed) and run again after ``retry_after``. PHP workers alone, or ictq workers alone, do not
meet this (measured: docs/laravel.md). SQLite is a file on one host, so the PHP workers that
share it are on this host: :func:`php_queue_workers` finds them in ``/proc``.
"""

from __future__ import annotations

import os
from pathlib import Path

QUEUE_COMMANDS = ("queue:work", "queue:listen")


def php_queue_workers(app_dir: Path, database: str) -> list[int]:
    """The PIDs of ``php artisan queue:work`` / ``queue:listen`` processes of the Laravel app in
    ``app_dir``, or that have the SQLite file ``database`` open (empty where /proc is not)."""
    try:
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []
    app, target = os.path.realpath(app_dir), os.path.realpath(database)
    own = os.getpid()
    return [pid for pid in pids if pid != own and _is_php_queue_worker(pid) and _uses(pid, app, target)]


def _is_php_queue_worker(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            args = handle.read(4096).split(b"\0")
    except OSError:
        return False
    words = [arg.decode(errors="replace") for arg in args]
    return any(word.endswith("artisan") for word in words) and any(word in QUEUE_COMMANDS for word in words)


def _uses(pid: int, app: str, database: str) -> bool:
    try:
        if os.readlink(f"/proc/{pid}/cwd") == app:
            return True
    except OSError:
        pass
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == database:
                return True
        except OSError:
            continue
    return False
