"""The dashboard over HTTP, on each database: a real ``ictq dashboard`` process, real users, real
workers; what it shows is compared with the tables, and every refusal is checked to change nothing."""

from __future__ import annotations

import itertools
import json
import socket
import time
import uuid
from contextlib import closing

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ictq import triage
from ictq.db.search import WINDOW
from tests.support.app import App, count_rows, rows, wait_for
from tests.support.dashboard import OPERATOR, VIEWER, DashboardServer, csrf_of, dashboard_server, free_port
from tests.support.failed import Failure, add_failures
from tests.support.proxy import TcpProxy

PAGES = ["/", "/charts", "/charts?span=day", "/charts?span=week", "/workers", "/failed", "/capacity",
         "/queue?name=default", "/search?q=test.record"]
APIS = ["/api/overview", "/api/workers", "/api/failed", "/api/history?span=hour", "/api/capacity",
        "/api/search?q=1"]
SECRET = "Mail-Secret-4711-xyz"


def dispatch(app: App, name: str, items: list[dict[str, object]], queue: str | None = None, delay: int = 0) -> None:
    client = app.client()
    try:
        for data in items:
            client.dispatch(name, data, queue=queue, delay=delay or None)
    finally:
        client.close()


def fail_jobs(app: App, messages: list[str]) -> None:
    dispatch(app, "test.boom", [{"message": message} for message in messages])
    done = app.ictq("work", "--stop-when-empty", timeout=120)
    assert done.returncode == 0, done.stderr


def test_nothing_without_a_login_and_headers_everywhere(app: App) -> None:
    with dashboard_server(app) as server:
        anonymous = server.client()
        assert anonymous.get("/healthz").text == "ok"
        for path in PAGES:
            response = anonymous.get(path)
            assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")
        for path in APIS:
            response = anonymous.get(path)
            assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Basic")
            assert response.json() == {"error": "log in, or send HTTP Basic credentials"}
        for path in ["/login", "/healthz", "/api/overview", "/nowhere", "/static/dashboard.js"]:
            headers = anonymous.get(path).headers
            assert "script-src 'self'" in headers["content-security-policy"]
            assert "'unsafe-inline'" not in headers["content-security-policy"]
            assert "frame-ancestors 'none'" in headers["content-security-policy"]
            assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
        login = anonymous.get("/login").text
        assert "<script>" not in login and " style=" not in login and "onclick" not in login


def test_pages_and_api_show_what_the_tables_hold(app: App) -> None:
    app.write_env(MAIL_PASSWORD=SECRET)
    dispatch(app, "test.record", [{"n": n} for n in range(7)])
    dispatch(app, "test.record", [{"n": 99}], queue="mail", delay=600)
    fail_jobs(app, [f"connection to 10.0.0.{n}:5432 refused, password {SECRET}" for n in range(3)])
    dispatch(app, "test.record", [{"n": 100}])
    with dashboard_server(app) as server:
        viewer = server.login(VIEWER)
        for path in PAGES + APIS:
            response = viewer.get(path)
            assert response.status_code == 200, (path, response.text[:300])
            assert SECRET not in response.text
        overview = viewer.get("/api/overview").json()
        by_queue = {q["queue"]: q for q in overview["queues"]}
        with closing(app.storage()) as storage:
            assert by_queue["default"]["pending"] == count_rows(storage, "jobs", "queue = 'default'") == 1
            assert by_queue["mail"]["delayed"] == 1 and by_queue["mail"]["pending"] == 0
            assert by_queue["default"]["failed"] == count_rows(storage, "failed_jobs") == 3
        assert overview["total"]["failed_last_hour"] == 3
        groups = viewer.get("/api/failed").json()["groups"]
        assert [(g["job"], g["count"]) for g in groups] == [("test.boom", 3)]
        assert "<ip>" in groups[0]["signature"] and SECRET not in groups[0]["signature"]
        with closing(app.storage()) as storage:
            (failed_id,) = rows(storage, "SELECT MIN(id) FROM failed_jobs")[0]
        page = viewer.get(f"/failed/{failed_id}").text
        assert "test.boom" in page and "********" in page and SECRET not in page
        assert "Retry" not in page and "Forget" not in page  # a viewer has no buttons
        history = viewer.get("/api/history?span=hour").json()["points"]
        assert sum(p["processed"] for p in history) == 7 and sum(p["failed"] for p in history) == 3
        charts = viewer.get("/charts").text
        assert sum(float(v) for v in _values(charts, "done")) == 7.0  # per minute, a step of a minute
        search = viewer.get("/api/search", params={"q": "test.boom"}).json()
        assert {row["id"] for row in search["failed"]} == {failed_id, failed_id + 1, failed_id + 2}
        assert search["window"] == WINDOW
    assert SECRET not in server.log()


