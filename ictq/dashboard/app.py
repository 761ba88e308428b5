"""The dashboard's web application: Starlette routes, server-rendered Jinja2 pages, a read-only
JSON API beside them, served by uvicorn (:func:`serve`).

Security, in one place:

- every page and API call needs a user (:mod:`ictq.dashboard.auth`): the login form's signed
  session cookie (``SameSite=Strict``, ``HttpOnly``; ``Secure`` with ``ICTQ_DASHBOARD_HTTPS``),
  or HTTP Basic for scripts and probes; only ``/healthz`` and ``/static`` answer without one;
- every change is a POST from an operator carrying the session's CSRF token; a viewer, a Basic
  client or a form without the token gets 403 and nothing changes;
- failed logins are rate-limited per client address and per user name (429);
- every response carries a CSP without inline script or style, frame denial, ``nosniff``,
  ``no-referrer`` and ``no-store``;
- page text passes :mod:`ictq.dashboard.pretty` (secrets of the .env and secret-named payload
  fields masked); errors are one line, masked, never a traceback (the log too).
"""

from __future__ import annotations

import base64
import binascii
import logging
import queue as stdqueue
import secrets
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ictq import control, display, history, ops, triage
from ictq.config import Settings
from ictq.dashboard import auth, charts, views
from ictq.dashboard.cache import Cached
from ictq.db import Storage, open_storage
from ictq.db.users import User, UsersRepository
from ictq.errors import ConfigError, DatabaseError, GroupNotFound, IctqError, NotFound, Refused, one_line

log = logging.getLogger("ictq.dashboard")

SESSION_COOKIE = "ictq_session"
SESSION_AGE = 8 * 3600
REFRESH_EVERY = 5  # seconds between the overview's live updates
RECONCILE_EVERY = 10.0  # seconds between the background reconciliations of the failure groups
POOL = 4  # database connections kept open for requests
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = {
    "Content-Security-Policy": CSP, "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer", "Cache-Control": "no-store", "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
NAMES_MAX_AGE = 60.0  # seconds the charts' queue and job names are kept
SERIES_MAX_AGE = {"hour": 10.0, "day": 60.0, "week": 300.0}  # seconds a chart's points are kept
CAPACITY_MAX_AGE = 30.0
CAPACITY_WAIT = 10.0
CAPACITY_WINDOW = 900

Handler = Callable[[Request], Awaitable[Response]]
T = TypeVar("T")


class Storages:
    """A few open database connections shared by the request threads (one request, one storage)."""

    def __init__(self, settings: Settings, size: int = POOL) -> None:
        self.settings = settings
        self._idle: stdqueue.LifoQueue[Storage] = stdqueue.LifoQueue()
        self.size = size

    @contextmanager
    def borrow(self) -> Iterator[Storage]:
        try:
            storage = self._idle.get_nowait()
        except stdqueue.Empty:
            storage = open_storage(self.settings)
        try:
            yield storage
        except DatabaseError:
            storage.close()  # the connection may be broken: the next request opens a new one
            raise
        if self._idle.qsize() < self.size:
            self._idle.put(storage)
        else:
            storage.close()

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except stdqueue.Empty:
                return


class Reconciler:
    """Keeps the failure groups in step with failed_jobs from a thread of its own (its own
    connection), every ``every`` seconds: signing a million failed jobs PHP wrote takes minutes,
    which no page should wait for (:func:`ictq.triage.reconcile`)."""

    def __init__(self, settings: Settings, every: float = RECONCILE_EVERY) -> None:
        self.settings = settings
        self.every = every
        self.in_step = False  # the side tables matched failed_jobs at the end of the last round
        self.behind = 0  # how many failed jobs the groups left out when the last round began
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ictq-dashboard-reconciler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def round(self, storage: Storage) -> None:
        """Compare the fingerprints; reconcile when they differ."""
        behind = triage.unsigned_count(storage)
        if behind == 0:
            self.in_step, self.behind = True, 0
            return
        self.in_step, self.behind = False, behind
        changed = triage.reconcile(storage)
        self.in_step, self.behind = True, 0
        log.info("failure groups reconciled: %d failed job(s) signed or forgotten", changed)

    def _run(self) -> None:
        storage: Storage | None = None
        while not self._stop.is_set():
            try:
                storage = storage or open_storage(self.settings)
                self.round(storage)
            except IctqError as exc:
                self.in_step = False
                log.warning("failure groups not reconciled: %s", display.mask(one_line(exc)))
                if storage is not None:
                    storage.close()
                storage = None
            except Exception as exc:  # noqa: BLE001 - the thread must outlive anything one round meets
                self.in_step = False
                log.error("failure groups not reconciled: %s: %s", type(exc).__name__, display.mask(one_line(exc)))
            self._stop.wait(self.every)
        if storage is not None:
            storage.close()


def _duration(seconds: object) -> str:
    if not isinstance(seconds, (int, float)):
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.1f} s" if seconds < 60 else _age(seconds)


