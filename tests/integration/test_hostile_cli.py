"""Hostile input to the command line that reaches a database, on the three databases (issue 13):
names at the length of their columns, in any script; ``--data`` at its nesting limit; every
reading command's ``--json`` (``status`` included); a restart flag that is not a time; a worker
started with the largest values its options accept.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ictq.cli import main
from ictq.config import MAX_MEGABYTES, MAX_SECONDS, MAX_TRIES
from ictq.db.control import RESTART, ControlRepository
from tests.support.app import App, count_rows

PAUSABLE = 185  # ictq_control.name is varchar(191), the flag is "pause:" + the queue


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands run in this process read only the app's .env (as App.ictq's subprocesses do)."""
    import os

    for name in list(os.environ):
        if name.startswith(("DB_", "QUEUE_", "ICTQ_", "MAIL_")):
            monkeypatch.delenv(name)


def run(app: App, *argv: str) -> tuple[int, str, str]:
    """``ictq ARGV`` against the app, in this process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    code: Any = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(["--env-file", str(app.env_file), *argv])
        except SystemExit as exc:
            code = exc.code
    return int(code), out.getvalue(), err.getvalue()


def ok_json(app: App, *argv: str) -> Any:
    code, out, err = run(app, *argv, "--json")
    assert code == 0 and err == "", err
    return json.loads(out)


@contextlib.contextmanager
def emptied(app: App) -> Iterator[None]:
    """One database for every example of a property: empty its tables after each."""
    try:
        yield
    finally:
        storage = app.storage()
        with storage.transaction():
            cursor = storage.connection.cursor()
            for table in ("jobs", "failed_jobs", "ictq_control"):
                cursor.execute(f"DELETE FROM {table}")
        storage.close()


queue_names = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters=","),
    min_size=1, max_size=PAUSABLE,
).filter(lambda name: name == name.strip() and name.strip() != "")


@settings(max_examples=10)
@given(name=queue_names)
@example(name="q" * PAUSABLE)
@example(name="\U0001f600" * PAUSABLE)
@example(name="очередь-письма")
def test_any_name_the_cli_accepts_fits_its_columns_and_comes_back(app: App, name: str) -> None:
    with emptied(app):
        code, _, err = run(app, "dispatch", "test.record", "--data", '{"n": 1}', "--queue", name)
        assert code == 0, err
        sizes = ok_json(app, "size", "--queue", name)
        assert [row["queue"] for row in sizes["queues"]] == [name] and sizes["total"]["size"] == 1
        assert run(app, "pause", name)[0] == 0
        assert ok_json(app, "status")["paused"] == [name]
        assert run(app, "resume", name)[0] == 0
        assert ok_json(app, "status")["paused"] == []
        code, _, err = run(app, "clear", "--force", "--queue", name)
        assert code == 0, err
        assert count_rows(app.storage(), "jobs") == 0


def test_names_longer_than_their_columns_are_refused_before_the_database(app: App) -> None:
    for argv, option in ((("pause", "q" * (PAUSABLE + 1)), "QUEUE"),
                         (("dispatch", "test.record", "--queue", "q" * 256), "--queue")):
        code, out, err = run(app, *argv)
        assert code == 2 and out == "" and option in err and err.count("\n") == 1, err
    assert count_rows(app.storage(), "jobs") == 0 and count_rows(app.storage(), "ictq_control") == 0


def nested(depth: int) -> str:
    return '{"n": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


def test_data_nested_to_the_limit_is_queued_and_deeper_is_refused(app: App) -> None:
    code, _, err = run(app, "dispatch", "test.record", "--data", nested(64))
    assert code == 0, err
    code, _, err = run(app, "dispatch", "test.record", "--data", nested(65))
    assert code == 2 and "--data" in err and "64" in err and err.count("\n") == 1
    assert count_rows(app.storage(), "jobs") == 1


def test_every_reading_command_speaks_json(app: App) -> None:
    client = app.client()
    client.dispatch("test.record", {"n": 1}, queue="high")
    client.dispatch("test.record", {"n": 2}, queue="high", delay=60)
    client.close()
    assert run(app, "pause", "high")[0] == 0
    assert run(app, "restart")[0] == 0
    status = ok_json(app, "status")
    assert status["total"]["size"] == 2 and status["paused"] == ["high"]
    assert [q["queue"] for q in status["queues"]] == ["high"] and status["restart_requested_at"]
    assert status["failed"] == {"all": 0, "last_hour": 0}
    assert ok_json(app, "size")["total"]["delayed"] == 1
    assert len(ok_json(app, "list")) == 2
    assert ok_json(app, "failed") == [] and ok_json(app, "failed", "--group") == []
    assert ok_json(app, "workers") == []
    assert ok_json(app, "monitor", "high")["queues"][0]["size"] == 2


@pytest.mark.parametrize("stamp", ["not a time", "1e300", "-1e300", "nan", ""])
def test_status_survives_a_restart_flag_that_is_not_a_time(app: App, stamp: str) -> None:
    storage = app.storage()
    ControlRepository(storage).set(RESTART, stamp, int(time.time()))
    storage.close()
    code, out, err = run(app, "status")
    assert code == 0 and "last restart signal" in out, err
    assert "restart_requested_at" in ok_json(app, "status")


def test_a_worker_takes_the_largest_values_its_options_accept(app: App) -> None:
    client = app.client()
    client.dispatch("test.record", {"n": 7})
    client.close()
    worker = app.ictq("work", "--stop-when-empty", f"--timeout={MAX_SECONDS}", f"--max-time={MAX_SECONDS}",
                      f"--sleep={MAX_SECONDS}", f"--backoff={MAX_SECONDS},{MAX_SECONDS}", f"--tries={MAX_TRIES}",
                      f"--memory={MAX_MEGABYTES}", "--max-jobs=1000000000", "--rest=0")
    assert worker.returncode == 0, worker.stderr
    assert app.executions() == ["7"]
    assert count_rows(app.storage(), "jobs") == 0