def _values(html: str, series: str) -> list[str]:
    """The data-value of every dot of a series in the first chart."""
    first = html.split("</figure>")[0]
    marker = f'class="dot {series}"'
    return [part.split('data-value="')[1].split('"')[0] for part in first.split(marker)[1:]]


def test_operators_change_things_and_nothing_else_can(app: App) -> None:
    fail_jobs(app, ["first kind", "second kind 1", "second kind 2"])
    with dashboard_server(app) as server:
        operator, viewer = server.login(OPERATOR), server.login(VIEWER)
        def failed_ids() -> set[int]:
            with closing(app.storage()) as storage:
                return {int(i) for (i,) in rows(storage, "SELECT id FROM failed_jobs")}

        first, *rest = sorted(failed_ids())
        token = csrf_of(operator.get("/failed").text)
        viewer_token = csrf_of(viewer.get("/failed").text)
        # refused: no token, another session's token, a viewer, Basic credentials only
        assert operator.post(f"/failed/{first}/forget", data={}).status_code == 403
        assert operator.post(f"/failed/{first}/forget", data={"csrf_token": viewer_token}).status_code == 403
        refused = viewer.post(f"/failed/{first}/forget", data={"csrf_token": viewer_token})
        assert refused.status_code == 403 and "viewer" in refused.json()["error"]
        basic = server.client()
        assert basic.post(f"/failed/{first}/forget", data={"csrf_token": token},
                          auth=OPERATOR).status_code == 403
        assert basic.post("/restart", data={}, auth=OPERATOR).status_code == 403
        assert failed_ids() == {first, *rest}
        # retry one, then the group of the other two
        done = operator.post(f"/failed/{first}/retry", data={"csrf_token": token, "back": "/failed"})
        assert done.status_code == 303 and done.headers["location"] == "/failed"
        assert f"re-queued failed job {first}" in operator.get("/failed").text
        assert failed_ids() == set(rest)
        with closing(app.storage()) as storage:
            assert count_rows(storage, "jobs") == 1
        group = next(g["group"] for g in operator.get("/api/failed").json()["groups"] if g["count"] == 2)
        assert operator.post(f"/failed/groups/{group}/forget", data={"csrf_token": token}).status_code == 303
        assert failed_ids() == set()
        assert operator.post(f"/failed/{first}/forget", data={"csrf_token": token}).status_code == 404
        # pause, resume, restart: the flags every worker reads
        assert operator.post("/queue/pause", data={"csrf_token": token, "queue": "default"}).status_code == 303
        assert "paused queues: default" in app.ictq("status").stdout
        assert operator.get("/api/overview").json()["paused"] == ["default"]
        assert operator.post("/queue/resume", data={"csrf_token": token, "queue": "default"}).status_code == 303
        assert operator.get("/api/overview").json()["paused"] == []
        assert operator.post("/restart", data={"csrf_token": token}).status_code == 303
        assert operator.get("/api/overview").json()["restart_requested_at"] is not None
        # a redirect target outside the site is not followed
        away = operator.post("/queue/resume", data={"csrf_token": token, "queue": "default", "back": "//evil.example"})
        assert away.headers["location"] == "/"
        assert "by olga" in server.log()


