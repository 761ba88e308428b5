"""PostgreSQL storage (psycopg 3): one-statement claims with ``FOR UPDATE SKIP LOCKED``."""

from __future__ import annotations

import select
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import Any, TypeVar

import psycopg

from ictq.db.base import AVAILABLE_AT_MAX, NewJob, Reserved, Storage, WakeSignal, available_at
from ictq.errors import DatabaseMisconfigured, DatabaseRefused
from ictq.sql import load_queries

COPY_BATCH = 256  # rows per COPY write: ~115 KB of ~450-byte rows, under psycopg's 128 KB largest send
_T = TypeVar("_T")
# Wrong settings, which no retry fixes: SQLSTATE 28000 (invalid authorization: no such role, no
# pg_hba.conf entry), 28P01 (wrong password), 3D000 (unknown database). libpq reports a failed
# connection attempt without its SQLSTATE, so the server's message says it there (in English,
# the server's default lc_messages).
_MISCONFIGURED_STATES = {"28000", "28P01", "3D000"}
_MISCONFIGURED_MESSAGES = ("password authentication failed", "no pg_hba.conf entry", "authentication failed for user",
                           "no password supplied", "does not exist", "is not permitted to log in",
                           "permission denied for database")
# The server refuses writes for good: a read-only transaction or hot standby (25006).
_REFUSED_STATES = {"25006"}


class PgsqlStorage(Storage):
    dialect = "pgsql"
    claim_is_one_statement = True
    attempts_limit = 32767  # smallint
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

    def _permanent_error(self, exc: BaseException) -> type[DatabaseRefused] | None:
        state = exc.diag.sqlstate if isinstance(exc, psycopg.Error) else None
        if state in _MISCONFIGURED_STATES:
            return DatabaseMisconfigured
        if state in _REFUSED_STATES:
            return DatabaseRefused
        if state is None and isinstance(exc, psycopg.OperationalError) and getattr(exc, "pgconn", None) is not None:
            # A failed connection attempt (psycopg sets ``pgconn`` then): the server's FATAL
            # message ("database ... does not exist"), or libpq's own "fe_sendauth: no password supplied".
            message = str(exc)
            start = max(message.find("FATAL:"), message.find("fe_sendauth"))
            if start >= 0 and any(part in message[start:] for part in _MISCONFIGURED_MESSAGES):
                return DatabaseMisconfigured
        return None

    def _is_connection_error(self, exc: BaseException) -> bool:
        if isinstance(exc, psycopg.errors.OperationalError | psycopg.InterfaceError):
            return True
        return self._conn is not None and bool(self._conn.closed)

    def push_many(self, jobs: Iterable[NewJob]) -> int:
        """COPY the jobs in blocks of :data:`COPY_BATCH` rows of COPY text, one ``write`` each:
        ``write_row`` per job costs more than formatting the rows here."""
        count = 0
        with self.transaction(), self.connection.cursor().copy(self.sql["push_many"]) as copy:
            for batch in _batches(jobs, COPY_BATCH):
                copy.write(copy_text(batch))
                count += len(batch)
        return count

    def wait_for_work(self, seconds: float, waker: WakeSignal, queues: Sequence[str], now: Callable[[], int],
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


def copy_text(jobs: Sequence[NewJob]) -> str:
    """The rows of ``jobs`` as COPY text (the columns of the ``push_many`` statement).

    For speed, the text fields are looked at once for the whole block: they rarely hold a
    character COPY must escape (backslash, tab, newline, carriage return; a JSON payload has a
    backslash only where its strings have an escape), and only then is each field escaped. A NUL
    is refused as psycopg's ``write_row`` refuses it.
    """
    if not all(0 <= at <= AVAILABLE_AT_MAX for _, _, at, _ in jobs):
        jobs = [job._replace(available_at=available_at(job.available_at)) for job in jobs]
    fields = "".join([f"{queue}{payload}" for queue, payload, _, _ in jobs])
    if "\x00" in fields:
        raise psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
    if "\\" in fields or "\t" in fields or "\n" in fields or "\r" in fields:
        return "".join([f"{_escape(queue)}\t{_escape(payload)}\t0\t{available_at}\t{created_at}\n"
                        for queue, payload, available_at, created_at in jobs])
    return "".join([f"{queue}\t{payload}\t0\t{available_at}\t{created_at}\n"
                    for queue, payload, available_at, created_at in jobs])


def _escape(field: str) -> str:
    """A text field for COPY's text format."""
    return field.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _batches(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch
