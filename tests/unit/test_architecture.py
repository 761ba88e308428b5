"""The shape the package keeps: named SQL is called only from ``ictq/db/`` (its repositories),
and every exception class ictq defines lives in ``ictq/errors.py``.

(The import layers are checked by import-linter, run by ``make test``: see pyproject.toml.)
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "ictq"
NAMED_SQL_CALLS = {"run", "fetch", "_execute"}


def modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).as_posix()
        yield relative, ast.parse(path.read_text(encoding="utf-8"), filename=relative)


def named_sql_calls(tree: ast.Module) -> list[str]:
    """Calls such as ``storage.run("name", ...)`` or ``storage.sql["name"]``: a statement named by a string."""
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in NAMED_SQL_CALLS
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.append(f"line {node.lineno}: .{node.func.attr}({node.args[0].value!r})")
        if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "sql"
                and isinstance(node.slice, ast.Constant)):
            found.append(f"line {node.lineno}: .sql[{node.slice.value!r}]")
    return found


def test_the_checker_sees_a_named_statement_call() -> None:
    tree = ast.parse('storage.run("stats_put", row)\nrows = storage.fetch("worker_all")\nsql = self.sql["push"]')
    assert len(named_sql_calls(tree)) == 3


@pytest.mark.parametrize("module, tree", [pytest.param(name, tree, id=name) for name, tree in modules()
                                          if not name.startswith("ictq/db/")])
def test_only_the_db_layer_names_sql_statements(module: str, tree: ast.Module) -> None:
    assert named_sql_calls(tree) == [], f"{module} calls named SQL: go through a repository in ictq/db/"


def exception_classes(tree: ast.Module) -> list[str]:
    bases = {"Exception", "BaseException", "ValueError", "RuntimeError", "IctqError"}
    return [node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
            and any(isinstance(base, ast.Name) and (base.id in bases or base.id.endswith(("Error", "Exception")))
                    for base in node.bases)]


def test_every_exception_class_is_in_errors_py() -> None:
    elsewhere = {name: found for name, tree in modules() if name != "ictq/errors.py"
                 if (found := exception_classes(tree))}
    assert elsewhere == {}


def test_every_ictq_exception_but_forced_stop_is_an_ictq_error() -> None:
    import ictq.errors as errors

    classes = [value for value in vars(errors).values()
               if isinstance(value, type) and issubclass(value, BaseException) and value.__module__ == errors.__name__]
    outside = sorted(cls.__name__ for cls in classes if not issubclass(cls, errors.IctqError))
    assert outside == ["ForcedStop"]
