"""What the fault tests share: a Supervisor stand-in, database restarts, the canary secret."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from tests.support.app import App, rows, wait_for
from tests.support.databases import MY, PG

# A password-like value that must never be shown: it is in .env under several secret keys.
CANARY = "Cnry-7f3a9c21-Pw!"
SECRET_KEYS = ("APP_KEY", "ICT_API_TOKEN", "MAIL_PASSWORD")
STARTSECS = 1.0
BEAT_EVERY = "0.5"  # the workers' heartbeat here (ICTQ_BEAT_EVERY), not the production 5 s


@dataclass
class Exit:
    slot: int
    pid: int
    code: int
    lifetime: float
    killed: bool


@dataclass
class Supervisor:
    """Keeps ``count`` ``ictq work`` processes running, restarting any that exits (autorestart).

    Output goes to files (a pipe nobody reads would block a chatty worker). ``exits`` records
    every end with its exit code and lifetime, so a crash loop shows up. The workers beat every
    :data:`BEAT_EVERY` seconds, so dead ones are reaped (and statistics stored) without waiting
    on the production interval.
    """

    app: App
    count: int
    args: tuple[str, ...]
    restart_delay: float = 0.2
    procs: dict[int, tuple[subprocess.Popen[bytes], float]] = field(default_factory=dict)
    exits: list[Exit] = field(default_factory=list)
    killed_pids: set[int] = field(default_factory=set)
    starts: int = 0
    final_codes: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        for slot in range(self.count):
            self._spawn(slot)
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _spawn(self, slot: int) -> None:
        self.starts += 1
        out = (self.app.out / f"worker-{slot}-{self.starts}.out").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "ictq", "--env-file", str(self.app.env_file), "work", "--name", f"w{slot}",
             *self.args], cwd=self.app.root, env=self.app.env(ICTQ_BEAT_EVERY=BEAT_EVERY), stdout=out,
            stderr=subprocess.STDOUT)
        out.close()
        self.procs[slot] = (proc, time.monotonic())

    def _watch(self) -> None:
        while not self._stop.wait(0.05):
            with self._lock:
                for slot, (proc, started) in list(self.procs.items()):
                    code = proc.poll()
                    if code is None:
                        continue
                    killed = proc.pid in self.killed_pids
                    self.exits.append(Exit(slot, proc.pid, code, time.monotonic() - started, killed))
                    time.sleep(self.restart_delay)
                    self._spawn(slot)

    def kill_one(self, rng: random.Random) -> int:
        """``kill -9`` a random worker; the watcher starts a new one."""
        with self._lock:
            slot = rng.choice(sorted(self.procs))
            proc, _ = self.procs[slot]
            self.killed_pids.add(proc.pid)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)  # reaped at once: its pid is gone, so the heartbeats see it dead
            return proc.pid

    def unexpected_exits(self) -> list[Exit]:
        return [e for e in self.exits if not e.killed]

    def stop(self) -> None:
        """TERM everyone (finish the job, exit 0); KILL whoever does not go."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            # Like supervisord's startsecs: a worker still starting (interpreter and imports, before
            # it can handle TERM) is given its first second, and on a busy machine until it logs
            # that it started (its handlers are in place by then), before it is asked to stop.
            youngest = max((started for _, started in self.procs.values()), default=0.0)
            time.sleep(max(0.0, youngest + STARTSECS - time.monotonic()))
            deadline = time.monotonic() + 30
            for proc, _ in self.procs.values():
                while (proc.poll() is None and proc.pid not in self.killed_pids and time.monotonic() < deadline
                       and f"pid={proc.pid} " not in self.app.log_text()):
                    time.sleep(0.05)
            for proc, _ in self.procs.values():
                if proc.poll() is None and proc.pid not in self.killed_pids:
                    proc.send_signal(signal.SIGTERM)
            for slot, (proc, started) in self.procs.items():
                if proc.pid in self.killed_pids:  # killed just before the stop, not yet replaced
                    self.exits.append(Exit(slot, proc.pid, proc.wait(timeout=10), time.monotonic() - started, True))
                    continue
                try:
                    self.final_codes.append(proc.wait(timeout=30))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    self.final_codes.append(proc.wait(timeout=10))

    def output(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.app.out.glob("worker-*.out")))


def marks(app: App) -> list[tuple[int, int]]:
    """``(n, pid)`` of every execution of ``test.mark``, in order."""
    path = app.out / "marks"
    if not path.exists():
        return []
    found = []
    for line in path.read_text().split():
        n, pid = line.split(":")
        found.append((int(n), int(pid)))
    return found


