"""A throw-away ICT application directory: a .env, a database, and ictq processes on it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ictq.client import Client
from ictq.config import Settings, load_settings
from ictq.db import Storage, open_storage
from tests.support.databases import Database, fresh_database

REPO = Path(__file__).resolve().parents[2]


class App:
    """An app dir whose ``.env`` points at one test database."""

    def __init__(self, root: Path, dialect: str, db_env: Mapping[str, str], **extra: str) -> None:
        self.root = root
        self.dialect = dialect
        self.out = root / "out"
        self.out.mkdir(exist_ok=True)
        self.env_file = root / ".env"
        self.values: dict[str, str] = {
            "APP_NAME": "ICT",
            "QUEUE_CONNECTION": "database",
            "DB_QUEUE_RETRY_AFTER": "90",
            "ICTQ_JOBS": "tests.support.jobs",
            **db_env,
            **extra,
        }
        self.write_env()
        self._procs: list[subprocess.Popen[str]] = []

    def write_env(self, **changes: str) -> None:
        self.values.update(changes)
        lines = [f"{key}={value}" for key, value in self.values.items()]
        self.env_file.write_text("\n".join(lines) + "\n")
        self.env_file.chmod(0o640)

    @property
    def settings(self) -> Settings:
        return load_settings(self.env_file, environ={})

    def storage(self) -> Storage:
        return open_storage(self.settings)

    def client(self, clock: Callable[[], float] = time.time) -> Client:
        return Client(self.settings, clock=clock)

    @property
    def log(self) -> Path:
        return self.root / "storage" / "logs" / "queue.log"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "QUEUE_", "ICTQ_", "MAIL_"))}
        env.update({"PYTHONPATH": str(REPO), "ICTQ_TEST_OUT": str(self.out), "PYTHONUNBUFFERED": "1"})
        env.update(extra)
        return env

    def ictq(
        self, *args: str, timeout: float = 60, input: str | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """Run the ``ictq`` CLI in the app dir and wait for it."""
        return subprocess.run(
            [sys.executable, "-m", "ictq", "--env-file", str(self.env_file), *args],
            cwd=self.root, env=self.env(**env), capture_output=True, text=True, timeout=timeout, input=input,
        )

    def worker(self, *args: str, **env: str) -> subprocess.Popen[str]:
        """Start ``ictq work`` in the background (stopped at teardown)."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "ictq", "--env-file", str(self.env_file), "work", *args],
            cwd=self.root, env=self.env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self._procs.append(proc)
        return proc

    def executions(self, name: str = "record") -> list[str]:
        """Lines the test jobs appended to out/<name> (one per execution)."""
        path = self.out / name
        return path.read_text().split() if path.exists() else []

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def stop_all(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()


@contextmanager
def migrated_app(dialect: str, root: Path, env: Callable[[Database], Mapping[str, str]] | None = None
                 ) -> Iterator[App]:
    """An app dir with a migrated queue on a fresh database of ``dialect``; ``env`` gives the
    .env lines for that database (default: its own). Every worker is stopped afterwards."""
    with fresh_database(dialect, root) as database:
        application = App(root, dialect, env(database) if env else database.env)
        client = application.client()
        client.migrate()
        client.close()
        try:
            yield application
        finally:
            application.stop_all()


def wait_for(predicate: Callable[[], Any], timeout: float = 30, interval: float = 0.05, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def count_rows(storage: Storage, table: str, where: str = "1=1") -> int:
    with storage._translated():
        cursor = storage.connection.cursor()
        cursor.execute(f"SELECT COUNT(*) FROM {table} WHERE {where}")
        return int(cursor.fetchone()[0])


def rows(storage: Storage, sql: str) -> list[tuple[Any, ...]]:
    with storage._translated():
        cursor = storage.connection.cursor()
        cursor.execute(sql)
        return list(cursor.fetchall())


def failed_numbers(storage: Storage) -> list[int]:
    """The ``n`` argument of every job in failed_jobs, sorted."""
    found = rows(storage, "SELECT payload FROM failed_jobs")
    return sorted(int(json.loads(payload)["data"]["n"]) for (payload,) in found)
