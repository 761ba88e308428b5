"""The benchmarked systems: how each one's schema is made, its jobs queued and its workers started.

Every worker is the system's own documented command with its defaults; only what names the
application (job module, app, factory) is added. ``workers(target, 2)`` is the drain: two worker
processes (huey: its consumer with ``-w 2 -k process``, i.e. two worker processes).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.dbs import PGBOUNCER_DIALECTS, Database

Data = Mapping[str, Any]
JOB = "bench.noop"
FAILING_JOB = "bench.fail"


def tool(name: str) -> list[str]:
    """The venv's console script ``name`` (next to this interpreter)."""
    path = Path(sys.executable).parent / name
    return [str(path)] if path.exists() else [sys.executable, "-m", name]


@dataclass
class Target:
    """One system on one fresh database, in one scenario."""

    db: Database
    app_dir: Path
    out_dir: Path
    base_env: dict[str, str] = field(default_factory=dict)

    @property
    def env_file(self) -> Path:
        return self.app_dir / ".env"


class Producer:
    """Queues jobs from the benchmark process (the application side)."""

    def dispatch(self, data: Data) -> None:
        raise NotImplementedError

    def dispatch_many(self, items: Sequence[Data]) -> None:
        for data in items:
            self.dispatch(data)

    def dispatch_failing_many(self, items: Sequence[Data]) -> None:
        """Queue jobs that always fail (the ``fail`` scenario; systems with ``fails`` only)."""
        raise NotImplementedError

    def failed_count(self) -> int:
        """How many jobs the failed-jobs store holds now."""
        raise NotImplementedError

    def close(self) -> None:
        pass


def run_setup(argv: list[str], target: Target, env: Mapping[str, str], what: str) -> None:
    proc = subprocess.run(argv, cwd=target.app_dir, env={**target.base_env, **env}, capture_output=True,
                          text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-400:]}")


class System:
    name = ""
    dialects: tuple[str, ...] = ()
    module = ""  # imported to check the system is installed
    fails = False  # runs the ``fail`` scenario (an always-failing job, counted in its failed store)

    def available(self) -> str | None:
        try:
            __import__(self.module)
        except ImportError as exc:
            return f"not installed ({exc}); make bench installs the bench extra"
        return None

    def env(self, target: Target) -> dict[str, str]:
        return {}

    def setup(self, target: Target) -> None:
        pass

    def producer(self, target: Target) -> Producer:
        raise NotImplementedError

    def workers(self, target: Target, count: int) -> list[list[str]]:
        raise NotImplementedError


# --- ictq ------------------------------------------------------------------------------------


def write_ictq_env(target: Target) -> None:
    values = {"APP_NAME": "bench", "QUEUE_CONNECTION": "database", **target.db.ictq_env()}
    target.env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))


class _IctqProducer(Producer):
    def __init__(self, target: Target) -> None:
        import bench.peers.ictq_jobs  # noqa: F401 - registers bench.noop, as an application would
        from ictq.client import Client
        from ictq.config import load_settings

        self.client = Client(load_settings(target.env_file, environ={}))

    def dispatch(self, data: Data) -> None:
        self.client.dispatch(JOB, data)

    def dispatch_many(self, items: Sequence[Data]) -> None:
        self.client.dispatch_many(JOB, items)

    def dispatch_failing_many(self, items: Sequence[Data]) -> None:
        self.client.dispatch_many(FAILING_JOB, items)

    def failed_count(self) -> int:
        from datetime import datetime, timezone

        from ictq.db.failed_jobs import FailedJobsRepository

        counts = FailedJobsRepository(self.client.storage).counts(datetime.now(timezone.utc))
        return sum(queue.total for queue in counts)

    def close(self) -> None:
        self.client.close()


class Ictq(System):
    name = "ictq"
    dialects = ("sqlite", "pgsql", "mariadb", *PGBOUNCER_DIALECTS)  # the only one run through PgBouncer
    module = "ictq"
    fails = True

    def setup(self, target: Target) -> None:
        write_ictq_env(target)
        run_setup([*tool("ictq"), "--env-file", str(target.env_file), "migrate"], target, {}, "ictq migrate")

    def producer(self, target: Target) -> Producer:
        return _IctqProducer(target)

    def workers(self, target: Target, count: int) -> list[list[str]]:
        argv = [*tool("ictq"), "--env-file", str(target.env_file), "work", "--jobs", "bench.peers.ictq_jobs"]
        return [argv] * count


# --- Laravel's algorithm in plain SQL ----------------------------------------------------------


class _LaravelProducer(Producer):
    def __init__(self, env: Mapping[str, str]) -> None:
        from bench.peers import laravel

        self.laravel = laravel
        self.dialect = env["BENCH_DIALECT"]
        self.conn = laravel.connect(env)

    def dispatch(self, data: Data) -> None:
        self.laravel.push(self.dialect, self.conn, data)

    def dispatch_many(self, items: Sequence[Data]) -> None:
        self.laravel.bulk(self.dialect, self.conn, items)

    def close(self) -> None:
        self.conn.close()


