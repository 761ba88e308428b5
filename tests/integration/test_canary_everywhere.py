"""A canary secret is shown nowhere (issue 13, family 8).

Secrets in ``.env`` (plain, a Laravel ``APP_KEY=base64:...``, one with quotes, a backslash, a
tab and a double space) and one set only in the process environment (``STRIPE_SECRET``) travel
into payloads, queue names, display names and exception messages, in their forms (the base64
body, its decoded text, JSON-escaped, URL-encoded, squeezed by a log line). Then the worker's
failure paths run and every command prints: no form of any canary may appear in stdout, stderr,
the log file, ``failed_jobs.exception`` or the metrics page (HTTP and ``--once``).
"""

from __future__ import annotations

import base64
import json
import uuid
from urllib.parse import quote

import pytest

from ictq.db import Storage
from tests.chaos.support import CANARY
from tests.integration.test_metrics import Exporter
from tests.support.app import App, rows

DECODED_KEY = "AppKey-Cnry-0123456789abcdefXYZ!"
APP_KEY_BODY = base64.b64encode(DECODED_KEY.encode()).decode()
WEIRD = 'Wq"ot\\e\tta  b-Cnry'  # a quote, a backslash, a tab, a double space
ENV_ONLY = "sk_live_EnvOnlyCnry42"
SHOWN_FORMS = {CANARY, APP_KEY_BODY, DECODED_KEY, WEIRD, " ".join(WEIRD.split()), json.dumps(WEIRD)[1:-1],
               quote(WEIRD, safe=""), ENV_ONLY, quote(CANARY, safe="")}
# What the tests put into payloads, names and messages: each secret in each form.
CARRIED = [CANARY, APP_KEY_BODY, DECODED_KEY, WEIRD, " ".join(WEIRD.split()), json.dumps(WEIRD)[1:-1],
           quote(WEIRD, safe=""), ENV_ONLY]
# The forms a queue a worker is told to work may carry (`--queue` refuses control characters).
WORKED = [secret for secret in CARRIED if secret.isprintable()]


def with_canaries(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """Put the secrets in .env (quoted as dotenv reads them back), and one in the environment
    of every process the test starts, only there."""
    escaped = WEIRD.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t")
    app.write_env(ICT_API_TOKEN=CANARY, APP_KEY=f"base64:{APP_KEY_BODY}", PARTNER_SECRET=f'"{escaped}"')
    assert app.settings.get("PARTNER_SECRET") == WEIRD  # the .env says what we mean
    monkeypatch.setenv("STRIPE_SECRET", ENV_ONLY)


def insert_named(storage: Storage, display: str, queue: str = "default") -> None:
    payload = json.dumps({"uuid": str(uuid.uuid4()), "displayName": display, "job": "App\\Jobs\\Missing",
                          "data": {"token": display}})
    with storage.transaction():
        storage.connection.cursor().execute(storage.sql["push"], {"queue": queue, "payload": payload,
                                                                   "available_at": 0, "created_at": 0})


def found_in(text: str) -> list[str]:
    return [form for form in SHOWN_FORMS if form in text]


def test_no_form_of_any_secret_is_shown_anywhere(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    with_canaries(app, monkeypatch)
    client = app.client()
    storage = app.storage()
    for n, secret in enumerate(CARRIED):
        client.dispatch("test.boom", {"message": f"partner refused {secret} (attempt {n})"})  # exception text
        if secret in WORKED:
            client.dispatch("test.record", {"n": 100 + n}, queue=f"q-{secret}")  # a queue named with it
        insert_named(storage, f"App\\Jobs\\{secret}")  # a display name with it, for a job nobody knows
        client.dispatch("test.record", {"n": 200 + n}, delay=3600, queue=f"later-{secret}")  # stays listed
    client.dispatch("test.leaky", {"key": "ICT_API_TOKEN"})
    client.dispatch("test.leaky", {"key": "PARTNER_SECRET"})
    client.close()

    places: dict[str, str] = {}
    queues = ",".join(["default", *(f"q-{secret}" for secret in WORKED)])
    worker = app.ictq("work", "--stop-when-empty", "--sleep", "0", "--queue", queues)
    places["ictq work"] = worker.stdout + worker.stderr
    assert worker.returncode == 0, worker.stderr
    failed_ids = [str(row[0]) for row in rows(storage, "SELECT id FROM failed_jobs ORDER BY id")]
    assert len(failed_ids) >= 2 * len(CARRIED)  # every boom and every unknown display name failed

    commands: list[tuple[str, ...]] = [
        ("size",), ("size", "--json"), ("list",), ("list", "--json"), ("status",), ("workers", "--all"),
        ("workers", "--all", "--json"), ("failed",), ("failed", "--json"), ("failed", "--group"),
        ("failed", "--group", "--json"), ("health", "--min-workers", "0"), ("metrics", "--once"),
        ("monitor", queues), ("monitor", queues, "--json"),
        ("retry", "all", "--dry-run"), ("retry", failed_ids[0]), ("forget", failed_ids[1], "--dry-run"),
        ("dispatch", f"no.such.job.{CANARY}"), ("dispatch", "test.record", "--data", json.dumps({"x": WEIRD})),
        ("dispatch", "test.record", "--data", '{"n": 1}', "--queue", f"d-{ENV_ONLY}"),
        ("pause", f"p-{CANARY}"), ("resume", f"p-{CANARY}"),
    ]
    commands += [("failed", "show", ref, *extra) for ref in failed_ids[1::3] for extra in ((), ("--json",))]
    for args in commands:
        result = app.ictq(*args)
        places["ictq " + " ".join(args)] = result.stdout + result.stderr
        assert "Traceback" not in result.stderr, (args, result.stderr)
    served = Exporter(app)  # a live scrape over HTTP
    try:
        places["GET /metrics"] = served.text()
    finally:
        served.stop()
    places["queue.log"] = app.log_text()
    for failed_id, exception in rows(storage, "SELECT id, exception FROM failed_jobs"):
        places[f"failed_jobs.exception id={failed_id}"] = exception
    storage.close()

    leaks = {where: found_in(text) for where, text in places.items() if found_in(text)}
    assert leaks == {}
    assert "********" in places["queue.log"] and "********" in places["ictq failed --json"]
    assert any("********" in text for where, text in places.items() if where.startswith("failed_jobs"))
