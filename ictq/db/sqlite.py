"""SQLite storage: the embedded default.

One writer at a time: a claim runs in ``BEGIN IMMEDIATE``, so two workers never claim the
same row. WAL journal by default (readers do not block the writer) with ``synchronous=FULL``,
so a committed dispatch survives a power loss; ``DB_SYNCHRONOUS=NORMAL`` trades that for speed
(a power loss may roll back the last transactions, never corrupt the file). A worker's own
connection uses ``NORMAL`` in WAL mode (see :meth:`SqliteStorage._synchronous`).
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ictq.db.base import Reserved, Storage
from ictq.errors import ConfigError, DatabaseRefused

# SQLite's primary result codes (the low byte of ``sqlite_errorcode``). Transient: busy or locked
# past the busy timeout, an I/O error, a full disk. Permanent: a file that cannot be opened
# (unreadable, a directory, a missing directory), that may not be written (read-only file,
# directory or mount), that is not a database, or that access is denied to.
_TRANSIENT_CODES = {5, 6, 10, 13}  # SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_FULL
_PERMANENT_CODES = {3, 8, 14, 23, 26}  # SQLITE_PERM, SQLITE_READONLY, SQLITE_CANTOPEN, SQLITE_AUTH, SQLITE_NOTADB


MIGRATE_WAIT_MS = 60_000


class SqliteStorage(Storage):
    dialect = "sqlite"
    failed_insert_before_check = True
    begin_sql = "BEGIN IMMEDIATE"

    def _connect(self) -> Any:
        if self.db.database != ":memory:" and not Path(self.db.database).parent.is_dir():
            raise ConfigError(f"DB_DATABASE: directory {Path(self.db.database).parent} does not exist")
        conn = sqlite3.connect(
            self.db.database,
            timeout=self.db.busy_timeout_ms / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        # Text that is not UTF-8 (written by some other program) must not make every read of the
        # row fail: it arrives with its bad bytes kept as surrogates, and the payload check says so.
        conn.text_factory = lambda raw: raw.decode("utf-8", "surrogateescape")
        conn.execute(f"PRAGMA busy_timeout = {int(self.db.busy_timeout_ms)}")
        conn.execute(f"PRAGMA journal_mode = {self.db.journal_mode}")
        conn.execute(f"PRAGMA synchronous = {self._synchronous()}")
        return conn

    def migrate(self) -> None:
        """As every dialect's, but waiting up to :data:`MIGRATE_WAIT_MS` for the lock (as
        MariaDB's ``GET_LOCK`` waits), not ``DB_BUSY_TIMEOUT``: many ``ictq migrate`` at once on
        a busy machine queue up behind each other's ``BEGIN IMMEDIATE`` and the WAL switch."""
        own = self.db
        self.close()
        self.db = dataclasses.replace(own, busy_timeout_ms=max(own.busy_timeout_ms, MIGRATE_WAIT_MS))
        try:
            super().migrate()
        finally:
            self.close()
            self.db = own

    def _synchronous(self) -> str:
        """``DB_SYNCHRONOUS``, except for a worker's own connection in WAL mode (unless
        ``DB_WORKER_SYNCHRONOUS_COMMIT=on``): its claims, acknowledgements and leases commit
        without waiting for fsync (``NORMAL``). A power loss may then undo the last of them,
        never corrupt the file, and those jobs simply run again (at-least-once either way).
        Dispatches, made on other connections, stay ``FULL``; their fsync also covers the
        worker's earlier commits in the same WAL."""
        wal = self.db.journal_mode.upper() == "WAL"
        if self.worker and wal and not self.db.worker_synchronous_commit and self.db.synchronous in ("FULL", "EXTRA"):
            return "NORMAL"
        return self.db.synchronous

    def _driver_error(self) -> type[BaseException]:
        return sqlite3.Error

    def _is_missing_table(self, exc: BaseException) -> bool:
        return "no such table" in str(exc)

    def _permanent_error(self, exc: BaseException) -> type[DatabaseRefused] | None:
        # "unable to open database file", "attempt to write a readonly database", "file is not a database"
        return DatabaseRefused if _primary_code(exc) in _PERMANENT_CODES else None

    def _is_duplicate_key(self, exc: BaseException) -> bool:
        return getattr(exc, "sqlite_errorcode", None) == _CONSTRAINT_UNIQUE

    def _is_connection_error(self, exc: BaseException) -> bool:
        # Busy past the timeout, I/O trouble, a full disk: transient from the worker's point of
        # view. A syntax or schema error ("no such column") is not.
        return _primary_code(exc) in _TRANSIENT_CODES

    def param_time(self, moment: datetime) -> Any:
        # Laravel's format for SQLite timestamps; sorts and compares as text.
        return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")

    def param_ids(self, ids: Sequence[int]) -> Any:
        return json.dumps([int(i) for i in ids])

    def param_texts(self, texts: Sequence[str]) -> Any:
        return json.dumps(list(texts))

    def _claim_rows(self, params: dict[str, Any]) -> list[Reserved]:
        # A payload another program stored as a BLOB arrives as bytes: decoded here as text is
        # (bad bytes kept as surrogates, which the payload check reports).
        return [Reserved(id, queue, payload if type(payload) is str else _text(payload), attempts, available_at)
                for id, queue, payload, attempts, available_at in self._execute("claim", params).fetchall()]


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return str(value)


# Before Python 3.11, sqlite3 errors carry no code: SQLite's messages for them instead.
_CODE_OF_MESSAGE = (("database is locked", 5), ("is busy", 5), ("table is locked", 6), ("disk i/o error", 10),
                    ("disk is full", 13), ("unable to open database file", 14),
                    ("attempt to write a readonly database", 8), ("file is not a database", 26))


_CONSTRAINT_UNIQUE = 2067  # SQLITE_CONSTRAINT_UNIQUE: a unique index refused a row


def _primary_code(exc: BaseException) -> int | None:
    """The primary SQLite result code of a driver error (None when it has none)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF
    message = str(exc).lower()
    return next((code for part, code in _CODE_OF_MESSAGE if part in message), None)
