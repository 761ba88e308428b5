"""Real database servers for the tests: a fresh database per test, dropped afterwards.

The servers are the machine's own (PostgreSQL and MariaDB on 127.0.0.1 by default; override
with ICTQ_TEST_PG_HOST / _PORT / _USER and ICTQ_TEST_MYSQL_HOST / _PORT / _USER). A server
that cannot be reached fails the test with the command that starts it: it is never skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

DIALECTS = ("sqlite", "pgsql", "mysql")

PG = {
    "host": os.environ.get("ICTQ_TEST_PG_HOST", "127.0.0.1"),
    "port": int(os.environ.get("ICTQ_TEST_PG_PORT", "5432")),
    "user": os.environ.get("ICTQ_TEST_PG_USER", "root"),
    "admin_db": os.environ.get("ICTQ_TEST_PG_DB", "test"),
}
MY = {
    "host": os.environ.get("ICTQ_TEST_MYSQL_HOST", "127.0.0.1"),
    "port": int(os.environ.get("ICTQ_TEST_MYSQL_PORT", "3306")),
    "user": os.environ.get("ICTQ_TEST_MYSQL_USER", "root"),
}
START_HINT = {
    "pgsql": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "mysql": "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd",
}


@dataclass
class Database:
    """One throw-away database and the .env lines that point at it."""

    dialect: str
    name: str
    env: dict[str, str] = field(default_factory=dict)


def _unreachable(dialect: str, exc: Exception) -> None:
    pytest.fail(f"{dialect} server not reachable ({exc}); start it with: {START_HINT[dialect]}", pytrace=False)


@contextmanager
def pg_admin() -> Iterator[object]:
    import psycopg

    try:
        conn = psycopg.connect(host=PG["host"], port=PG["port"], user=PG["user"], dbname=PG["admin_db"],
                               autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        _unreachable("pgsql", exc)
    try:
        yield conn
    finally:
        conn.close()


@contextmanager
def mysql_admin() -> Iterator[object]:
    import pymysql

    try:
        conn = pymysql.connect(host=MY["host"], port=MY["port"], user=MY["user"], autocommit=True,
                               connect_timeout=5)
    except pymysql.err.OperationalError as exc:
        _unreachable("mysql", exc)
    try:
        yield conn
    finally:
        conn.close()


@contextmanager
def fresh_database(dialect: str, workdir: Path) -> Iterator[Database]:
    """Create an empty database of ``dialect``; drop it when the block ends."""
    name = f"ictq_t_{uuid.uuid4().hex[:12]}"
    if dialect == "sqlite":
        path = workdir / "database" / f"{name}.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True)
        yield Database(dialect, name, {"DB_CONNECTION": "sqlite", "DB_DATABASE": str(path)})
        return
    if dialect == "pgsql":
        with pg_admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[attr-defined]
        try:
            yield Database(dialect, name, {
                "DB_CONNECTION": "pgsql", "DB_HOST": PG["host"], "DB_PORT": str(PG["port"]),
                "DB_DATABASE": name, "DB_USERNAME": PG["user"], "DB_PASSWORD": "",
            })
        finally:
            with pg_admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[attr-defined]
        return
    with mysql_admin() as conn, conn.cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    try:
        yield Database(dialect, name, {
            "DB_CONNECTION": "mariadb", "DB_HOST": MY["host"], "DB_PORT": str(MY["port"]),
            "DB_DATABASE": name, "DB_USERNAME": MY["user"], "DB_PASSWORD": "",
        })
    finally:
        with mysql_admin() as conn, conn.cursor() as cursor:  # type: ignore[attr-defined]
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
