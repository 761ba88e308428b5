from __future__ import annotations

import logging

import pytest

import ictq
from ictq import jobs, logs
from ictq.errors import ConfigError, DispatchError, UnknownJob
from ictq.sql import load_queries, statements


def test_decorator_registers_and_returns_a_callable_spec() -> None:
    @ictq.job("unit.add", queue="math", tries=3, backoff=[1, 2])
    def add(a: int, b: int) -> int:
        return a + b

    assert jobs.get("unit.add") is add
    assert add(a=1, b=2) == 3
    assert (add.queue, add.tries, add.backoff) == ("math", 3, (1, 2))


def test_unknown_names_and_bad_definitions_are_errors() -> None:
    with pytest.raises(UnknownJob, match="not registered"):
        jobs.get("unit.nope")
    with pytest.raises(ConfigError, match="backoff"):
        ictq.job("unit.bad", backoff=[-1])
    with pytest.raises(ConfigError, match="tries"):
        ictq.job("unit.bad", tries=-1)


def test_a_name_cannot_be_taken_by_another_function() -> None:
    @ictq.job("unit.once")
    def first() -> None: ...

    with pytest.raises(ConfigError, match="already registered"):
        @ictq.job("unit.once")
        def second() -> None: ...


def test_arguments_are_checked_against_the_handler() -> None:
    @ictq.job("unit.greet")
    def greet(name: str, polite: bool = True) -> None: ...

    jobs.check_arguments(greet, {"name": "x"})
    with pytest.raises(DispatchError, match="missing a required argument"):
        jobs.check_arguments(greet, {})
    with pytest.raises(DispatchError, match="unexpected keyword"):
        jobs.check_arguments(greet, {"name": "x", "loud": True})
    with pytest.raises(DispatchError, match="JSON object"):
        jobs.check_arguments(greet, ["x"])


def test_redactor_masks_secrets_in_messages_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("unit.redact")
    handler = logging.Handler()
    records: list[str] = []
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    handler.addFilter(logs.Redactor(["hunter22"]))
    logger.addHandler(handler)
    try:
        raise RuntimeError("login failed for hunter22")
    except RuntimeError:
        logger.exception("password %s rejected", "hunter22")
    logger.removeHandler(handler)
    assert records and all("hunter22" not in r for r in records)
    assert "********" in records[0] and "RuntimeError" in records[0]


def test_event_lines_have_stable_key_value_fields(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("unit.event")
    with caplog.at_level(logging.INFO, logger="unit.event"):
        logs.event(logger, logging.INFO, "done", job="a.b", id=3, reason="two words", skip=None)
        logs.event(logger, logging.DEBUG, "hidden", job="a.b")
    assert caplog.messages == ['done job=a.b id=3 reason="two words"']


@pytest.mark.parametrize("dialect", ["sqlite", "pgsql", "mysql"])
def test_every_dialect_defines_the_same_statements(dialect: str) -> None:
    queries = load_queries(dialect, jobs="jobs", failed_jobs="failed_jobs", cache="cache", skip_locked="SKIP LOCKED")
    required = {"schema", "push", "push_many", "delete", "release", "touch", "insert_failed"}
    assert required <= set(queries)
    assert "claim" in queries
    assert len(statements(queries["schema"])) >= 2
    assert all("--" not in sql for sql in queries.values())
