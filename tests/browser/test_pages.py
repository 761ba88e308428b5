"""The dashboard's pages after real workers ran jobs (some failing: two kinds of failure on two
queues), in a real browser, in one test (one server, one database) since each step needs the
same state:

- logging in and who may do what: an anonymous visit ends on the login form, a wrong password
  stays there with the error, a viewer reads the pages but has no button that changes anything
  and is refused (403) when it posts a change anyway, logging out ends the session, an operator
  has the buttons;
- the charts drawn from the workers' history match it (the hour, day and week spans, per queue);
- refused changes that do not come from an operator's form: the operator's session without its
  CSRF token (none, empty, forged), HTTP Basic credentials alone; nothing changes;
- failed jobs retried and forgotten from the page, one by one and by group, each change seen in
  the tables."""

from __future__ import annotations

import base64
from typing import Any

from tests.browser.conftest import Browser
from tests.browser.work import count, dispatch, drain, failed_ids, queued_uuids, uuid_of_failed, wait_history
from tests.support.app import App
from tests.support.dashboard import OPERATOR, VIEWER

# queue -> (jobs that succeed, failing jobs, their error)
WORK = {"mail": (12, 4, "SMTP server refused the message"), "reports": (8, 3, "report template missing")}
STEPS = {"hour": 60, "day": 900, "week": 7200}
CHANGES = {"Retry", "Forget", "Retry all", "Forget all", "Pause", "Resume", "Restart all workers"}
PAGES = ("/", "/failed", "/queue?name=mail")  # the pages with buttons for an operator


def test_roles_charts_and_changes_from_the_page(app: App, browser: Browser) -> None:
    for queue, (ok, failing, error) in WORK.items():
        dispatch(app, "test.record", [{"n": n} for n in range(ok)], queue=queue)
        dispatch(app, "test.boom", [{"message": error}] * failing, queue=queue)
    drain(app, *WORK)
    processed = sum(ok for ok, _, _ in WORK.values())
    failed = sum(failing for _, failing, _ in WORK.values())
    wait_history(app, processed, failed)
    assert count(app, "failed_jobs") == failed and count(app, "jobs") == 0

    _login_and_roles(app, browser)

    _check_charts(browser, "hour", processed, failed)
    for queue, (ok, failing, _) in WORK.items():
        _check_charts(browser, "hour", ok, failing, f"&queue={queue}")
        assert browser.find("select[name=queue] option:checked").text == queue
    _check_charts(browser, "day", processed, failed)
    _check_charts(browser, "week", 8, 3, "&queue=reports")

    _refused_outside_an_operators_form(app, browser, failed_ids(app)[0])
    _retry_and_forget(app, browser)
    assert not browser.csp_violations()


# -- logging in, roles ------------------------------------------------------------------------------

def _paused(app: App) -> int:
    return count(app, "ictq_control", "name LIKE 'pause:%'")


def _login_and_roles(app: App, browser: Browser) -> None:
    """From an anonymous visit to the operator's session, through the viewer's."""
    failed = failed_ids(app)
    target = failed[0]
    # Anonymous: every page sends to the login form, which remembers where to come back to.
    browser.open("/failed")
    browser.wait_path("/login")
    assert browser.path == "/login?next=%2Ffailed"
    assert browser.all("form.login input[name=password]") and not browser.all("#who")

    # A wrong password: the error, still the form.
    browser.type_into("input[name=name]", VIEWER[0])
    browser.type_into("input[name=password]", "not-the-password")
    browser.find("form.login button[type=submit]").click()
    assert browser.wait_text("#login-error", bool, "the login error") == "Wrong user name or password."
    assert browser.path.startswith("/login") and not browser.all("#who")

    # The viewer reads every page, and has no button that changes anything.
    browser.login(VIEWER)
    assert browser.text("#who") == f"{VIEWER[0]} (viewer)"
    for path in (*PAGES, f"/failed/{target}"):
        browser.open(path)
        assert browser.all("main h1, main .cards"), f"{path} shows nothing"
        assert not CHANGES & set(browser.buttons()), f"{path} offers a viewer {browser.buttons()}"
        assert not browser.all("main form[method=post]"), path
    assert WORK["mail"][2] in browser.text("#exception")

    # A change the viewer posts anyway, with its session's valid CSRF token: 403, nothing changes.
    token = browser.csrf()
    for path, form in ((f"/failed/{target}/forget", {}), (f"/failed/{target}/retry", {}),
                       ("/queue/pause", {"queue": "mail"}), ("/restart", {})):
        assert browser.fetch_post(path, {"csrf_token": token, "back": "/", **form}) == 403, path
    assert failed_ids(app) == failed and count(app, "jobs") == 0 and count(app, "ictq_control") == 0

    # Logging out ends the session: back to the form, and the pages ask for a login again.
    browser.logout()
    browser.open("/failed")
    browser.wait_path("/login?next=")

    # The operator has the buttons.
    browser.login(OPERATOR)
    assert browser.text("#who") == f"{OPERATOR[0]} (operator)"
    assert {"Pause", "Restart all workers"} <= set(browser.buttons())
    browser.open("/failed")
    assert {"Retry", "Forget", "Retry all", "Forget all"} <= set(browser.buttons())
    browser.open(f"/failed/{target}")
    assert {"Retry", "Forget"} <= set(browser.buttons())


