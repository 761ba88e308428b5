"""The overview's live numbers while two real workers drain a queue, without the page
reloading (dashboard.js under the CSP, fetching /api/overview every second); compared with the
tables whenever they stand still: once the queue is drained, and while it is paused."""

from __future__ import annotations

import time

from selenium.webdriver.remote.webdriver import WebDriver

from tests.browser.conftest import Browser
from tests.browser.work import BEAT, count, dispatch
from tests.support.app import App, wait_for

QUEUE = "live"
SLOW = 240  # jobs of 40 ms: two workers need at least 4.8 s, so the page sees the drain happen
FAILING = 10
MORE = 20
ROW = f'#queues tr[data-queue="{QUEUE}"]'


def _cell(browser: Browser, field: str) -> str:
    return browser.text(f'{ROW} td[data-field="{field}"]')


def _int_cell(browser: Browser, field: str) -> int:
    return int(_cell(browser, field))


def _mark(browser: Browser) -> None:
    """A marker only this page load holds: gone if the page reloads."""
    browser.driver.execute_script("window.__marker = 1;")


def _marked(browser: Browser) -> bool:
    return bool(browser.driver.execute_script("return window.__marker === 1;"))


def _updated(browser: Browser) -> str | None:
    return browser.find("body").get_attribute("data-updated")


def _updates(browser: Browser, count: int) -> None:
    """Wait for ``count`` more live updates of the page (each sets ``body[data-updated]`` to the
    moment of its data, a new second each time with one update a second)."""
    for _ in range(count):
        before = _updated(browser)
        browser.wait(lambda d, before=before: _updated(browser) != before, "a live update")  # type: ignore[misc]


def _db_pending(app: App) -> int:
    return count(app, "jobs", f"queue = '{QUEUE}' AND reserved_at IS NULL")


def _pending_seen(app: App, browser: Browser, total: int) -> list[int]:
    """Read the pending cell until it shows 0; every value it showed, in order. Each is checked
    against the table read just after it: pending only goes down here (nothing dispatches, no
    job is released), and the page's number was read from the table before, so it is at least
    the table's number now."""
    seen = [total]

    def drained(_: WebDriver) -> bool:
        value = _int_cell(browser, "pending")
        now = _db_pending(app)
        assert now <= value <= total, (value, now, seen)
        if value != seen[-1]:
            seen.append(value)
        return value == 0
    browser.wait(drained, "the pending cell to reach 0", timeout=120)
    return seen


def test_live_numbers_while_workers_drain_then_pause(app: App, browser: Browser) -> None:
    dispatch(app, "test.slow", [{"n": n, "seconds": 0.04} for n in range(SLOW)], queue=QUEUE)
    dispatch(app, "test.boom", [{"message": f"broken input {n}"} for n in range(FAILING)], queue=QUEUE)
    total = SLOW + FAILING
    browser.login()
    assert _int_cell(browser, "pending") == total == count(app, "jobs")
    assert browser.text('[data-live="workers_alive"]') == "0"
    assert _cell(browser, "paused") == "running"
    _mark(browser)

    for name in ("one", "two"):
        app.worker("--queue", QUEUE, "--sleep", "0.1", "--name", name, ICTQ_BEAT_EVERY=BEAT)
    browser.wait(lambda d: browser.text('[data-live="workers_alive"]') == "2", "Workers alive: 2")
    seen = _pending_seen(app, browser, total)
    # Only going down (nothing else dispatches), seen between full and empty, never reloaded.
    assert seen == sorted(seen, reverse=True) and any(0 < value < total for value in seen), seen
    assert _marked(browser), "the page reloaded"

    # Drained: the workers idle, the tables stand still; the cells become what they hold.
    wait_for(lambda: count(app, "jobs") == 0 and count(app, "failed_jobs") == FAILING, timeout=60,
             what="the queue drained and its failures written")
    browser.wait(lambda d: _int_cell(browser, "failed") == count(app, "failed_jobs", f"queue = '{QUEUE}'"),
                 "the failed cell to equal failed_jobs")
    browser.wait(lambda d: float(_cell(browser, "jobs_per_min")) > 0, "jobs/min from the history")
    browser.wait(lambda d: browser.text('[data-live="total.failed_last_hour"]') == str(FAILING),
                 "the failed-last-hour card")
    browser.wait(lambda d: _int_cell(browser, "reserved") == 0, "nothing reserved")
    _updates(browser, 2)
    assert (_int_cell(browser, "pending"), _int_cell(browser, "delayed"), _int_cell(browser, "reserved")) == (0, 0, 0)
    assert _int_cell(browser, "failed") == count(app, "failed_jobs") == FAILING
    assert _int_cell(browser, "workers") == 2 and browser.text('[data-live="workers_alive"]') == "2"
    assert len(app.executions()) == SLOW
    assert _marked(browser), "the page reloaded"
    assert not browser.csp_violations()

    _paused_queue_keeps_its_jobs(app, browser)
    assert not browser.csp_violations()
    # The check above can see a violation: an inline script the page is made to hold is refused.
    browser.driver.execute_script(
        "const s = document.createElement('script'); s.textContent = 'window.__inline = 1;';"
        "document.body.appendChild(s);")
    browser.wait(lambda d: browser.csp_violations(), "the browser to report the inline script refused")
    assert browser.driver.execute_script("return window.__inline === undefined;")


def _paused_queue_keeps_its_jobs(app: App, browser: Browser) -> None:
    """Pause from the page; jobs dispatched then stay pending (the page shows the table's count
    at every update); Resume runs them."""
    browser.submit("/queue/pause", scope=ROW)
    assert browser.text("#flash") == f"paused {QUEUE}"
    assert _cell(browser, "paused") == "paused"
    assert count(app, "ictq_control", f"name = 'pause:{QUEUE}'") == 1
    # A worker claims with flags read at most one second before (ictq.worker.control's interval):
    # two seconds after the pause, every claim knows it (a wait for a rule, not for the machine).
    time.sleep(2)
    _mark(browser)
    dispatch(app, "test.record", [{"n": 1000 + n} for n in range(MORE)], queue=QUEUE)
    browser.wait(lambda d: _int_cell(browser, "pending") == MORE, f"pending {MORE} while paused")
    for _ in range(3):
        _updates(browser, 1)
        assert _int_cell(browser, "pending") == count(app, "jobs", f"queue = '{QUEUE}'") == MORE
        assert _int_cell(browser, "reserved") == 0 and _cell(browser, "paused") == "paused"
    assert _marked(browser), "the page reloaded"
    assert len(app.executions()) == SLOW

    browser.submit("/queue/resume", scope=ROW)
    assert browser.text("#flash") == f"resumed {QUEUE}"
    assert _cell(browser, "paused") == "running"
    browser.wait(lambda d: _int_cell(browser, "pending") == 0, "the resumed queue drained")
    wait_for(lambda: count(app, "jobs") == 0 and len(app.executions()) == SLOW + MORE, timeout=60,
             what="the jobs dispatched while paused to run")

