"""MySQL / MariaDB storage (PyMySQL).

MySQL has no ``UPDATE ... RETURNING``, so a claim is two statements in one transaction: a
``SELECT ... FOR UPDATE SKIP LOCKED`` of up to K rows, then one ``UPDATE`` of those ids. The
session runs at READ COMMITTED (fewer gap locks between workers) in UTC.
"""

from __future__ import annotations

import re
from typing import Any

import pymysql
import pymysql.constants.CLIENT

from ictq.db.base import Reserved, Storage
from ictq.errors import DatabaseMisconfigured, DatabaseRefused
from ictq.sql import statements

# Error codes worth a retry on a new connection: the connection is gone or refused, too many
# connections (1040), the server is going away, or the statement lost a deadlock / lock wait
# (1213, 1205).
_CONNECTION_ERRORS = {1040, 1053, 1077, 1152, 1158, 1159, 1160, 1161, 1205, 1213, 1927, 2002, 2003, 2006, 2013, 2055}
# Wrong settings, which no retry fixes: access denied (1044 to the database, 1045 for the user and
# password, 1698 without a password), unknown database (1049).
_MISCONFIGURED = {1044, 1045, 1049, 1698}
# The server will not take writes for good: a read-only server (1290 --read-only, 1836 read-only mode).
_REFUSED = {1290, 1836}


class MysqlStorage(Storage):
    dialect = "mysql"
    failed_insert_before_check = True  # a duplicate key undoes the statement alone (InnoDB); fail_many redoes the batch
    begin_sql = "START TRANSACTION"
    attempts_limit = 255  # Laravel's migration: tinyint unsigned (ictq's own: smallint unsigned)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._skip_locked = "SKIP LOCKED"

    def _connect(self) -> Any:
        conn = pymysql.connect(
            host=self.db.host,
            port=self.db.port,
            unix_socket=self.db.socket or None,
            user=self.db.username,
            password=self.db.password,
            database=self.db.database,
            autocommit=True,
            charset="utf8mb4",
            connect_timeout=5,
            read_timeout=60,
            write_timeout=60,
            client_flag=pymysql.constants.CLIENT.FOUND_ROWS,  # rowcount = rows matched, not changed
        )
        with conn.cursor() as cursor:
            cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
            cursor.execute("SET time_zone = '+00:00'")
            cursor.execute("SELECT VERSION()")
            self._skip_locked = "SKIP LOCKED" if supports_skip_locked(cursor.fetchone()[0]) else ""
        return conn

    def _placeholders(self) -> dict[str, str]:
        return {**super()._placeholders(), "skip_locked": self._skip_locked}

    def _driver_error(self) -> type[BaseException]:
        error: type[BaseException] = pymysql.err.MySQLError
        return error

    def _is_missing_table(self, exc: BaseException) -> bool:
        return bool(exc.args) and exc.args[0] == 1146

    def _permanent_error(self, exc: BaseException) -> type[DatabaseRefused] | None:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        if code in _MISCONFIGURED:
            return DatabaseMisconfigured
        return DatabaseRefused if code in _REFUSED else None

    def _is_connection_error(self, exc: BaseException) -> bool:
        if isinstance(exc, pymysql.err.InterfaceError):
            return True
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        return code in _CONNECTION_ERRORS

    def _is_duplicate_key(self, exc: BaseException) -> bool:
        return bool(exc.args) and exc.args[0] == 1062  # ER_DUP_ENTRY

    def _inserted_id(self, cursor: Any) -> int:
        return int(cursor.lastrowid)

    def _claim_rows(self, params: dict[str, Any]) -> list[Reserved]:
        # The claim statement of mysql/queue.sql is two statements (splitting it costs ~2 µs per claim).
        lock, reserve = statements(self.sql["claim"])
        cursor = self.connection.cursor()
        cursor.execute(lock, params)
        rows = cursor.fetchall()
        if rows:
            cursor.execute(reserve, {"now": params["now"], "ids": [row[0] for row in rows],
                                     "max_attempts": self.attempts_limit})
        limit = self.attempts_limit
        return [Reserved(id, queue, payload, attempts + 1 if attempts < limit else attempts, available_at)
                for id, queue, payload, attempts, available_at in rows]

    def _deleted_ids(self, params: dict[str, Any]) -> list[Any]:
        # The fail_delete_many statement of mysql/queue.sql is two: lock the rows still held, delete them.
        lock, delete = statements(self.sql["fail_delete_many"])
        cursor = self.connection.cursor()
        cursor.execute(lock, params)
        ids = [job_id for (job_id,) in cursor.fetchall()]
        if ids:
            cursor.execute(delete, params)
        return ids


def supports_skip_locked(version: str) -> bool:
    """MariaDB >= 10.6 and MySQL >= 8.0.1 know ``SKIP LOCKED``."""
    match = re.match(r"(\d+)\.(\d+)\.(\d+)", version)
    if not match:
        return False
    major, minor, patch = (int(part) for part in match.groups())
    if "mariadb" in version.lower():
        return (major, minor) >= (10, 6)
    return (major, minor, patch) >= (8, 0, 1)