def test_logins_are_limited_and_sessions_end_with_the_user(app: App) -> None:
    with dashboard_server(app) as server:
        client = server.client()
        for _ in range(5):
            form = client.get("/login")
            wrong = client.post("/login", data={"name": VIEWER[0], "password": "not it at all",
                                                "csrf_token": csrf_of(form.text), "next": "/"})
            assert wrong.status_code == 401 and "Wrong user name or password" in wrong.text
        form = client.get("/login")
        limited = client.post("/login", data={"name": VIEWER[0], "password": VIEWER[1],
                                              "csrf_token": csrf_of(form.text), "next": "/"},
                              headers={"accept": "text/html"})
        assert limited.status_code == 429 and "too many failed logins" in limited.text
        assert client.get("/api/overview", auth=VIEWER).status_code == 429  # Basic too, from that address
        assert "not it at all" not in server.log()
    with dashboard_server(app) as server:
        operator = server.login(OPERATOR)
        assert operator.get("/api/overview").status_code == 200
        changed = app.ictq("dashboard", "user", "add", OPERATOR[0], "--role", "operator", "--password-stdin",
                           "--update", input="a brand new password\n")
        assert changed.stdout.strip() == "updated"
        assert operator.get("/api/overview").status_code == 401  # the old session ended
        kept = server.login(("olga", "a brand new password"))
        copy = server.client()
        copy.cookies.update(kept.cookies)
        assert copy.get("/api/overview").status_code == 200
        out = kept.post("/logout", data={"csrf_token": csrf_of(kept.get("/").text)})
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert copy.get("/api/overview").status_code == 401  # a copy of the cookie ended with the logout
        assert kept.get("/").status_code == 303
        viewer = server.login(VIEWER)
        assert app.ictq("dashboard", "user", "remove", VIEWER[0]).returncode == 0
        assert viewer.get("/").status_code == 303
        assert server.client().get("/api/overview", auth=("olga", "a brand new password")).status_code == 200


def test_the_user_commands(app: App) -> None:
    def add(*args: str, password: str | None = "long enough password\n"):  # type: ignore[no-untyped-def]
        return app.ictq("dashboard", "user", "add", *args, input=password)

    assert add("ann", "--role", "viewer", "--password-stdin").stdout.strip() == "created"
    again = add("ann", "--role", "viewer", "--password-stdin")
    assert again.returncode == 1 and again.stderr.strip() == \
        "ictq: error: user ann exists (use --update to change its password or role)"
    assert add("ann", "--role", "viewer", "--password-stdin", "--update").stdout.strip() == "unchanged"
    assert add("ann", "--role", "operator", "--password-stdin", "--update").stdout.strip() == "updated"
    short = add("bob", "--role", "viewer", "--password-stdin", password="short\n")
    assert short.returncode == 1 and short.stderr.strip() == \
        "ictq: error: the password is too short: at least 10 characters"
    no_tty = add("bob", "--role", "viewer", password="")
    assert no_tty.returncode == 2 and "--password-stdin" in no_tty.stderr and "Traceback" not in no_tty.stderr
    bad = add("bad:name", "--role", "viewer", "--password-stdin")
    assert bad.returncode == 1 and "user name" in bad.stderr and len(bad.stderr.splitlines()) == 1
    role = add("bob", "--role", "admin", "--password-stdin")
    assert role.returncode == 2 and "Traceback" not in role.stderr
    listed = app.ictq("dashboard", "user", "list", "--json")
    assert [(u["name"], u["role"]) for u in json.loads(listed.stdout)] == [("ann", "operator")]
    assert "argon2" not in listed.stdout and "argon2" not in app.ictq("dashboard", "user", "list").stdout
    with closing(app.storage()) as storage:
        ((stored,),) = rows(storage, "SELECT hash FROM ictq_dashboard_users")
    assert str(stored).startswith("$argon2id$") and "long enough password" not in str(stored)
    assert app.ictq("dashboard", "user", "remove", "ann").stdout.strip() == "removed dashboard user ann"
    gone = app.ictq("dashboard", "user", "remove", "ann")
    assert gone.returncode == 1 and gone.stderr.strip() == "ictq: error: no dashboard user named ann"


