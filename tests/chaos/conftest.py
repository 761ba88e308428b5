"""Fault tests: ``app`` with a canary secret in .env (and, on MariaDB, as the real DB password)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.support import CANARY, canary_env
from tests.support.app import App, migrated_app
from tests.support.databases import DIALECTS, Database, mysql_admin

CHAOS_USER = "ictq_chaos"


@pytest.fixture(params=DIALECTS)
def chaos_dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _with_canary_user(database_name: str, env: dict[str, str]) -> dict[str, str]:
    """MariaDB: connect as a user whose password is the canary."""
    with mysql_admin() as conn, conn.cursor() as cursor:  # type: ignore[attr-defined]
        password = conn.escape(CANARY)  # type: ignore[attr-defined]
        for host in ("127.0.0.1", "localhost", "%"):
            cursor.execute(f"CREATE USER IF NOT EXISTS '{CHAOS_USER}'@'{host}' IDENTIFIED BY {password}")
            cursor.execute(f"GRANT ALL PRIVILEGES ON `{database_name}`.* TO '{CHAOS_USER}'@'{host}'")
    return {**env, "DB_USERNAME": CHAOS_USER, "DB_PASSWORD": CANARY}


def make_app(dialect: str, tmp_path: Path) -> Iterator[App]:
    def env(database: Database) -> dict[str, str]:
        lines = dict(database.env)
        if dialect == "mysql":
            lines = _with_canary_user(database.name, lines)
        return {**lines, **canary_env(dialect)}

    with migrated_app(dialect, tmp_path, env) as application:
        yield application


@pytest.fixture
def chaos_app(chaos_dialect: str, tmp_path: Path) -> Iterator[App]:
    yield from make_app(chaos_dialect, tmp_path)


@pytest.fixture(params=("pgsql", "mysql"))
def server_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[App]:
    yield from make_app(str(request.param), tmp_path)


@pytest.fixture
def sqlite_chaos_app(tmp_path: Path) -> Iterator[App]:
    yield from make_app("sqlite", tmp_path)
