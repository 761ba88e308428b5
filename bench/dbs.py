"""Throw-away databases on the machine's own servers (loopback only), and their versions."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DIALECTS = ("sqlite", "pgsql", "mariadb")
HOST = "127.0.0.1"  # loopback only
PG_PORT, MY_PORT, USER, PG_ADMIN_DB = 5432, 3306, "root", "test"


@dataclass(frozen=True)
class Database:
    """One fresh database: ``name`` is the database (or the SQLite file)."""

    dialect: str  # sqlite, pgsql, mariadb
    name: str
    host: str = ""
    port: int = 0
    user: str = "root"

    @property
    def pg_dsn(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.name}"

    def ictq_env(self) -> dict[str, str]:
        """The ``.env`` keys that point ictq at this database."""
        if self.dialect == "sqlite":
            return {"DB_CONNECTION": "sqlite", "DB_DATABASE": self.name}
        return {"DB_CONNECTION": self.dialect, "DB_HOST": self.host, "DB_PORT": str(self.port),
                "DB_DATABASE": self.name, "DB_USERNAME": self.user, "DB_PASSWORD": ""}

    def laravel_env(self) -> dict[str, str]:
        """The connection of the plain-SQL reference (``bench.peers.laravel``)."""
        dialect = "mysql" if self.dialect == "mariadb" else self.dialect
        return {"BENCH_DIALECT": dialect, "BENCH_DB_NAME": self.name, "BENCH_DB_HOST": self.host,
                "BENCH_DB_PORT": str(self.port), "BENCH_DB_USER": self.user}


def _pg_admin() -> Any:
    import psycopg

    return psycopg.connect(host=HOST, port=PG_PORT, user=USER, dbname=PG_ADMIN_DB,
                           autocommit=True, connect_timeout=5)


def _my_admin() -> Any:
    import pymysql

    return pymysql.connect(host=HOST, port=MY_PORT, user=USER, autocommit=True,
                           connect_timeout=5)


@contextmanager
def fresh_database(dialect: str, workdir: Path) -> Iterator[Database]:
    """Create an empty database; drop it (or delete the file) when the block ends."""
    name = f"ictq_bench_{uuid.uuid4().hex[:12]}"
    if dialect == "sqlite":
        path = workdir / "database" / f"{name}.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            yield Database("sqlite", str(path))
        finally:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(str(path) + suffix).unlink(missing_ok=True)
        return
    if dialect == "pgsql":
        with _pg_admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            yield Database("pgsql", name, HOST, PG_PORT, USER)
        finally:
            with _pg_admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return
    _my_admin_execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    try:
        yield Database("mariadb", name, HOST, MY_PORT, USER)
    finally:
        _my_admin_execute(f"DROP DATABASE IF EXISTS `{name}`")


def _my_admin_execute(sql: str) -> None:
    conn = _my_admin()
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql)
    finally:
        conn.close()


def server_version(dialect: str) -> str:
    """The server's version string, or why it could not be had."""
    try:
        if dialect == "sqlite":
            return f"SQLite {sqlite3.sqlite_version}"
        if dialect == "pgsql":
            with _pg_admin() as conn:
                row = conn.execute("SHOW server_version").fetchone()
                return f"PostgreSQL {row[0] if row else '?'}"
        conn = _my_admin()
        try:
            with conn.cursor() as cursor:
                cursor.execute("SELECT version()")
                row = cursor.fetchone()
                return f"MariaDB {row[0] if row else '?'}"
        finally:
            conn.close()
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return f"{dialect}: unreachable ({type(exc).__name__}: {exc})"


def reachable(dialect: str) -> str | None:
    """None when the server answers, else the reason."""
    text = server_version(dialect)
    return text if "unreachable" in text else None
