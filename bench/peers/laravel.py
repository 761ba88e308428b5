"""The reference: Laravel's own database-queue algorithm in plain SQL, on Laravel's ``jobs`` table.

The worker (``python -m bench.peers.laravel``) does what ``Illuminate\\Queue\\DatabaseQueue::pop()``
and ``queue:work`` do with their defaults: one transaction per claim (SELECT the first available
or expired job of the queue ``FOR UPDATE SKIP LOCKED`` -- plain ``FOR UPDATE`` where the server
lacks it, nothing on SQLite --, UPDATE ``reserved_at``/``attempts``, COMMIT), run the job, then
``deleteReserved()`` (a transaction: SELECT the row FOR UPDATE, DELETE it); when the queue is
empty it sleeps ``--sleep`` (3 s); after an error while popping it sleeps 1 s, then 3 s.
The producer side is ``DatabaseQueue::push()`` (one INSERT) and ``bulk()`` (multi-row INSERTs).

Connection from the environment: ``BENCH_DIALECT`` (sqlite, pgsql, mysql), ``BENCH_DB_NAME``
(database, or the SQLite file), ``BENCH_DB_HOST``, ``BENCH_DB_PORT``, ``BENCH_DB_USER``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import sys
import time
import uuid
from collections.abc import Iterable, Mapping
from types import FrameType
from typing import Any

from bench.record import record

QUEUE = "default"
RETRY_AFTER = 90
SLEEP = 3.0
TABLE = "jobs"
BULK_CHUNK = 500  # rows per INSERT (SQLite and PostgreSQL bound the number of parameters)


def connect(env: Mapping[str, str]) -> Any:
    dialect = env["BENCH_DIALECT"]
    if dialect == "sqlite":
        # PDO's default busy timeout is 60 s; Laravel opens SQLite transactions with a plain BEGIN.
        return sqlite3.connect(env["BENCH_DB_NAME"], timeout=60, isolation_level=None)
    if dialect == "pgsql":
        import psycopg

        return psycopg.connect(host=env["BENCH_DB_HOST"], port=int(env["BENCH_DB_PORT"]),
                               user=env["BENCH_DB_USER"], dbname=env["BENCH_DB_NAME"])
    import pymysql

    return pymysql.connect(host=env["BENCH_DB_HOST"], port=int(env["BENCH_DB_PORT"]), user=env["BENCH_DB_USER"],
                           database=env["BENCH_DB_NAME"], autocommit=False)


def _sql(dialect: str, text: str) -> str:
    return text if dialect == "sqlite" else text.replace("?", "%s")


def _begin(dialect: str, conn: Any) -> None:
    if dialect == "sqlite":
        conn.execute("BEGIN")
    elif dialect == "mysql":
        conn.begin()
    # psycopg opens a transaction on the first statement


def lock_for_popping(dialect: str, conn: Any) -> str:
    """``DatabaseQueue::getLockForPopping()``."""
    if dialect == "sqlite":
        return ""
    cursor = conn.cursor()
    cursor.execute("SELECT version()")
    version = str(cursor.fetchone()[0])
    cursor.close()
    if dialect == "mysql":
        conn.commit()
        number = tuple(int(p) for p in version.split("-")[0].split(".")[:2])
        skip = number >= (10, 6) if "MariaDB" in version else number >= (8, 0)
        return " FOR UPDATE SKIP LOCKED" if skip else " FOR UPDATE"
    conn.commit()
    return " FOR UPDATE SKIP LOCKED"


def payload(data: Mapping[str, Any]) -> str:
    """A Laravel-shaped payload envelope around the job's arguments."""
    return json.dumps({
        "uuid": str(uuid.uuid4()), "displayName": "bench.noop",
        "job": "Illuminate\\Queue\\CallQueuedHandler@call", "maxTries": None, "maxExceptions": None,
        "failOnTimeout": False, "backoff": None, "timeout": None, "retryUntil": None,
        "data": {"commandName": "bench.noop", "command": dict(data)},
    }, separators=(",", ":"))


INSERT = f"INSERT INTO {TABLE} (queue, attempts, reserved_at, available_at, created_at, payload) VALUES "


