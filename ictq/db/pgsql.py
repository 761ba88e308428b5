"""PostgreSQL storage (psycopg 3): one-statement claims with ``FOR UPDATE SKIP LOCKED``.

As PostgreSQL is run at scale: ``DB_HOST`` may list several servers (libpq's failover: the first
that accepts writes is used, and a lost connection reconnects to whichever does now), and the
connection may go through PgBouncer (``DB_PGBOUNCER``). In transaction pooling no state may
outlive a transaction: no server-side prepared statements, ``SET LOCAL`` instead of ``SET``,
and ``LISTEN`` only on a direct connection (``DB_LISTEN_HOST``), else idle workers poll.
"""

from __future__ import annotations

import select
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import suppress
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
    failed_rows_as_arrays = True
    failed_insert_returns_uuids = True
    listening = False
    _listener: Any = None  # the direct LISTEN connection (DB_LISTEN_HOST), when there is one

    @property
    def _pooled_transactions(self) -> bool:
        """Through PgBouncer's transaction pooling: no session state survives a transaction."""
        return self.db.pgbouncer == "transaction"

    @property
    def _asynchronous_commits(self) -> bool:
        # A worker's writes (claims, acks, leases) need not wait for the WAL flush: if the
        # server crashes first, the job is simply unclaimed or unacknowledged and runs again
        # (at-least-once either way). Dispatches keep synchronous commits.
        return self.worker and not self.db.worker_synchronous_commit

    def _connect(self) -> Any:
        conn = self._open(self.db.socket or self.db.host, self.db.port_text)
        if self._asynchronous_commits and not self._pooled_transactions:
            conn.execute("SET synchronous_commit = off")
        if self.listening and not self.db.listen_host:
            conn.execute(load_queries(self.dialect, **self._placeholders())["listen"])
        return conn

    def _begin(self) -> str:
        if self._asynchronous_commits and self._pooled_transactions:
            return "BEGIN; SET LOCAL synchronous_commit = off"  # the session's SET would leak to others
        return self.begin_sql

    def _open(self, host: str, port: str) -> Any:
        return psycopg.connect(
            host=host,
            port=port,
            dbname=self.db.database,
            user=self.db.username,
            password=self.db.password or None,
            autocommit=True,
            connect_timeout=5,
            application_name=self.application_name,
            # PgBouncer 1.18 cannot carry a server-side prepared statement from one transaction
            # to the next; psycopg prepares a statement run 5 times unless told not to.
            prepare_threshold=None if self._pooled_transactions else 5,
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
            # Several hosts: the one that takes writes (the primary, wherever it is now).
            target_session_attrs="read-write" if "," in host else "any",
        )

    def server(self) -> str:
        conn = self._conn
        if conn is None or conn.closed:
            return ""
        return f"{conn.info.host}:{conn.info.port}"

    def close(self) -> None:
        super().close()
        listener, self._listener = self._listener, None
        if listener is not None:
            with suppress(Exception):  # a broken connection may fail to close; it is gone anyway
                listener.close()

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

    def push_payloads(self, queue: str, available_at: int, created_at: int, chunks: Iterable[Sequence[str]]) -> int:
        """COPY the jobs a chunk at a time, one ``write`` each (:func:`copy_chunk`)."""
        count = 0
        with self.transaction(), self.connection.cursor().copy(self.sql["push_many"]) as copy:
            for payloads in chunks:
                if payloads:
                    copy.write(copy_chunk(queue, available_at, created_at, payloads))
                    count += len(payloads)
        return count

    def wait_for_work(self, seconds: float, waker: WakeSignal, queues: Sequence[str], now: Callable[[], int],
                      retry_after: int) -> None:
        """LISTEN/NOTIFY: an insert into the jobs table (a trigger notifies) wakes the worker at
        once; the timeout (``--sleep``) is the polling fallback for a lost notification.

        The worker listens on its own connection, or on a direct one to ``DB_LISTEN_HOST``;
        through PgBouncer's transaction pooling without one it polls (:meth:`Storage.wait_for_work`).
        """
        if self._pooled_transactions and not self.db.listen_host:
            super().wait_for_work(seconds, waker, queues, now, retry_after)
            return
        if not self.listening:
            self.listening = True
            if not self.db.listen_host:
                self.close()  # reconnect with LISTEN
        with self._translated():
            conn = self._listening_connection()
            readable, _, _ = select.select([conn.fileno(), waker.fd], [], [], seconds)
            if waker.fd in readable:
                waker.drain()
            if conn.fileno() in readable or not readable:
                for _ in conn.notifies(timeout=0):
                    pass

    def _listening_connection(self) -> Any:
        """The connection that LISTENs: this storage's own, or the direct one to DB_LISTEN_HOST."""
        if not self.db.listen_host:
            return self.connection
        if self._listener is None or self._listener.closed:
            ports = ",".join(str(port) for port in self.db.listen_ports)
            listener = self._open(self.db.listen_host, ports)
            listener.execute(self.sql["listen"])
            self._listener = listener
        return self._listener

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


def copy_chunk(queue: str, at: int, created_at: int, payloads: Sequence[str]) -> str:
    """Jobs of one queue and moment as COPY text, given their payloads: the rows share all but
    the payload, so they are the payloads joined by the text between two of them (escaped only
    when one of them holds a character COPY must escape, as :func:`copy_text`)."""
    end = f"\t0\t{available_at(at)}\t{created_at}\n"
    queue_field = _field(queue)
    fields = "".join(payloads)
    if "\x00" in fields:
        raise psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
    if "\\" in fields or "\t" in fields or "\n" in fields or "\r" in fields:
        payloads = [_escape(text) for text in payloads]
    return f"{queue_field}\t{f'{end}{queue_field}{chr(9)}'.join(payloads)}{end}"


def _field(text: str) -> str:
    """One text field for COPY's text format, NUL refused (as psycopg's ``write_row`` refuses it)."""
    if "\x00" in text:
        raise psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
    return _escape(text)


def _escape(field: str) -> str:
    """A text field for COPY's text format."""
    return field.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _batches(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch
