"""Logging trouble never stops a worker (issue 13, family 10).

A log file replaced by something that cannot be written (as a rotation by another tool can
leave it; we run as root, so a directory stands in for a file mode 0640 owned by root), its
directory removed, a full disk (``/dev/full``): every job still runs, none stays reserved, the
lines go to stderr with one warning and never a traceback, and the file takes lines again once
it can.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import ictq
import tests.support.jobs  # noqa: F401 - registers the test jobs in this process
from ictq import logs
from ictq.worker import Worker, WorkerOptions
from tests.support.app import App, count_rows


@ictq.job("logtrouble.sabotage")
def sabotage(path: str, how: str) -> None:
    """Does to the log file what an outside tool might, in the middle of the worker's batch."""
    log = Path(path)
    if how == "directory":
        log.rename(log.with_name(log.name + ".1"))
        log.mkdir()
    elif how == "restore":
        log.rmdir()
    elif how == "remove-directory":
        shutil.rmtree(log.parent)


@pytest.fixture
def logging_app(app: App, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    monkeypatch.setenv("ICTQ_TEST_OUT", str(app.out))
    monkeypatch.setattr(logs.ReopeningFileHandler, "check_every", 0.0)  # look at the file before every line
    yield app
    logs.setup(None, "INFO", [], stderr_level=logging.WARNING)


def work(app: App, steps: list[tuple[str, dict[str, object]]]) -> int:
    client = app.client()
    for name, data in steps:
        client.dispatch(name, data)
    client.close()
    settings = app.settings
    logger = logs.setup(settings.log_file, settings.log_level, settings.secrets)
    return Worker(settings, WorkerOptions(stop_when_empty=True, sleep=0, memory=0), logger=logger).run()


def records(first: int, last: int) -> list[tuple[str, dict[str, object]]]:
    return [("test.record", {"n": n}) for n in range(first, last + 1)]


def test_a_log_file_replaced_mid_batch_falls_back_to_stderr_and_comes_back(
        logging_app: App, capfd: pytest.CaptureFixture[str]) -> None:
    app, log = logging_app, str(logging_app.log)
    code = work(app, [*records(1, 5), ("logtrouble.sabotage", {"path": log, "how": "directory"}), *records(6, 10),
                      ("logtrouble.sabotage", {"path": log, "how": "restore"}), *records(11, 15)])
    err = capfd.readouterr().err
    assert code == 0
    assert sorted(map(int, app.executions())) == list(range(1, 16))
    storage = app.storage()
    assert count_rows(storage, "jobs") == 0 and count_rows(storage, "failed_jobs") == 0
    storage.close()
    assert "Traceback" not in err
    assert err.count("log-file-unwritable") == 1, err
    assert err.count("log-file-writable") == 1, err
    assert " INFO done " in err  # the lines written while the file could not be
    assert " INFO done " in app.log.read_text()  # and the file takes lines again


def test_a_removed_log_directory_does_not_stop_the_worker(logging_app: App, capfd: pytest.CaptureFixture[str]) -> None:
    app = logging_app
    code = work(app, [*records(1, 3), ("logtrouble.sabotage", {"path": str(app.log), "how": "remove-directory"}),
                      *records(4, 12)])
    err = capfd.readouterr().err
    assert code == 0
    assert sorted(map(int, app.executions())) == list(range(1, 13))
    storage = app.storage()
    assert count_rows(storage, "jobs") == 0
    storage.close()
    assert "Traceback" not in err and err.count("log-file-unwritable") == 1, err


def test_a_full_disk_gives_one_warning_and_no_traceback(sqlite_app: App) -> None:
    sqlite_app.write_env(ICTQ_LOG_FILE="/dev/full")
    client = sqlite_app.client()
    for n in range(1, 31):
        client.dispatch("test.record", {"n": n})
    client.dispatch("test.boom", {"message": "a failure is logged too"})
    client.close()
    result = sqlite_app.ictq("work", "--stop-when-empty", "--sleep", "0")
    assert result.returncode == 0, result.stderr
    assert sorted(map(int, sqlite_app.executions())) == list(range(1, 31))
    assert "Traceback" not in result.stderr
    assert result.stderr.count("log-file-unwritable") == 1, result.stderr
    assert "No space left on device" in result.stderr
    assert result.stderr.count(" ERROR failed ") == 1  # an error line once, not twice
    storage = sqlite_app.storage()
    assert count_rows(storage, "jobs") == 0 and count_rows(storage, "failed_jobs") == 1
    storage.close()