def push(dialect: str, conn: Any, data: Mapping[str, Any]) -> None:
    """``DatabaseQueue::push()``: one INSERT, committed."""
    now = int(time.time())
    _begin(dialect, conn)
    cursor = conn.cursor()
    cursor.execute(_sql(dialect, INSERT + "(?, 0, NULL, ?, ?, ?)"), (QUEUE, now, now, payload(data)))
    conn.execute("COMMIT") if dialect == "sqlite" else conn.commit()


def bulk(dialect: str, conn: Any, items: Iterable[Mapping[str, Any]]) -> None:
    """``DatabaseQueue::bulk()``: multi-row INSERTs in one transaction."""
    now = int(time.time())
    rows = [(QUEUE, now, now, payload(data)) for data in items]
    _begin(dialect, conn)
    cursor = conn.cursor()
    for start in range(0, len(rows), BULK_CHUNK):
        chunk = rows[start:start + BULK_CHUNK]
        values = ",".join(["(?, 0, NULL, ?, ?, ?)"] * len(chunk))
        cursor.execute(_sql(dialect, INSERT + values), [v for row in chunk for v in row])
    conn.execute("COMMIT") if dialect == "sqlite" else conn.commit()


class _Stop(Exception):
    pass


class Worker:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.dialect = env["BENCH_DIALECT"]
        self.conn = connect(env)
        self.lock = lock_for_popping(self.dialect, self.conn)
        self.stopping = False
        self.sleeping = False
        self.select = _sql(self.dialect, (
            f"SELECT id, queue, payload, attempts, reserved_at, available_at, created_at FROM {TABLE} "
            "WHERE queue = ? AND ((reserved_at IS NULL AND available_at <= ?) OR (reserved_at <= ?)) "
            "ORDER BY id ASC LIMIT 1" + self.lock))
        self.reserve = _sql(self.dialect, f"UPDATE {TABLE} SET reserved_at = ?, attempts = ? WHERE id = ?")
        self.find = _sql(self.dialect, f"SELECT * FROM {TABLE} WHERE id = ? LIMIT 1"
                         + ("" if self.dialect == "sqlite" else " FOR UPDATE"))
        self.delete = _sql(self.dialect, f"DELETE FROM {TABLE} WHERE id = ?")

    def _commit(self) -> None:
        self.conn.execute("COMMIT") if self.dialect == "sqlite" else self.conn.commit()

    def _rollback(self) -> None:
        with contextlib.suppress(Exception):  # nothing to roll back
            self.conn.execute("ROLLBACK") if self.dialect == "sqlite" else self.conn.rollback()

    def pop(self) -> tuple[int, str] | None:
        """``DatabaseQueue::pop()``: claim one job in its own transaction."""
        now = int(time.time())
        _begin(self.dialect, self.conn)
        cursor = self.conn.cursor()
        cursor.execute(self.select, (QUEUE, now, now - RETRY_AFTER))
        row = cursor.fetchone()
        if row is None:
            self._commit()
            return None
        cursor.execute(self.reserve, (now, int(row[3]) + 1, row[0]))
        self._commit()
        return int(row[0]), str(row[2])

    def delete_reserved(self, job_id: int) -> None:
        """``DatabaseQueue::deleteReserved()``."""
        _begin(self.dialect, self.conn)
        cursor = self.conn.cursor()
        cursor.execute(self.find, (job_id,))
        if cursor.fetchone() is not None:
            cursor.execute(self.delete, (job_id,))
        self._commit()

    def sleep(self, seconds: float) -> None:
        if self.stopping:
            raise _Stop
        self.sleeping = True
        try:
            time.sleep(seconds)
        finally:
            self.sleeping = False

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        if self.sleeping:
            raise _Stop

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            signal.signal(signum, self.on_signal)
        try:
            while not self.stopping:
                try:
                    job = self.pop()
                except _Stop:
                    raise
                except Exception as exc:  # noqa: BLE001 - Worker::getNextJob() reports, sleeps 1 s
                    self._rollback()
                    print(f"laravel-ref: pop failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
                    self.sleep(1)
                    job = None
                if job is None:
                    self.sleep(SLEEP)
                    continue
                try:
                    command = json.loads(job[1])["data"]["command"]
                    record(int(command["seq"]), int(command["sent"]))
                    self.delete_reserved(job[0])
                except Exception as exc:  # noqa: BLE001 - Worker::runJob() reports and goes on
                    self._rollback()
                    print(f"laravel-ref: job {job[0]} failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        except _Stop:
            pass
        return 0


if __name__ == "__main__":
    sys.exit(Worker(os.environ).run())
