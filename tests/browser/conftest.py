"""Browser tests of ``ictq dashboard``: Debian's chromium driven by selenium, one browser for the
whole session (cookies deleted between tests), one real dashboard server per test on that test's
fresh database (:mod:`tests.support.dashboard`).

Without chromium and its chromedriver the tests fail (never skip), naming the packages. Nothing
is downloaded: the driver is given its binaries (selenium-manager never runs)."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver import Chrome
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.app import App
from tests.support.dashboard import OPERATOR, DashboardServer, dashboard_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT = 60.0  # seconds any condition may take on a slow, busy machine
WIDTH, HEIGHT = 1400, 1000


def _require_browser() -> None:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        pytest.fail(f"{' and '.join(missing)} missing: the dashboard's browser tests need Debian's chromium "
                    "(apt-get install chromium chromium-driver)", pytrace=False)


@pytest.fixture(scope="session")
def driver() -> Iterator[WebDriver]:
    """One headless chromium for the whole session."""
    _require_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     f"--window-size={WIDTH},{HEIGHT}", "--force-device-scale-factor=1", "--lang=en-US",
                     "--disable-extensions", "--no-first-run", "--disable-background-networking"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        chrome = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    except WebDriverException as exc:
        pytest.fail(f"chromium did not start ({exc.msg}): apt-get install chromium chromium-driver", pytrace=False)
    chrome.set_page_load_timeout(WAIT)
    try:
        yield chrome
    finally:
        chrome.quit()


class Browser:
    """The session's chromium pointed at one dashboard server, with the waits the tests use."""

    def __init__(self, driver: WebDriver, server: DashboardServer) -> None:
        self.driver = driver
        self.server = server
        self.base = server.base
        self.console: list[dict[str, Any]] = []
        self.open("/healthz")  # on the server's origin, so that its cookies can be deleted
        driver.delete_all_cookies()
        self.read_console()
        self.console.clear()

    # -- navigation -----------------------------------------------------------------------------

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    @property
    def path(self) -> str:
        """The current URL without the server's origin (``/login?next=%2F``)."""
        url = str(self.driver.current_url)
        return url[len(self.base):] if url.startswith(self.base) else url

    def wait(self, condition: Callable[[WebDriver], Any], what: str, timeout: float = WAIT) -> Any:
        return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(condition, f"waiting for {what}")

    def wait_path(self, prefix: str) -> None:
        self.wait(lambda d: self.path.startswith(prefix), f"the page {prefix} (at {self.path})")

    def login(self, user: tuple[str, str] = OPERATOR, path: str = "/") -> None:
        """Log in through the form, as a person does; then on ``path``."""
        self.open("/login")
        self.type_into("input[name=name]", user[0])
        self.type_into("input[name=password]", user[1])
        self.find("form.login button[type=submit]").click()
        self.wait(lambda d: bool(d.find_elements(By.ID, "who")), f"{user[0]} logged in")
        if path != "/":
            self.open(path)

    def logout(self) -> None:
        self.find("header .who button[type=submit]").click()
        self.wait_path("/login")

    # -- reading the page -------------------------------------------------------------------------

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list[WebElement]:
        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def text(self, css: str) -> str:
        """The text of the first element ``css`` selects (stale reads, under a live update, retried)."""
        for _ in range(20):
            with contextlib.suppress(StaleElementReferenceException):
                return str(self.find(css).text)
        raise AssertionError(f"{css} stays stale")

    def wait_text(self, css: str, predicate: Callable[[str], bool], what: str, timeout: float = WAIT) -> str:
        def check(_: WebDriver) -> str | None:
            found = self.driver.find_elements(By.CSS_SELECTOR, css)
            if not found:
                return None
            try:
                text = str(found[0].text)
            except StaleElementReferenceException:
                return None
            return text if predicate(text) else None
        return str(self.wait(check, what, timeout))

    def buttons(self) -> list[str]:
        """The labels of every button in the page's main part."""
        return [str(button.text) for button in self.all("main button")]

    def type_into(self, css: str, text: str) -> None:
        field = self.find(css)
        field.clear()
        field.send_keys(text)

    def submit(self, form_action: str, scope: str = "main", confirm: bool = False) -> None:
        """Click the button of the form posting to ``form_action`` (the first such in ``scope``);
        accept the confirmation a destructive form asks for; wait for the page after it."""
        button = self.find(f'{scope} form[action="{form_action}"] button[type=submit]')
        button.click()
        if confirm:
            self.wait(expected_conditions.alert_is_present(), "the confirmation dialog").accept()
        self.wait(expected_conditions.staleness_of(button), f"the page after posting {form_action}")

    def csrf(self) -> str:
        """The CSRF token of the page's forms (the logout form carries one on every page)."""
        return str(self.find("input[name=csrf_token]").get_attribute("value"))

    def fetch_post(self, path: str, form: dict[str, str]) -> int:
        """POST ``form`` from the page itself (the browser's cookies, no redirect followed);
        the response's status."""
        script = ("const done = arguments[arguments.length - 1];"
                  "fetch(arguments[0], {method: 'POST', body: new URLSearchParams(arguments[1]),"
                  " credentials: 'same-origin', redirect: 'manual', headers: {Accept: 'text/html'}})"
                  ".then((r) => done(r.status), (e) => done('error ' + e));")
        status = self.driver.execute_async_script(script, path, form)
        assert isinstance(status, int), status
        return status

    def fetch_json(self, path: str) -> Any:
        script = ("const done = arguments[arguments.length - 1];"
                  "fetch(arguments[0], {credentials: 'same-origin', headers: {Accept: 'application/json'}})"
                  ".then((r) => r.text()).then(done, (e) => done('error ' + e));")
        return json.loads(self.driver.execute_async_script(script, path))

    def http(self) -> httpx.Client:
        """An HTTP client holding the browser's cookies (the same session, outside the browser)."""
        client = self.server.client()
        for cookie in self.driver.get_cookies():
            client.cookies.set(cookie["name"], cookie["value"])
        return client

    def read_console(self) -> list[dict[str, Any]]:
        """The browser console's entries since the last read (kept in :attr:`console` too)."""
        with contextlib.suppress(WebDriverException):
            self.console.extend(cast(Chrome, self.driver).get_log("browser"))  # type: ignore[no-untyped-call]
        return self.console

    def csp_violations(self) -> list[str]:
        """What the browser reported the page's Content-Security-Policy refused (an inline script
        or style, a foreign origin), since the browser was pointed at this server."""
        return [str(entry.get("message")) for entry in self.read_console()
                if "Content Security Policy" in str(entry.get("message"))]

    def screenshot(self, path: Path) -> None:
        """A PNG of the whole page, :data:`WIDTH` pixels wide: the window is made as tall as the
        page (no scroll bar), then set back."""
        try:
            for _ in range(3):
                page, shown = self.driver.execute_script(
                    "return [document.documentElement.scrollHeight, window.innerHeight];")
                if int(page) <= int(shown):
                    break
                size = self.driver.get_window_size()
                self.driver.set_window_size(WIDTH, min(int(size["height"]) + int(page) - int(shown), 4000))
            assert self.driver.save_screenshot(str(path)), path
        finally:
            self.driver.set_window_size(WIDTH, HEIGHT)


def screenshots_dir(tmp_path: Path) -> Path:
    """``$ICTQ_SCREENSHOTS`` when set (the documentation's), else the test's own directory."""
    where = Path(os.environ.get("ICTQ_SCREENSHOTS") or tmp_path / "screenshots")
    where.mkdir(parents=True, exist_ok=True)
    return where


@pytest.fixture
def server(app: App) -> Iterator[DashboardServer]:
    """A real ``ictq dashboard`` on the test's database (live updates every second), its users
    added in-process (the CLI that adds them has tests of its own); its log is printed when the
    test fails."""
    with dashboard_server(app, refresh_every=1, users_by_cli=False) as running:
        try:
            yield running
        finally:
            print(f"--- dashboard log\n{running.log()}")


@pytest.fixture
def browser(driver: WebDriver, server: DashboardServer) -> Browser:
    return Browser(driver, server)