def test_the_server_refuses_to_start_without_a_good_key_or_address(sqlite_app: App) -> None:
    for key in ("", "too-short-key"):
        sqlite_app.write_env(ICTQ_DASHBOARD_KEY=key)
        refused = sqlite_app.ictq("dashboard", "--listen", f"127.0.0.1:{free_port()}")
        assert refused.returncode == 2 and len(refused.stderr.splitlines()) == 1
        assert refused.stderr.startswith("ictq: error: ICTQ_DASHBOARD_KEY ")
        assert key == "" or key not in refused.stderr
    sqlite_app.write_env(ICTQ_DASHBOARD_KEY="k" * 48)
    bad = sqlite_app.ictq("dashboard", "--listen", "here")
    assert bad.returncode == 2 and "is not HOST:PORT" in bad.stderr and "Traceback" not in bad.stderr

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = sqlite_app.ictq("dashboard", "--listen", f"127.0.0.1:{busy.getsockname()[1]}")
    assert taken.returncode == 1 and taken.stderr.startswith("ictq: error: cannot listen on 127.0.0.1:")
    sqlite_app.write_env(ICTQ_DASHBOARD_REFRESH="0")
    refresh = sqlite_app.ictq("dashboard", "--listen", f"127.0.0.1:{free_port()}")
    assert refresh.returncode == 2 and "ICTQ_DASHBOARD_REFRESH=0" in refresh.stderr
    sqlite_app.write_env(ICTQ_DASHBOARD_REFRESH="5", ICTQ_DASHBOARD_HTTPS="ture")
    https = sqlite_app.ictq("dashboard", "--listen", f"127.0.0.1:{free_port()}")
    assert https.returncode == 2 and https.stderr.strip() == \
        "ictq: error: ICTQ_DASHBOARD_HTTPS=ture is not true or false"
    sqlite_app.write_env(ICTQ_DASHBOARD_HTTPS="true")
    server = DashboardServer(sqlite_app)  # a good key and refresh again
    try:
        cookie = server.client().get("/login").headers["set-cookie"].lower()
        assert "secure" in cookie and "samesite=strict" in cookie and "httponly" in cookie
    finally:
        code = server.stop()
    assert code == 0  # TERM: the requests under way finish, the command exits 0


@pytest.mark.parametrize("dialect", ["pgsql", "mysql"])
def test_a_lost_database_is_one_line_and_the_dashboard_recovers(app: App) -> None:
    proxy = TcpProxy(app.values["DB_HOST"], int(app.values["DB_PORT"]))
    proxy.start()
    app.write_env(DB_HOST="127.0.0.1", DB_PORT=str(proxy.port))
    try:
        with dashboard_server(app) as server:
            viewer = server.login(VIEWER)
            assert viewer.get("/api/overview").status_code == 200
            proxy.stop()
            lost = viewer.get("/api/overview")
            assert lost.status_code == 503 and "Traceback" not in lost.text
            assert list(lost.json()) == ["error"] and len(lost.json()["error"].splitlines()) == 1
            page = viewer.get("/workers", headers={"accept": "text/html"})
            assert page.status_code == 503 and 'class="error"' in page.text
            proxy.start()
            wait_for(lambda: viewer.get("/api/overview").status_code == 200, timeout=60, what="the dashboard back")
            assert "Traceback" not in server.log()
    finally:
        proxy.stop()


