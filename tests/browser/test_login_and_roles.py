"""Logging in and who may do what, in a real browser: an anonymous visit ends on the login form,
a wrong password stays there with the error, a viewer reads every page but has no button that
changes anything and is refused (403) when it posts a change anyway, an operator has the buttons,
logging out ends the session. Then the refusals of forms that do not come from an operator's
session: no CSRF token, a viewer's session, HTTP Basic credentials alone."""

from __future__ import annotations

import base64

from tests.browser.conftest import Browser
from tests.browser.work import count, dispatch, drain, failed_ids
from tests.support.app import App
from tests.support.dashboard import OPERATOR, VIEWER, csrf_of

CHANGES = {"Retry", "Forget", "Retry all", "Forget all", "Pause", "Resume", "Restart all workers"}
PAGES = ("/", "/failed", "/charts", "/workers", "/capacity", "/queue?name=mail")


def _paused(app: App) -> int:
    return count(app, "ictq_control", "name LIKE 'pause:%'")


def test_login_roles_and_refused_changes(app: App, browser: Browser) -> None:
    dispatch(app, "test.boom", [{"message": "mailbox full"}] * 2, queue="mail")
    drain(app, "mail")
    failed = failed_ids(app)
    assert len(failed) == 2
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
    assert "mailbox full" in browser.text("#exception")

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

    _refused_outside_an_operators_form(app, browser, target, failed)
    assert not browser.csp_violations()


def _refused_outside_an_operators_form(app: App, browser: Browser, target: int, failed: list[int]) -> None:
    """The operator's own session without the token; a viewer's session with its token; HTTP
    Basic alone (the operator's password, no session): each refused, nothing changed."""
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
    viewer = browser.server.login(VIEWER)  # an httpx client already open (logged in)
    try:
        token = csrf_of(viewer.get("/failed").text)
        refused = viewer.post(f"/failed/{target}/forget", data={"csrf_token": token, "back": "/"})
        assert refused.status_code == 403 and "viewer" in refused.text, refused.text
    finally:
        viewer.close()
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
