"""The documentation's screenshots (docs/dashboard/*.png), taken from a realistic state: three
queues that real workers ran (one paused with jobs waiting, one with delayed jobs), two kinds of
ictq failures and a failure of the real Laravel application, two workers alive.

The charts' earlier minutes are filled in (the hour before the test, as the workers' history
module records it) so that the lines have a shape; the last minutes are the workers' own.

Saved into ``$ICTQ_SCREENSHOTS`` when set, else into the test's temporary directory:
``ICTQ_SCREENSHOTS=docs/dashboard pytest tests/browser/test_screenshots.py`` regenerates them."""

from __future__ import annotations

import math
import random
import struct
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from ictq import control
from ictq.db.history import HistoryRepository
from ictq.worker.history import JobHistory
from tests.browser.conftest import WIDTH, Browser, screenshots_dir
from tests.browser.work import BEAT, count, dispatch, failed_ids, wait_history
from tests.support.app import wait_for
from tests.support.dashboard import dashboard_server
from tests.support.laravel_app import LaravelApp, laravel_app

NAMES = ("overview.png", "charts.png", "failed.png", "failed-job.png")


@pytest.fixture
def laravel(tmp_path: Path) -> Iterator[LaravelApp]:
    with laravel_app("sqlite", tmp_path / "app") as application:
        yield application


def _backfill(app: LaravelApp, before: int) -> None:
    """An hour of history before the minute ``before`` (the workers' own): a load with its ups
    and downs, as the workers' history module records it."""
    chance = random.Random(7)
    recorded = JobHistory()
    for minute in range(before - 3600, before, 60):
        phase = (minute - before) / 3600 * 2 * math.pi
        for queue, job, base, runtime, failing in (("default", "test.slow", 40, 0.03, 0.0),
                                                   ("mail", "test.record", 18, 0.2, 0.08),
                                                   ("reports", "test.record", 6, 1.5, 0.15)):
            for _ in range(max(0, int(base * (1 + 0.5 * math.sin(phase)) + chance.gauss(0, base / 6)))):
                took = runtime * chance.lognormvariate(0, 0.4)
                started = minute + chance.uniform(0, 59 - took)
                outcome = "failed" if chance.random() < failing else "done"
                recorded.record(queue, job, outcome, took, started, int(started - chance.expovariate(1 / 0.4)))
    with closing(app.storage()) as storage:
        HistoryRepository(storage).add(recorded.take())


def _state(app: LaravelApp) -> int:
    """The realistic state; the id of the PHP failure (made first: PHP would take ictq's jobs)."""
    app.php("app:dispatch", "fail", "--count=1", "--queue=mail", "--tag=welcome")
    app.php("queue:work", "database", "--stop-when-empty", "--tries=1", "--sleep=1", "--queue=mail", timeout=180)
    php_failure, = failed_ids(app)
    dispatch(app, "test.slow", [{"n": n, "seconds": 0.02} for n in range(60)], queue="default")
    dispatch(app, "test.record", [{"n": n} for n in range(30)], queue="mail")
    dispatch(app, "test.boom", [{"message": "SMTP 550 5.1.1 mailbox unavailable"}] * 6, queue="mail")
    dispatch(app, "test.record", [{"n": n} for n in range(10)], queue="reports")
    dispatch(app, "test.boom", [{"message": "template reports/monthly.html not found"}] * 3, queue="reports")
    for name in ("web-1", "web-2"):
        app.worker("--queue", "default,mail,reports", "--sleep", "0.5", "--name", name, ICTQ_BEAT_EVERY=BEAT)
    wait_for(lambda: count(app, "jobs") == 0, timeout=60, what="the queues drained")
    wait_history(app, 100, 9)
    _backfill(app, int(time.time()) // 60 * 60)
    with closing(app.storage()) as storage:
        control.pause(storage, "reports", time.time())
    time.sleep(2)  # the workers' flags are at most a second old when they claim (ictq.worker.control)
    dispatch(app, "test.record", [{"n": n} for n in range(25)], queue="reports")
    client = app.client()
    try:
        for n in range(4):
            client.dispatch("test.record", {"n": 100 + n}, queue="mail", delay=600)
    finally:
        client.close()
    return php_failure


def _grouped(browser: Browser) -> bool:
    browser.open("/failed")
    return not browser.all("#ungrouped")


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    width, height = struct.unpack(">II", head[16:24])
    return int(width), int(height)


def test_screenshots_for_the_documentation(laravel: LaravelApp, driver: WebDriver, tmp_path: Path) -> None:
    app = laravel
    php_failure = _state(app)
    where = screenshots_dir(tmp_path)
    with dashboard_server(app, refresh_every=2, users_by_cli=False) as server:
        browser = Browser(driver, server)
        browser.login()
        browser.wait(lambda d: browser.text('[data-live="workers_alive"]') == "2", "two workers alive")
        browser.wait(lambda d: browser.text('#queues tr[data-queue="reports"] td[data-field="pending"]') == "25",
                     "the paused queue's jobs")
        browser.screenshot(where / "overview.png")
        browser.open("/charts")
        browser.screenshot(where / "charts.png")
        browser.wait(lambda d: _grouped(browser), "every failure grouped")
        assert len(browser.all("#groups tr[data-group]")) == 3
        browser.screenshot(where / "failed.png")
        browser.open(f"/failed/{php_failure}")
        assert browser.all("#php-command")
        browser.screenshot(where / "failed-job.png")
        assert not browser.csp_violations()
    for name in NAMES:
        width, height = _png_size(where / name)
        assert width == WIDTH and 600 <= height <= 4000, (name, width, height)