HOSTILE = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=60)


def test_hostile_queries_are_answered_never_crash(app: App) -> None:
    fail_jobs(app, ["one failure"])
    with dashboard_server(app) as server:

        client = server.login(OPERATOR)

        @settings(max_examples=20)
        @given(text=HOSTILE, number=st.integers(-(2**70), 2**70))
        def answered(text: str, number: int) -> None:
            for path, params in (("/search", {"q": text}), ("/queue", {"name": text}), ("/charts", {"span": text}),
                                 ("/charts", {"queue": text, "job": text}),
                                 ("/capacity", {"wait": text, "window": text}), ("/api/search", {"q": str(number)}),
                                 (f"/failed/groups/{text or 'x'}", {})):
                try:
                    response = client.get(path, params=params, headers={"accept": "text/html"})
                except httpx.InvalidURL:
                    continue  # httpx refuses to send it: nothing reaches the dashboard
                assert response.status_code in (200, 400, 404), (path, params, response.status_code,
                                                                 response.text[:300])
                assert "Traceback" not in response.text and "internal error" not in response.text
            for path in (f"/failed/{abs(number)}", f"/jobs/{abs(number)}"):
                assert client.get(path).status_code in (200, 404)

        answered()
        assert "internal error" not in server.log() and "Traceback" not in server.log()


@pytest.mark.parametrize("span", ["hour", "day", "week"])
def test_charts_of_every_span_come_from_the_history(sqlite_app: App, span: str) -> None:
    dispatch(sqlite_app, "test.record", [{"n": n} for n in range(5)], queue="reports")
    assert sqlite_app.ictq("work", "--queue", "reports", "--stop-when-empty").returncode == 0
    with dashboard_server(sqlite_app) as server:
        viewer = server.login(VIEWER)
        points = viewer.get(f"/api/history?span={span}&queue=reports").json()["points"]
        assert sum(p["processed"] for p in points) == 5
        assert len(points) == {"hour": 60, "day": 96, "week": 84}[span]
        step = points[1]["start"] - points[0]["start"]
        assert all(b["start"] - a["start"] == step for a, b in itertools.pairwise(points))
        assert points[-1]["start"] <= time.time() < points[-1]["start"] + step
        page = viewer.get(f"/queue?name=reports&span={span}").text
        assert "(no jobs in this span)" not in page.split("</figure>")[0]


def test_failures_written_behind_its_back_are_grouped_in_the_background(app: App) -> None:
    php = "Illuminate\\Queue\\CallQueuedHandler@call"
    failures = [Failure(json.dumps({"uuid": str(uuid.uuid4()), "displayName": "App\\Jobs\\Sync", "job": php,
                                    "data": {"commandName": "App\\Jobs\\Sync", "command": "O:0:\"\":0:{}"}}),
                        f"RuntimeException: remote {n % 3} said no in /app/Jobs/Sync.php:{n}")
                for n in range(triage.SIZES_BUDGET + 500)]
    with closing(app.storage()) as storage:
        add_failures(storage, failures)
    with dashboard_server(app) as server:
        viewer = server.login(VIEWER)
        first = viewer.get("/api/failed").json()
        grouped = sum(g["count"] for g in first["groups"])
        assert first["ungrouped"] == 0 or grouped < len(failures)  # either way the page answered at once

        def all_grouped() -> bool:
            found = viewer.get("/api/failed").json()
            return found["ungrouped"] == 0 and sum(g["count"] for g in found["groups"]) == len(failures)

        wait_for(all_grouped, timeout=120, interval=1, what="the background reconciliation")
        groups = viewer.get("/api/failed").json()["groups"]
        assert [(g["job"], g["signature"]) for g in groups] == [
            ("App\\Jobs\\Sync", "RuntimeException: remote <n> said no")]
        assert viewer.get("/api/overview").json()["total"]["failed"] == len(failures)
