"""Shared fixtures: ``app`` is an application directory on a fresh database of each dialect."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.app import App
from tests.support.databases import DIALECTS, fresh_database


@pytest.fixture(params=DIALECTS)
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def app(dialect: str, tmp_path: Path) -> Iterator[App]:
    """An app dir with a migrated queue on a fresh database of ``dialect``."""
    with fresh_database(dialect, tmp_path) as database:
        application = App(tmp_path, dialect, database.env)
        client = application.client()
        client.migrate()
        client.close()
        try:
            yield application
        finally:
            application.stop_all()


@pytest.fixture
def sqlite_app(tmp_path: Path) -> Iterator[App]:
    """Like ``app``, on SQLite only (for behaviour that does not depend on the dialect)."""
    with fresh_database("sqlite", tmp_path) as database:
        application = App(tmp_path, "sqlite", database.env)
        client = application.client()
        client.migrate()
        client.close()
        try:
            yield application
        finally:
            application.stop_all()
