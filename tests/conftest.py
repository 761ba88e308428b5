"""Shared fixtures: ``app`` is an application directory on a fresh database of each dialect."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.app import App, migrated_app
from tests.support.databases import DIALECTS


@pytest.fixture(params=DIALECTS)
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def app(dialect: str, tmp_path: Path) -> Iterator[App]:
    """An app dir with a migrated queue on a fresh database of ``dialect``."""
    with migrated_app(dialect, tmp_path) as application:
        yield application


@pytest.fixture
def sqlite_app(tmp_path: Path) -> Iterator[App]:
    """Like ``app``, on SQLite only (for behaviour that does not depend on the dialect)."""
    with migrated_app("sqlite", tmp_path) as application:
        yield application