def _age(seconds: object) -> str:
    if not isinstance(seconds, (int, float)):
        return "-"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h {whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d {whole % 86400 // 3600}h"


def _refresh_every(settings: Settings) -> float:
    """``ICTQ_DASHBOARD_REFRESH``: seconds between the overview's live updates (1 to 300)."""
    text = settings.values.get("ICTQ_DASHBOARD_REFRESH", "").strip()
    if not text:
        return REFRESH_EVERY
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 1 <= seconds <= 300:
        raise ConfigError(f"ICTQ_DASHBOARD_REFRESH={display.printable(text, limit=40)} is not 1 to 300 seconds")
    return seconds


def _https(settings: Settings) -> bool:
    """``ICTQ_DASHBOARD_HTTPS``: the session cookie is ``Secure`` (true behind TLS; false by default)."""
    text = settings.values.get("ICTQ_DASHBOARD_HTTPS", "").strip().lower()
    if text in ("", "0", "false", "no", "off"):
        return False
    if text in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(f"ICTQ_DASHBOARD_HTTPS={display.printable(text, limit=40)} is not true or false")


def _safe_next(target: str | None) -> str:
    """A local path to go back to (never another site: ``//host`` and ``/\\host`` are refused)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")) or "\n" in target:
        return "/"
    return target


class Dashboard:
    """The application and what its requests share: the settings, the key, the connections,
    the users' login attempts and the templates."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time,
                 attempts: auth.Attempts | None = None, https: bool | None = None,
                 refresh_every: float | None = None) -> None:
        self.settings = settings
        self.key = auth.dashboard_key(settings)
        self.clock = clock
        self.attempts = attempts or auth.Attempts()
        self.verified = auth.Verified(self.key)
        self.storages = Storages(settings)
        self.reconciler = Reconciler(settings)
        self.cached = Cached()
        self.refresh_every = refresh_every if refresh_every is not None else _refresh_every(settings)
        self.https = _https(settings) if https is None else https
        self.templates = jinja2.Environment(
            loader=jinja2.PackageLoader("ictq.dashboard", "templates"),
            autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
            undefined=jinja2.StrictUndefined)
        self.templates.filters.update(duration=_duration, age=_age, urlquote=lambda v: quote(str(v), safe=""))
        self.app = Starlette(routes=self._routes(), middleware=[
            Middleware(Guard, dashboard=self),
            Middleware(SessionMiddleware, secret_key=self.key, session_cookie=SESSION_COOKIE, max_age=SESSION_AGE,
                       same_site="strict", https_only=self.https),
        ], lifespan=self._lifespan)

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.reconciler.start()
        yield
        self.reconciler.stop()
        self.storages.close()

    # -- routing ------------------------------------------------------------------------------

    def _routes(self) -> list[Route | Mount]:
        page, api, act = self._page, self._api, self._action
        return [
            Route("/healthz", lambda request: PlainTextResponse("ok")),
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/", page("overview.html", self.overview_data)),
            Route("/queue", page("queue.html", self.queue_data)),
            Route("/charts", page("charts.html", self.charts_data)),
            Route("/workers", page("workers.html", self.workers_data)),
            Route("/failed", page("failed.html", self.failed_data)),
            Route("/failed/groups/{group}", page("group.html", self.group_data)),
            Route("/failed/{id:int}", page("failed_job.html", self.failed_job_data)),
            Route("/jobs/{id:int}", page("job.html", self.job_data)),
            Route("/search", page("search.html", self.search_data)),
            Route("/capacity", page("capacity.html", self.capacity_data)),
            Route("/failed/{id:int}/retry", act(self.retry_failed), methods=["POST"]),
            Route("/failed/{id:int}/forget", act(self.forget_failed), methods=["POST"]),
            Route("/failed/groups/{group}/retry", act(self.retry_group), methods=["POST"]),
            Route("/failed/groups/{group}/forget", act(self.forget_group), methods=["POST"]),
            Route("/queue/pause", act(self.pause), methods=["POST"]),
            Route("/queue/resume", act(self.resume), methods=["POST"]),
            Route("/restart", act(self.restart), methods=["POST"]),
            Route("/api/overview", api(self.overview_data)),
            Route("/api/workers", api(self.workers_data)),
            Route("/api/failed", api(self.failed_data)),
            Route("/api/failed/groups/{group}", api(self.group_data)),
            Route("/api/failed/{id:int}", api(self.failed_job_data)),
            Route("/api/jobs/{id:int}", api(self.job_data)),
            Route("/api/history", api(self.history_data)),
            Route("/api/search", api(self.search_data)),
            Route("/api/capacity", api(self.capacity_data)),
            Mount("/static", StaticFiles(packages=[("ictq.dashboard", "static")]), name="static"),
        ]

    # -- who is asking ------------------------------------------------------------------------

    def _client(self, request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def _user(self, request: Request, storage: Storage) -> User | None:
        """The user of the request: Basic credentials when sent (refused ones raise 401/429),
        else the session's."""
        header = request.headers.get("authorization", "")
        if header[:6].lower() == "basic ":
            return self._basic(request, storage, header[6:].strip())
        name, sid = request.session.get("user"), request.session.get("sid")
        if not isinstance(name, str) or not isinstance(sid, str):
            return None
        users = UsersRepository(storage)
        user = users.get(name)
        if user is None or request.session.get("v") != user.updated_at or users.session_ended(sid):
            request.session.clear()  # removed, or a new password or role since this login
            return None
        return user

    def _basic(self, request: Request, storage: Storage, token: str) -> User:
        try:
            name, sep, password = base64.b64decode(token, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Refused(401, "malformed Basic credentials") from None
        if not sep:
            raise Refused(401, "malformed Basic credentials")
        keys = (f"address:{self._client(request)}", f"user:{name}")
        self._check_attempts(keys)
        user = UsersRepository(storage).get(name)
        if user is None or not self.verified.check(user, password):
            self.attempts.failed(*keys)
            raise Refused(401, "wrong user name or password")
        self.attempts.succeeded(keys[1])
        return user

    def _check_attempts(self, keys: tuple[str, ...]) -> None:
        wait = self.attempts.wait(*keys)
        if wait > 0:
            raise Refused(429, f"too many failed logins: try again in {int(wait) + 1} s")

    def _csrf(self, request: Request) -> str:
        token = request.session.get("csrf")
        if not isinstance(token, str):
            token = auth.new_csrf_token()
            request.session["csrf"] = token
        return token

    # -- the three kinds of endpoint ------------------------------------------------------------

    def _page(self, template: str, data: Callable[[Request, Storage], dict[str, Any]]) -> Handler:
        async def endpoint(request: Request) -> Response:
            def work() -> Response:
                with self.storages.borrow() as storage:
                    user = self._user(request, storage)
                    if user is None:
                        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                        return RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)
                    context = data(request, storage)
                return self._render(request, template, user, context)
            return await run_in_threadpool(work)
        return endpoint

    def _api(self, data: Callable[[Request, Storage], dict[str, Any]]) -> Handler:
        async def endpoint(request: Request) -> Response:
            def work() -> Response:
                with self.storages.borrow() as storage:
                    if self._user(request, storage) is None:
                        raise Refused(401, "log in, or send HTTP Basic credentials")
                    return JSONResponse(data(request, storage))
            return await run_in_threadpool(work)
        return endpoint

    def _action(self, change: Callable[[Request, Storage, dict[str, str]], str]) -> Handler:
        async def endpoint(request: Request) -> Response:
            form = {key: value for key, value in (await request.form()).items() if isinstance(value, str)}

            def work() -> Response:
                with self.storages.borrow() as storage:
                    user = self._user(request, storage)
                    if user is None:
                        raise Refused(401, "log in first")
                    if not auth.same_token(request.session.get("csrf"), form.get(auth.CSRF_FIELD)):
                        raise Refused(403, "this form has no valid CSRF token: reload the page and try again")
                    if not user.operator:
                        raise Refused(403, f"{user.name} is a viewer: only operators may change the queue")
                    said = change(request, storage, form)
                self.cached.clear()  # the operator sees the change at once
                log.info("%s by %s: %s", request.url.path, user.name, display.mask(said))
                request.session["flash"] = said
                return RedirectResponse(_safe_next(form.get("back")), status_code=303)
            return await run_in_threadpool(work)
        return endpoint

    def _render(self, request: Request, template: str, user: User | None, context: dict[str, Any],
                status: int = 200) -> HTMLResponse:
        flash = request.session.pop("flash", None) if user is not None else None
        html = self.templates.get_template(template).render(
            **context, user=user, csrf=self._csrf(request), flash=flash, path=request.url.path,
            where=views.settings_summary(self.settings), refresh_every=self.refresh_every)
        return HTMLResponse(html, status_code=status)

    def error_page(self, request: Request, status: int, reason: str) -> Response:
        if request.url.path.startswith("/api/") or "text/html" not in request.headers.get("accept", ""):
            headers = {"WWW-Authenticate": 'Basic realm="ictq", charset="UTF-8"'} if status == 401 else None
            return JSONResponse({"error": reason}, status_code=status, headers=headers)
        return self._render(request, "error.html", None, {"status": status, "reason": reason}, status)

    # -- logging in and out ---------------------------------------------------------------------

    async def login_form(self, request: Request) -> Response:
        return self._render(request, "login.html", None, {"next": _safe_next(request.query_params.get("next")),
                                                          "error": None, "name": ""})

    async def login(self, request: Request) -> Response:
        form = await request.form()
        name, password = str(form.get("name", ""))[:64], str(form.get("password", ""))
        target = _safe_next(str(form.get("next", "/")))
        if not auth.same_token(request.session.get("csrf"), form.get(auth.CSRF_FIELD)):
            raise Refused(403, "the login form has no valid CSRF token: reload the page and try again")
        keys = (f"address:{self._client(request)}", f"user:{name}")
        self._check_attempts(keys)

        def check() -> tuple[User | None, bool]:
            with self.storages.borrow() as storage:
                user = UsersRepository(storage).get(name)
            return (user if user is not None and auth.verify(user, password) else None), user is not None

        user, known = await run_in_threadpool(check)
        if user is None:
            self.attempts.failed(*keys)
            # An unknown name is not logged: it may be a password typed in the wrong field.
            who = repr(display.printable(name, limit=64)) if known else "an unknown user name"
            log.warning("failed login for %s from %s", who, self._client(request))
            return self._render(request, "login.html", None,
                                {"next": target, "error": "Wrong user name or password.", "name": name}, 401)
        self.attempts.succeeded(keys[1])
        request.session.clear()
        request.session.update(user=user.name, v=user.updated_at, csrf=auth.new_csrf_token(),
                               sid=secrets.token_urlsafe(24))
        log.info("%s logged in from %s", user.name, self._client(request))
        return RedirectResponse(target, status_code=303)

    async def logout(self, request: Request) -> Response:
        form = await request.form()
        if not auth.same_token(request.session.get("csrf"), form.get(auth.CSRF_FIELD)):
            raise Refused(403, "the logout form has no valid CSRF token")
        sid = request.session.get("sid")
        if isinstance(sid, str):
            # The signed cookie cannot be taken back: its session is remembered as ended, so a
            # copy of it is refused too, until any copy would have expired anyway (every response
            # signs the cookie again: a copy made now lives SESSION_AGE from now at most).
            def end() -> None:
                with self.storages.borrow() as storage:
                    users = UsersRepository(storage)
                    users.end_session(sid, self.now() + SESSION_AGE)
                    users.prune_sessions(self.now())

            await run_in_threadpool(end)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    # -- what the pages show ----------------------------------------------------------------------

    def now(self) -> int:
        return int(self.clock())

    def _with_storage(self, read: Callable[[Storage], T]) -> T:
        with self.storages.borrow() as storage:
            return read(storage)

    def _kept(self, key: tuple[object, ...], max_age: float, read: Callable[[Storage], T]) -> T:
        """``read`` a storage, the answer kept ``max_age`` seconds (:class:`Cached`)."""
        return self.cached.get(key, max_age, lambda: self._with_storage(read))

    def _grouped(self, storage: Storage) -> bool:
        """Whether the failure groups (and the tally) hold every failed job: the background
        reconciler found them in step, and the failures since are signed now (two probes);
        before its first round ends, the fingerprints say (signing up to 2,000 new failures)."""
        if self.reconciler.in_step:
            return triage.sign_new(storage)
        return triage.in_step(storage)

    def _overview(self) -> dict[str, Any]:
        return self._kept(("overview",), self.refresh_every,
                          lambda storage: views.overview(storage, self.now(), self._grouped(storage)))

    def overview_data(self, request: Request, storage: Storage) -> dict[str, Any]:
        return self._overview()

    def queue_data(self, request: Request, storage: Storage) -> dict[str, Any]:
        name = request.query_params.get("name", "")
        if not name:
            raise Refused(400, "which queue? (/queue?name=...)")
        now = self.now()
        overview = self._overview()
        row = next((q for q in overview["queues"] if q["queue"] == name), None)
        return {"name": name, "row": row, "jobs": views.queue_jobs(storage, name, now),
                **self._charts(storage, now, request.query_params.get("span", "hour"), name, None)}

    def charts_data(self, request: Request, storage: Storage) -> dict[str, Any]:
        params = request.query_params
        now = self.now()
        queues, jobs = self._kept(("names",), NAMES_MAX_AGE, lambda storage: views.chart_names(storage, self.now()))
        return {"queues": queues, "jobs": jobs, **self._charts(storage, now, params.get("span", "hour"),
                                                                params.get("queue") or None, params.get("job") or None)}

    def _charts(self, storage: Storage, now: int, span: str, queue: str | None, job: str | None) -> dict[str, Any]:
        if span not in history.SPANS:
            raise Refused(400, f"unknown span {display.printable(span, limit=20)!r}: one of {', '.join(history.SPANS)}")
        points = self._series(span, queue, job)
        step = history.SPANS[span][1]
        return {"span": span, "spans": list(history.SPANS), "queue": queue, "job": job,
                "charts": charts.charts(points, step)}

    def history_data(self, request: Request, storage: Storage) -> dict[str, Any]:
        params = request.query_params
        span = params.get("span", "hour")
        if span not in history.SPANS:
            raise Refused(400, f"unknown span: one of {', '.join(history.SPANS)}")
        points = self._series(span, params.get("queue") or None, params.get("job") or None)
        return {"span": span, "step": history.SPANS[span][1], "points": [vars(p) for p in points]}

    def _series(self, span: str, queue: str | None, job: str | None) -> list[history.Point]:
        return self._kept(("series", span, queue, job), SERIES_MAX_AGE[span],
                          lambda storage: history.series(storage, self.now(), span, queue, job))

    def workers_data(self, request: Request, storage: Storage) -> dict[str, Any]:
        return {"workers": views.workers(storage, self.now())}

    def failed_data(self, request: Request, storage: Storage) -> dict[str, Any]:
        ungrouped = 0 if self._grouped(storage) else max(1, self.reconciler.behind)
        return views.failed(storage, request.query_params.get("queue", ""), ungrouped)

    def group_data(self, request: Request, storage: Storage) -> dict[str, Any]:
        return views.group(storage, request.path_params["group"])

    def failed_job_data(self, request: Request, storage: Storage) -> dict[str, Any]:
        return views.failed_job(storage, request.path_params["id"])

    def job_data(self, request: Request, storage: Storage) -> dict[str, Any]:
        return views.queued_job(storage, request.path_params["id"], self.now())

    def search_data(self, request: Request, storage: Storage) -> dict[str, Any]:
        return views.search(storage, request.query_params.get("q", ""), self.now())

    def capacity_data(self, request: Request, storage: Storage) -> dict[str, Any]:
        params = request.query_params
        try:
            wait = float(params.get("wait", CAPACITY_WAIT))
            window = int(params.get("window", CAPACITY_WINDOW))
        except ValueError:
            raise Refused(400, "wait (seconds) and window (seconds) are numbers") from None
        if not 0 < wait <= 86400 or not 60 <= window <= 7 * 86400:
            raise Refused(400, "wait is 0 to 86400 seconds, window 60 to 604800 seconds")
        return self._kept(("capacity", wait, window), CAPACITY_MAX_AGE,
                          lambda storage: views.capacity_advice(storage, self.now(), wait, window))

    # -- what operators change ------------------------------------------------------------------

    def retry_failed(self, request: Request, storage: Storage, form: dict[str, str]) -> str:
        row = ops.failed_find(storage, str(request.path_params["id"]))
        done = ops.retry(storage, [row], self.now())
        triage.forget_members(storage, done.moved)
        if done.refused:
            return f"failed job {row.id} not re-queued: {done.refused[0][1]}"
        return f"re-queued failed job {row.id} on {display.printable(row.queue)}" if done.moved else \
            f"failed job {row.id} was already gone"

    def forget_failed(self, request: Request, storage: Storage, form: dict[str, str]) -> str:
        row = ops.failed_find(storage, str(request.path_params["id"]))
        gone = ops.forget(storage, row)
        triage.forget_members(storage, [row])
        return f"forgot failed job {row.id}" if gone else f"failed job {row.id} was already gone"

    def retry_group(self, request: Request, storage: Storage, form: dict[str, str]) -> str:
        group = triage.resolve(storage, request.path_params["group"], fresh=False)
        done = triage.retry_group(storage, group, self.now())
        refused = f", {len(done.refused)} refused (they stay failed)" if done.refused else ""
        return f"re-queued {len(done.moved)} failed job(s) of group {group.id}{refused}"

    def forget_group(self, request: Request, storage: Storage, form: dict[str, str]) -> str:
        group = triage.resolve(storage, request.path_params["group"], fresh=False)
        return f"forgot {triage.forget_group(storage, group)} failed job(s) of group {group.id}"

    def _queue_name(self, form: dict[str, str]) -> str:
        name = form.get("queue", "")
        if not name or len(name) > 191 or not name.isprintable():
            raise Refused(400, "a queue name is 1 to 191 printable characters")
        return name

    def pause(self, request: Request, storage: Storage, form: dict[str, str]) -> str:
        name = self._queue_name(form)
        told = control.signal_pause(self.settings, storage, name, self.clock())
        return f"paused {name}" + _laravel(told)

    def resume(self, request: Request, storage: Storage, form: dict[str, str]) -> str:
        name = self._queue_name(form)
        told = control.signal_resume(self.settings, storage, name)
        return (f"resumed {name}" if told.changed else f"{name} was not paused") + _laravel(told)

    def restart(self, request: Request, storage: Storage, form: dict[str, str]) -> str:
        told = control.signal_restart(self.settings, storage, self.clock())
        return "restart requested: workers exit after their current job" + _laravel(told)


def _laravel(told: control.Signalled) -> str:
    if told.laravel is None:
        return ""
    if told.error is not None:
        return f" (but Laravel's {told.laravel} cache could not be told: {told.error})"
    return f" (and Laravel's workers, through its {told.laravel} cache)"


_STATUS = ((NotFound, 404), (GroupNotFound, 404), (DatabaseError, 503), (IctqError, 400))


class Guard(BaseHTTPMiddleware):
    """Security headers on every response; refusals and errors as one masked line (a page for
    a browser, JSON for the API), never a traceback, to the client or the log."""

    def __init__(self, app: Any, dashboard: Dashboard) -> None:
        super().__init__(app)
        self.dashboard = dashboard

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        try:
            response = await call_next(request)
        except Refused as exc:
            response = self.dashboard.error_page(request, exc.status, exc.reason)
        except IctqError as exc:
            status = next(code for kind, code in _STATUS if isinstance(exc, kind))
            reason = display.mask(one_line(exc))
            if status == 503:
                log.warning("%s: %s", request.url.path, reason)
            response = self.dashboard.error_page(request, status, reason)
        except Exception as exc:  # noqa: BLE001 - the dashboard answers, and logs one masked line
            reference = secrets.token_hex(4)
            log.error("%s: internal error %s: %s: %s", request.url.path, reference, type(exc).__name__,
                      display.mask(one_line(exc)))
            response = self.dashboard.error_page(request, 500, f"internal error (reference {reference} in the log)")
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        return response
