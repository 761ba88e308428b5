"""Every dialect defines the same named statements, file by file (the repositories in ``ictq/db``
call them by name on whichever database is configured)."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from ictq.sql import DIALECT_ONLY, load_queries

DIALECTS = ("sqlite", "pgsql", "mysql")
_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def names_by_file(dialect: str) -> dict[str, set[str]]:
    folder = resources.files("ictq.sql").joinpath(dialect)
    return {entry.name: set(_NAME.findall(entry.read_text(encoding="utf-8")))
            for entry in folder.iterdir() if entry.name.endswith(".sql")}


def shared(dialect: str) -> dict[str, set[str]]:
    return {file: names - DIALECT_ONLY[dialect] for file, names in names_by_file(dialect).items()}


@pytest.mark.parametrize("dialect", DIALECTS[1:])
def test_every_dialect_defines_the_same_statement_names_in_the_same_files(dialect: str) -> None:
    assert shared(dialect) == shared(DIALECTS[0])


def test_the_dialect_only_statements_are_few_and_named_where_they_live() -> None:
    assert set(DIALECT_ONLY) == set(DIALECTS)
    for dialect, only in DIALECT_ONLY.items():
        everything = set().union(*names_by_file(dialect).values())
        assert only <= everything, f"{dialect}: declared but not defined: {only - everything}"
        others = set().union(*(set().union(*names_by_file(d).values()) for d in DIALECTS if d != dialect))
        assert not only & others, f"{dialect}: defined by other dialects too: {only & others}"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_the_loader_sees_every_name_once(dialect: str) -> None:
    queries = load_queries(dialect, jobs="jobs", failed_jobs="failed_jobs", cache="cache", skip_locked="SKIP LOCKED")
    assert set(queries) == set().union(*names_by_file(dialect).values())
    assert all(sql.strip() for sql in queries.values())
