"""Failed jobs of a real Laravel application (tests/laravel_app: Laravel 8 on PHP, the same
.env and database) readable on the dashboard: the display name, the PHP command decoded to its
class and properties, the exception's first line and its whole trace; and the .env's secret,
carried by the jobs into their payload and their exception, masked on every page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from tests.browser.conftest import Browser
from tests.browser.work import count, failed_ids
from tests.support.dashboard import dashboard_server
from tests.support.laravel_app import LaravelApp, laravel_app

SECRET = "SuperSecret-123456"
PHP_JOB = "App\\Jobs\\Fails"


@pytest.fixture
def laravel(dialect: str, tmp_path: Path) -> Iterator[LaravelApp]:
    with laravel_app(dialect, tmp_path / "app", MAIL_PASSWORD=SECRET) as application:
        yield application


def test_php_failed_jobs_are_readable_and_masked(laravel: LaravelApp, driver: WebDriver) -> None:
    app = laravel
    # The tag is the secret: it is in each job's serialized command and in its exception's message.
    app.php("app:dispatch", "fail", "--count=2", "--queue=php", f"--tag={SECRET}")
    app.php("queue:work", "database", "--stop-when-empty", "--tries=1", "--sleep=1", "--queue=php", timeout=180)
    failed = failed_ids(app)
    assert len(failed) == 2 and count(app, "failed_jobs", f"exception LIKE '%{SECRET}%'") == 2
    with dashboard_server(app, refresh_every=1, users_by_cli=False) as server:
        browser = Browser(driver, server)
        browser.login()
        sources = [browser.driver.page_source]

        browser.open("/failed")
        group = browser.find("#groups tr[data-group]")
        assert group.find_element("css selector", "td:nth-child(2)").text == PHP_JOB
        assert group.find_element("css selector", '[data-field="count"]').text == "2"
        assert [row.find_element("css selector", "td:nth-child(2)").text
                for row in browser.all("#failed tr[data-failed]")] == [PHP_JOB, PHP_JOB]
        sources.append(browser.driver.page_source)

        browser.open(f"/failed/{failed[0]}")
        assert browser.text("#display-name") == PHP_JOB
        command = browser.text("#php-command")
        assert command.startswith(PHP_JOB + " {"), command
        for line in ('tag: "********-1"', "tries: 1", 'queue: "php"', "connection: null"):
            assert line in command.splitlines() or f"  {line}" in command.splitlines(), (line, command)
        assert 'O:14:"' not in command
        exception = browser.text("#exception").splitlines()
        assert exception[0].startswith("RuntimeException: deliberate failure of ********-1 in "), exception[0]
        assert exception[1] == "Stack trace:" and exception[-1].endswith("{main}") and len(exception) > 10
        assert browser.text("#reason") == exception[0]
        sources.append(browser.driver.page_source)

        for path in (f"/failed/{failed[1]}", browser.find("dd a[href^='/failed/groups/']").get_attribute("href"),
                     "/", "/queue?name=php", f"/search?q={PHP_JOB}", f"/api/failed/{failed[0]}", "/api/failed"):
            browser.open(str(path).removeprefix(server.base))
            sources.append(browser.driver.page_source)
        for source in sources:
            assert SECRET not in source
        assert "********-2" in sources[3]
        assert not browser.csp_violations()
        assert SECRET not in server.log()
