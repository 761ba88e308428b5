"""PostgreSQL storage (psycopg 3): one-statement claims with ``FOR UPDATE SKIP LOCKED``."""

from __future__ import annotations

import select
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import psycopg

from ictq.db.base import NewJob, Reserved, Storage
from ictq.sql import load_queries
from ictq.wakeup import Waker


class PgsqlStorage(Storage):
    dialect = "pgsql"
    claim_is_one_statement = True
    listening = False

    def _connect(self) -> Any:
        conn = self._open()
        if self.worker and not self.db.worker_synchronous_commit:
            # A worker's writes (claims, acks, leases) need not wait for the WAL flush: if the
            # server crashes first, the job is simply unclaimed or unacknowledged and runs again
            # (at-least-once either way). Dispatches keep synchronous commits.
            conn.execute("SET synchronous_commit = off")
        if self.listening:
            conn.execute(load_queries(self.dialect, **self._placeholders())["listen"])
        return conn

    def _open(self) -> Any:
        return psycopg.connect(
            host=self.db.socket or self.db.host,
            port=self.db.port,
            dbname=self.db.database,
            user=self.db.username,
            password=self.db.password or None,
            autocommit=True,
            connect_timeout=5,
            application_name="ictq",
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
        )

    def _driver_error(self) -> type[BaseException]:
        return psycopg.Error

    def _is_missing_table(self, exc: BaseException) -> bool:
        return isinstance(exc, psycopg.errors.UndefinedTable)

    def _is_connection_error(self, exc: BaseException) -> bool:
        if isinstance(exc, psycopg.errors.OperationalError | psycopg.InterfaceError):
            return True
        return self._conn is not None and bool(self._conn.closed)

    def push_many(self, jobs: Iterable[NewJob]) -> int:
        count = 0
        with self.transaction(), self.connection.cursor().copy(self.sql["push_many"]) as copy:
            for job in jobs:
                copy.write_row((job.queue, job.payload, 0, job.available_at, job.created_at))
                count += 1
        return count

    def wait_for_work(self, seconds: float, waker: Waker, queues: Sequence[str], now: Callable[[], int],
                      retry_after: int) -> None:
        """LISTEN/NOTIFY: an insert into the jobs table (a trigger notifies) wakes the worker at
        once; the timeout (``--sleep``) is the polling fallback for a lost notification."""
        if not self.listening:
            self.listening = True
            self.close()  # reconnect with LISTEN
        with self._translated():
            conn = self.connection
            readable, _, _ = select.select([conn.fileno(), waker.fd], [], [], seconds)
            if waker.fd in readable:
                waker.drain()
            if conn.fileno() in readable or not readable:
                for _ in conn.notifies(timeout=0):
                    pass

    def _claim_rows(self, params: dict[str, Any]) -> list[Reserved]:
        return [Reserved(*row) for row in self._execute("claim", params).fetchall()]
