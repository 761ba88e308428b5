"""Throw-away databases on the machine's own servers (loopback only), and their versions."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DIALECTS = ("sqlite", "pgsql", "mariadb")  # the database servers
HOST = "127.0.0.1"  # loopback only
PG_PORT, MY_PORT, USER, PG_ADMIN_DB = 5432, 3306, "root", "test"

# PostgreSQL through PgBouncer (ictq only): a fresh database on the same server, reached through a
# pgbouncer the bench starts (bench/pgbouncer.py) in the pool mode of the name. In transaction
# pooling idle workers poll, or, in "-listen", LISTEN on a direct connection to the server.
PGBOUNCER_SESSION = "pgsql-pgbouncer-session"
PGBOUNCER_TRANSACTION = "pgsql-pgbouncer-transaction"
PGBOUNCER_TRANSACTION_LISTEN = "pgsql-pgbouncer-transaction-listen"
PGBOUNCER_MODE = {PGBOUNCER_SESSION: "session", PGBOUNCER_TRANSACTION: "transaction",
                  PGBOUNCER_TRANSACTION_LISTEN: "transaction"}
PGBOUNCER_DIALECTS = tuple(PGBOUNCER_MODE)
ALL_DIALECTS = ("sqlite", "pgsql", *PGBOUNCER_DIALECTS, "mariadb")  # the run's (and the tables') order
ALIASES = {"pgbouncer": PGBOUNCER_DIALECTS}  # --db pgbouncer: the three of them
LABEL = {"sqlite": "SQLite", "pgsql": "PostgreSQL", "mariadb": "MariaDB",
         PGBOUNCER_SESSION: "PostgreSQL via PgBouncer (session)",
         PGBOUNCER_TRANSACTION: "PostgreSQL via PgBouncer (transaction, polling)",
         PGBOUNCER_TRANSACTION_LISTEN: "PostgreSQL via PgBouncer (transaction, LISTEN direct)"}


def server(dialect: str) -> str:
    """The database server behind ``dialect`` (``pgsql`` for the PgBouncer ones)."""
    return "pgsql" if dialect in PGBOUNCER_MODE else dialect


def pgbouncer_env(dialect: str, port: int) -> dict[str, str]:
    """The ``.env`` keys that send ictq through the pgbouncer on ``port`` (for a PgBouncer dialect)."""
    env = {"DB_HOST": HOST, "DB_PORT": str(port), "DB_PGBOUNCER": PGBOUNCER_MODE[dialect]}
    if dialect == PGBOUNCER_TRANSACTION_LISTEN:
        env.update({"DB_LISTEN_HOST": HOST, "DB_LISTEN_PORT": str(PG_PORT)})
    return env


@dataclass(frozen=True)
class Database:
    """One fresh database: ``name`` is the database (or the SQLite file)."""

    dialect: str  # sqlite, pgsql, mariadb
    name: str
    host: str = ""
    port: int = 0
    user: str = "root"
    extra_env: tuple[tuple[str, str], ...] = ()  # ictq's .env beyond these (PgBouncer)

    @property
    def pg_dsn(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.name}"

    def ictq_env(self) -> dict[str, str]:
        """The ``.env`` keys that point ictq at this database."""
        if self.dialect == "sqlite":
            return {"DB_CONNECTION": "sqlite", "DB_DATABASE": self.name}
        return {"DB_CONNECTION": self.dialect, "DB_HOST": self.host, "DB_PORT": str(self.port),
                "DB_DATABASE": self.name, "DB_USERNAME": self.user, "DB_PASSWORD": "", **dict(self.extra_env)}

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
def fresh_database(dialect: str, workdir: Path, pgbouncer_ports: Mapping[str, int] | None = None) -> Iterator[Database]:
    """Create an empty database; drop it (or delete the file) when the block ends. A PgBouncer
    dialect's database is on the PostgreSQL server, reached through the running pgbouncer of its
    pool mode (``pgbouncer_ports``: mode -> port)."""
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
    if server(dialect) == "pgsql":
        database = Database("pgsql", name, HOST, PG_PORT, USER)
        if dialect in PGBOUNCER_MODE:
            port = (pgbouncer_ports or {}).get(PGBOUNCER_MODE[dialect])
            if port is None:
                raise RuntimeError(f"no pgbouncer in {PGBOUNCER_MODE[dialect]} pooling is running")
            env = pgbouncer_env(dialect, port)
            database = Database("pgsql", name, HOST, port, USER, tuple(env.items()))
        with _pg_admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            yield database
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
    if dialect in PGBOUNCER_MODE:
        from bench import pgbouncer

        return pgbouncer.version()
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
    """None when the server answers (and, for a PgBouncer dialect, pgbouncer is installed), else the reason."""
    if dialect in PGBOUNCER_MODE:
        from bench import pgbouncer

        if pgbouncer.binary() is None:
            return f"pgbouncer is not installed ({pgbouncer.INSTALL_HINT})"
    text = server_version(server(dialect))
    return text if "unreachable" in text else None