class Laravel(System):
    name = "laravel-ref"
    dialects = ("sqlite", "pgsql", "mariadb")
    module = "bench.peers.laravel"

    def env(self, target: Target) -> dict[str, str]:
        return target.db.laravel_env()

    def setup(self, target: Target) -> None:
        write_ictq_env(target)  # the same Laravel jobs table, made by `ictq migrate`
        run_setup([*tool("ictq"), "--env-file", str(target.env_file), "migrate"], target, {}, "ictq migrate")

    def producer(self, target: Target) -> Producer:
        return _LaravelProducer(self.env(target))

    def workers(self, target: Target, count: int) -> list[list[str]]:
        return [[sys.executable, "-m", "bench.peers.laravel"]] * count


# --- procrastinate ---------------------------------------------------------------------------

PROCRASTINATE_APP = "bench.peers.procrastinate_app.app"


class _ProcrastinateProducer(Producer):
    def __init__(self, dsn: str) -> None:
        from bench.peers.procrastinate_app import make_app

        self.app = make_app(dsn)
        self.app.open()
        self.task = self.app.tasks[JOB]

    def dispatch(self, data: Data) -> None:
        self.task.defer(**data)

    def dispatch_many(self, items: Sequence[Data]) -> None:
        self.task.batch_defer(*[dict(d) for d in items])

    def close(self) -> None:
        self.app.close()


class Procrastinate(System):
    name = "procrastinate"
    dialects = ("pgsql",)
    module = "procrastinate"

    def env(self, target: Target) -> dict[str, str]:
        return {"BENCH_PG_DSN": target.db.pg_dsn}

    def setup(self, target: Target) -> None:
        run_setup([*tool("procrastinate"), f"--app={PROCRASTINATE_APP}", "schema", "--apply"], target,
                  self.env(target), "procrastinate schema --apply")

    def producer(self, target: Target) -> Producer:
        return _ProcrastinateProducer(target.db.pg_dsn)

    def workers(self, target: Target, count: int) -> list[list[str]]:
        return [[*tool("procrastinate"), f"--app={PROCRASTINATE_APP}", "worker"]] * count


# --- pgqueuer --------------------------------------------------------------------------------


class _PgqueuerProducer(Producer):
    def __init__(self, dsn: str) -> None:
        import asyncpg
        from pgqueuer.db import AsyncpgDriver
        from pgqueuer.queries import Queries

        self.loop = asyncio.new_event_loop()
        self.conn = self.loop.run_until_complete(asyncpg.connect(dsn))
        self.queries = Queries(AsyncpgDriver(self.conn))

    def dispatch(self, data: Data) -> None:
        self.loop.run_until_complete(self.queries.enqueue(JOB, json.dumps(data).encode()))

    def dispatch_many(self, items: Sequence[Data]) -> None:
        payloads: list[bytes | None] = [json.dumps(d).encode() for d in items]
        self.loop.run_until_complete(self.queries.enqueue([JOB] * len(payloads), payloads, [0] * len(payloads)))

    def close(self) -> None:
        self.loop.run_until_complete(self.conn.close())
        self.loop.close()


class Pgqueuer(System):
    name = "pgqueuer"
    dialects = ("pgsql",)
    module = "pgqueuer"

    def env(self, target: Target) -> dict[str, str]:
        return {"BENCH_PG_DSN": target.db.pg_dsn, "PGDSN": target.db.pg_dsn}

    def setup(self, target: Target) -> None:
        run_setup([*tool("pgq"), "install"], target, self.env(target), "pgq install")

    def producer(self, target: Target) -> Producer:
        return _PgqueuerProducer(target.db.pg_dsn)

    def workers(self, target: Target, count: int) -> list[list[str]]:
        return [[*tool("pgq"), "run", "bench.peers.pgqueuer_app:main"]] * count


# --- huey ------------------------------------------------------------------------------------


class _HueyProducer(Producer):
    def __init__(self, filename: str) -> None:
        from bench.peers.huey_app import make_huey

        self.huey, self.task = make_huey(filename)

    def dispatch(self, data: Data) -> None:
        self.task(**data)

    def close(self) -> None:
        self.huey.storage.close()


class Huey(System):
    name = "huey"
    dialects = ("sqlite",)
    module = "huey"

    def env(self, target: Target) -> dict[str, str]:
        return {"BENCH_HUEY_DB": target.db.name}

    def producer(self, target: Target) -> Producer:
        return _HueyProducer(target.db.name)

    def workers(self, target: Target, count: int) -> list[list[str]]:
        argv = [*tool("huey_consumer"), "bench.peers.huey_app.huey"]
        return [argv + (["-w", str(count), "-k", "process"] if count > 1 else [])]


SYSTEMS: dict[str, type[System]] = {
    "ictq": Ictq, "laravel-ref": Laravel, "procrastinate": Procrastinate, "pgqueuer": Pgqueuer, "huey": Huey,
}