def _refused_outside_an_operators_form(app: App, browser: Browser, target: int) -> None:
    """The operator's own session without the token (a viewer's session with its token was
    refused in the browser); HTTP Basic alone (the operator's password, no session): each
    refused, nothing changed."""
    failed = failed_ids(app)
    operator = browser.http()
    try:
        page = operator.get(f"/failed/{target}")
        assert page.status_code == 200 and "Forget" in page.text  # the browser's session, outside it
        for data in ({"back": "/"}, {"back": "/", "csrf_token": ""}, {"back": "/", "csrf_token": "forged-token"}):
            refused = operator.post(f"/failed/{target}/forget", data=data)
            assert refused.status_code == 403, refused.text
            assert "CSRF" in refused.text
        assert operator.post("/queue/pause", data={"queue": "mail"}).status_code == 403
    finally:
        operator.close()
    basic = "Basic " + base64.b64encode(f"{OPERATOR[0]}:{OPERATOR[1]}".encode()).decode()
    client = browser.server.client()
    try:
        assert client.get("/api/failed", headers={"Authorization": basic}).status_code == 200  # Basic reads
        for path, data in ((f"/failed/{target}/forget", {}), (f"/failed/{target}/retry", {}),
                           ("/queue/pause", {"queue": "mail"})):
            refused = client.post(path, data={"back": "/", **data}, headers={"Authorization": basic})
            assert refused.status_code in (401, 403), (path, refused.status_code, refused.text)
    finally:
        client.close()
    assert failed_ids(app) == failed and count(app, "jobs") == 0 and _paused(app) == 0


# -- charts ---------------------------------------------------------------------------------------------

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


# -- retry and forget -------------------------------------------------------------------------------

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


def _newest(browser: Browser) -> list[int]:
    """The ids the failed page lists under "Newest" (read from failed_jobs itself)."""
    return [int(str(row.get_attribute("data-failed"))) for row in browser.all("#failed tr[data-failed]")]


def _listed_as_in_the_table(app: App, browser: Browser) -> None:
    assert _newest(browser) == sorted(failed_ids(app), reverse=True)


def _retry_and_forget(app: App, browser: Browser) -> None:
    """Each action's flash and its effect on the tables, and the page's list after it. The
    groups' counts come from side tables a background thread of the dashboard reconciles every
    10 s (its own changes included): they are compared before the changes, and once they have
    caught up after them."""
    smtp, template = WORK["mail"][2], WORK["reports"][2]
    browser.open("/failed")
    groups = _check_groups(app, browser)
    _listed_as_in_the_table(app, browser)

    # One job retried from its row: out of failed_jobs, back in jobs (no worker runs now).
    first, second, *_ = failed_ids(app, f"exception LIKE '%{smtp}%'")
    uuid = uuid_of_failed(app, first)
    browser.submit(f"/failed/{first}/retry", scope=f'#failed tr[data-failed="{first}"]')
    assert browser.text("#flash") == f"re-queued failed job {first} on mail"
    assert first not in failed_ids(app) and queued_uuids(app, "mail") == [uuid]
    _listed_as_in_the_table(app, browser)

    # One forgotten (after the confirmation): gone, nothing queued.
    browser.submit(f"/failed/{second}/forget", scope=f'#failed tr[data-failed="{second}"]', confirm=True)
    assert browser.text("#flash") == f"forgot failed job {second}"
    assert second not in failed_ids(app) and count(app, "jobs") == 1
    _listed_as_in_the_table(app, browser)

    # The rest of the SMTP group retried at once: every member moved to jobs.
    members = failed_ids(app, f"exception LIKE '%{smtp}%'")
    moved = [uuid_of_failed(app, member) for member in members]
    group = groups[smtp][0]
    browser.submit(f"/failed/groups/{group}/retry", scope=f'#groups tr[data-group="{group}"]')
    assert browser.text("#flash") == f"re-queued {len(members)} failed job(s) of group {group}"
    assert _failing(app, smtp) == 0 and sorted(queued_uuids(app, "mail")) == sorted([uuid, *moved])
    _listed_as_in_the_table(app, browser)

    # The other group forgotten from its own page, which lists its members.
    group = groups[template][0]
    browser.open(f"/failed/groups/{group}")
    assert len(browser.all("#failed tr[data-failed]")) == _failing(app, template) == WORK["reports"][1]
    browser.submit(f"/failed/groups/{group}/forget", confirm=True)
    assert browser.text("#flash") == f"forgot {WORK['reports'][1]} failed job(s) of group {group}"
    assert browser.path == "/failed"
    assert count(app, "failed_jobs") == 0 and count(app, "jobs") == WORK["mail"][1] - 1
    assert browser.text("#failed tbody") == "None."

    # The groups catch up with the tables (nothing failed any more).
    def caught_up(_: object) -> bool:
        browser.open("/failed")
        return browser.text("#groups tbody") == "No failed job." and not browser.all("#ungrouped")
    browser.wait(caught_up, "the failure groups to catch up with failed_jobs")
