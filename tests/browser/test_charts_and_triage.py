"""After real workers ran jobs (some failing, two kinds of failure on two queues): the charts
drawn from their history match the history, and the failed jobs are retried and forgotten from
the page, one by one and by group, each change seen in the tables."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import Browser
from tests.browser.work import count, dispatch, drain, failed_ids, queued_uuids, uuid_of_failed, wait_history
from tests.support.app import App

# queue -> (jobs that succeed, failing jobs, their error)
WORK = {"mail": (12, 4, "SMTP server refused the message"), "reports": (8, 3, "report template missing")}
STEPS = {"hour": 60, "day": 900, "week": 7200}


def _figure(kind: str) -> str:
    return f'figure[data-chart^="{kind}"]'


def _values(browser: Browser, kind: str, series: str) -> list[float]:
    return [float(dot.get_attribute("data-value") or "nan")
            for dot in browser.all(f"{_figure(kind)} circle.dot.{series}")]


def _dot_titles(browser: Browser, kind: str, series: str) -> list[str]:
    return [str(title.get_attribute("textContent"))
            for title in browser.all(f"{_figure(kind)} circle.dot.{series} title")]


def _check_charts(browser: Browser, span: str, processed: int, failed: int, query: str = "") -> None:
    """The page /charts?span=...: four charts; the throughput's and the failures' dots add up
    to the history (exactly per minute on the hour span; within their rounding otherwise)."""
    browser.open(f"/charts?span={span}{query}")
    assert len(browser.all("figure.chart svg")) == 4, span
    assert browser.all(f'{_figure("Throughput")} polyline[data-series="done"]'), span
    per_min = 60 / STEPS[span]
    done, failures = _values(browser, "Throughput", "done"), _values(browser, "Failures", "failed")
    assert done and failures, (span, query)
    slack = 0.005 / per_min * (len(done) + len(failures))  # each value is rounded to 2 decimals
    assert abs(sum(done) / per_min - processed) <= slack, (span, query, done)
    assert abs(sum(failures) / per_min - failed) <= slack, (span, query, failures)
    assert all(title.split(": ")[0].endswith("done") for title in _dot_titles(browser, "Throughput", "done"))
    assert browser.all(f'{_figure("Runtime")} polyline[data-series="p50"]'), span
    api: dict[str, Any] = browser.fetch_json(f"/api/history?span={span}{query}")
    assert sum(point["processed"] for point in api["points"]) == processed
    assert sum(point["failed"] for point in api["points"]) == failed
    if span == "hour":  # one dot per minute that had jobs, in order, its title the same number
        assert done == [float(p["processed"]) for p in api["points"] if p["processed"]]
        assert [title.rsplit(": ", 1)[1] for title in _dot_titles(browser, "Throughput", "done")] == \
            [f"{p['processed']:g}" for p in api["points"] if p["processed"]]


def test_charts_from_real_history_then_retry_and_forget_from_the_page(app: App, browser: Browser) -> None:
    for queue, (ok, failing, error) in WORK.items():
        dispatch(app, "test.record", [{"n": n} for n in range(ok)], queue=queue)
        dispatch(app, "test.boom", [{"message": error}] * failing, queue=queue)
    drain(app, *WORK)
    processed = sum(ok for ok, _, _ in WORK.values())
    failed = sum(failing for _, failing, _ in WORK.values())
    wait_history(app, processed, failed)
    assert count(app, "failed_jobs") == failed and count(app, "jobs") == 0

    browser.login()
    _check_charts(browser, "hour", processed, failed)
    for queue, (ok, failing, _) in WORK.items():
        _check_charts(browser, "hour", ok, failing, f"&queue={queue}")
        assert browser.find("select[name=queue] option:checked").text == queue
    _check_charts(browser, "day", processed, failed)
    _check_charts(browser, "week", 8, 3, "&queue=reports")
    assert not browser.csp_violations()

    _retry_and_forget(app, browser)


def _groups(browser: Browser) -> dict[str, tuple[str, int]]:
    """The failed page's groups: error -> (group id, count)."""
    found = {}
    for row in browser.all("#groups tr[data-group]"):
        error = row.find_element("css selector", "td.reason").text
        found[error] = (str(row.get_attribute("data-group")), int(row.find_element("css selector",
                                                                               '[data-field="count"]').text))
    return found


def _failing(app: App, error: str) -> int:
    return count(app, "failed_jobs", f"exception LIKE '%{error}%'")


def _check_groups(app: App, browser: Browser) -> dict[str, tuple[str, int]]:
    """Every group's count is its failed_jobs rows; a group per error that still has rows."""
    groups = _groups(browser)
    by_error = {error: next((g for text, g in groups.items() if error in text), None) for _, _, error in WORK.values()}
    for error, group in by_error.items():
        rows = _failing(app, error)
        assert (group[1] if group else 0) == rows, (error, groups)
    assert len(groups) == sum(1 for _, _, error in WORK.values() if _failing(app, error))
    return {error: group for error, group in by_error.items() if group}


def _retry_and_forget(app: App, browser: Browser) -> None:
    smtp, template = WORK["mail"][2], WORK["reports"][2]
    browser.open("/failed")
    groups = _check_groups(app, browser)

    # One job retried from its row: out of failed_jobs, back in jobs (no worker runs now).
    first, second, *_ = failed_ids(app, f"exception LIKE '%{smtp}%'")
    uuid = uuid_of_failed(app, first)
    browser.submit(f"/failed/{first}/retry", scope=f'#failed tr[data-failed="{first}"]')
    assert browser.text("#flash") == f"re-queued failed job {first} on mail"
    assert first not in failed_ids(app) and queued_uuids(app, "mail") == [uuid]
    assert not browser.all(f'#failed tr[data-failed="{first}"]')
    _check_groups(app, browser)

    # One forgotten (after the confirmation): gone, nothing queued.
    browser.submit(f"/failed/{second}/forget", scope=f'#failed tr[data-failed="{second}"]', confirm=True)
    assert browser.text("#flash") == f"forgot failed job {second}"
    assert second not in failed_ids(app) and count(app, "jobs") == 1
    groups = _check_groups(app, browser)

    # The rest of the SMTP group retried at once: every member moved to jobs.
    members = failed_ids(app, f"exception LIKE '%{smtp}%'")
    moved = [uuid_of_failed(app, member) for member in members]
    group = groups[smtp][0]
    browser.submit(f"/failed/groups/{group}/retry", scope=f'#groups tr[data-group="{group}"]')
    assert browser.text("#flash") == f"re-queued {len(members)} failed job(s) of group {group}"
    assert _failing(app, smtp) == 0 and sorted(queued_uuids(app, "mail")) == sorted([uuid, *moved])
    groups = _check_groups(app, browser)
    assert list(groups) == [template]

    # The other group forgotten from its own page.
    group = groups[template][0]
    browser.open(f"/failed/groups/{group}")
    assert len(browser.all("#failed tr[data-failed]")) == _failing(app, template) == WORK["reports"][1]
    browser.submit(f"/failed/groups/{group}/forget", confirm=True)
    assert browser.text("#flash") == f"forgot {WORK['reports'][1]} failed job(s) of group {group}"
    assert browser.path == "/failed"
    assert count(app, "failed_jobs") == 0 and count(app, "jobs") == WORK["mail"][1] - 1
    assert browser.text("#groups tbody") == "No failed job." and browser.text("#failed tbody") == "None."
    assert not browser.csp_violations()
