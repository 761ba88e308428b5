"""PostgreSQL storage (psycopg 3): one-statement claims with ``FOR UPDATE SKIP LOCKED``."""

from __future__ import annotations

from typing import Any

import psycopg

from ictq.db.base import Reserved, Storage


class PgsqlStorage(Storage):
    dialect = "pgsql"

    def _connect(self) -> Any:
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

    def claim(self, queue: str, now: int, retry_after: int, limit: int) -> list[Reserved]:
        params = {"queue": queue, "now": now, "expired": now - retry_after, "limit": limit}
        rows = self.fetch("claim", params)
        return sorted((Reserved(*row) for row in rows), key=lambda job: job.id)
