"""Shared fixtures: ``app`` is an application directory on a fresh database of each dialect."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.support.app import App, migrated_app
from tests.support.databases import DIALECTS

# Property-based tests (Hypothesis): bounded example counts so `make test` stays within its time,
# no deadline (a busy CI machine must not fail a test by its pace), and derandomized, so a run on
# CI tries the same examples as the run before it. A test that works on a database shares one
# fresh database between its examples (function-scoped fixtures are allowed on purpose);
# HYPOTHESIS_PROFILE=thorough tries many more.
settings.register_profile(
    "ci", max_examples=25, deadline=None, derandomize=True, print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough", max_examples=500, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


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
