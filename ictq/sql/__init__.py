"""Named SQL statements: one folder per dialect (``sqlite/``, ``pgsql/``, ``mysql/``), each
holding ``.sql`` files of ``-- name: ...`` blocks, loaded once.

Names are unique across a dialect's files, except ``schema``: every file may have one (its
tables, created idempotently), and ``migrate`` runs them all, in file-name order.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$")
SCHEMA = "schema"
# Every dialect defines the same statement names, except these: statements of a mechanism only
# one database has (PostgreSQL's LISTEN/NOTIFY wake-up). tests/unit/test_sql_names.py checks it.
DIALECT_ONLY: Mapping[str, frozenset[str]] = {"sqlite": frozenset(), "pgsql": frozenset({"listen"}),
                                              "mysql": frozenset()}


@functools.cache
def _raw_queries(dialect: str) -> Mapping[str, str]:
    folder = resources.files(__package__).joinpath(dialect)
    files = sorted((entry for entry in folder.iterdir() if entry.name.endswith(".sql")), key=lambda e: e.name)
    queries: dict[str, str] = {}
    for entry in files:
        for name, sql in _parse(entry.read_text(encoding="utf-8")).items():
            if name == SCHEMA:
                queries[SCHEMA] = f"{queries[SCHEMA]};\n{sql}" if SCHEMA in queries else sql
            elif name in queries:
                raise RuntimeError(f"SQL statement {name!r} is defined twice for {dialect}")
            else:
                queries[name] = sql
    return queries


def _parse(text: str) -> dict[str, str]:
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        match = _NAME.match(line)
        if match:
            current = blocks.setdefault(match.group(1), [])
        elif current is not None and not line.lstrip().startswith("--"):
            current.append(line)
    return {name: "\n".join(lines).strip().rstrip(";") for name, lines in blocks.items()}


def load_queries(dialect: str, **names: str) -> dict[str, str]:
    """The dialect's statements with ``{placeholders}`` (table names) filled in."""
    return {name: sql.format(**names) for name, sql in _raw_queries(dialect).items()}


def statements(script: str) -> list[str]:
    """Split a multi-statement block (such as ``schema``) into single statements."""
    return [part.strip() for part in re.split(r";\s*(?:\n|$)", script) if part.strip()]