def duplicates(executions: list[tuple[int, int]]) -> Counter[int]:
    counts = Counter(n for n, _ in executions)
    return Counter({n: c - 1 for n, c in counts.items() if c > 1})


def unexplained_duplicates(executions: list[tuple[int, int]], killed: set[int], window: int) -> list[int]:
    """Duplicated jobs with an earlier run that was not in flight at a kill.

    In flight at a kill: among the last ``window`` runs of the killed worker, i.e. run but not
    yet acknowledged (the worker deletes finished jobs in batches of at most one claim batch).
    """
    runs_of: dict[int, list[int]] = {}
    for n, pid in executions:
        runs_of.setdefault(pid, []).append(n)
    in_flight = {(pid, n) for pid in killed for n in runs_of.get(pid, [])[-window:]}
    seen: dict[int, list[int]] = {}
    for n, pid in executions:
        seen.setdefault(n, []).append(pid)
    bad = {n for n, pids in seen.items() for pid in pids[:-1] if (pid, n) not in in_flight}
    return sorted(bad)


# -- restarting the real database servers ----------------------------------------------------


def _pg_answers() -> bool:
    import psycopg

    try:
        psycopg.connect(host=PG["host"], port=PG["port"], user=PG["user"], dbname=PG["admin_db"],
                        connect_timeout=2).close()
    except psycopg.Error:
        return False
    return True


def _mysql_answers() -> bool:
    import pymysql

    try:
        pymysql.connect(host=MY["host"], port=MY["port"], user=MY["user"], connect_timeout=2).close()
    except pymysql.err.Error:
        return False
    return True


def server_answers(dialect: str) -> bool:
    return _pg_answers() if dialect == "pgsql" else _mysql_answers()


def _pg_cluster(action: str) -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action], check=True,
                   capture_output=True, timeout=120)


def stop_server(dialect: str) -> None:
    if dialect == "pgsql":
        _pg_cluster("stop")
    else:
        subprocess.run(["mysqladmin", f"-h{MY['host']}", f"-u{MY['user']}", "shutdown"], check=True,
                       capture_output=True, timeout=120)
    wait_for(lambda: not server_answers(dialect), timeout=60, interval=0.2, what=f"{dialect} to stop")


def start_server(dialect: str) -> None:
    if dialect == "pgsql":
        _pg_cluster("start")
    else:
        subprocess.run(["start-stop-daemon", "--start", "--oknodo", "--background", "--exec",
                        "/usr/sbin/mariadbd"], check=True, capture_output=True, timeout=60)
    wait_for(lambda: server_answers(dialect), timeout=120, interval=0.2, what=f"{dialect} to answer again")


@contextmanager
def server_down(dialect: str) -> Iterator[None]:
    """Stop the server for the block; always start it again, and wait until it answers."""
    try:
        stop_server(dialect)
        yield
    finally:
        if not server_answers(dialect):
            start_server(dialect)


# -- the canary --------------------------------------------------------------------------------


def leaks(app: App, extra: list[str]) -> list[str]:
    """Where the canary shows: log file, worker output, CLI output, failed_jobs rows, metrics page."""
    places: dict[str, str] = {"queue.log": app.log_text()}
    for path in app.root.rglob("*"):
        if path.is_file() and path.suffix in (".log", ".out") and path.stat().st_size < 50_000_000:
            places[str(path.relative_to(app.root))] = path.read_text(errors="replace")
    for args in (("failed", "--json"), ("failed", "--group", "--json"), ("size",), ("workers", "--all", "--json"),
                 ("status",), ("health", "--min-workers", "0"), ("metrics", "--once"), ("list",)):
        result = app.ictq(*args)
        places[f"ictq {' '.join(args)}"] = result.stdout + result.stderr
        assert "Traceback" not in result.stderr, (args, result.stderr)
    for index, text in enumerate(extra):
        places[f"extra #{index}"] = text
    storage = app.storage()
    try:
        for row in rows(storage, "SELECT id, uuid, connection, queue, payload, exception FROM failed_jobs"):
            places[f"failed_jobs id={row[0]}"] = " ".join(
                value.decode(errors="replace") if isinstance(value, bytes) else str(value) for value in row)
    finally:
        storage.close()
    return [where for where, text in places.items() if CANARY in text]


def canary_env(dialect: str) -> dict[str, str]:
    values = {key: CANARY for key in SECRET_KEYS if key != "MAIL_PASSWORD"}
    if dialect != "mysql":  # PostgreSQL trusts 127.0.0.1 here, SQLite has no password: harmless
        values["DB_PASSWORD"] = CANARY
    return values


def report(name: str, **figures: object) -> str:
    line = f"[chaos] {name}: " + " ".join(f"{k}={v}" for k, v in figures.items())
    print(line)
    return line
