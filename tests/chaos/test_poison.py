"""Poison input: each bad job ends in failed_jobs with a readable reason (or comes back through
the lease when it kills its worker), and the workers keep serving the good jobs around it."""

from __future__ import annotations

import json
import time

import pytest

from ictq import payload
from ictq.db import NewJob, Storage
from ictq.db.stats import StatsRepository
from ictq.errors import DatabaseError
from tests.chaos.support import Supervisor, leaks, marks, report
from tests.support import laravel
from tests.support.app import App, count_rows, rows, wait_for

pytestmark = pytest.mark.slow
GOOD = 200


def envelope(name: str, data: object, uuid: str) -> str:
    return json.dumps({"uuid": uuid, "displayName": name, "job": name, "data": data})


def poison_payloads() -> dict[str, tuple[str, str]]:
    """``case: (payload, what the reason must say)``."""
    php_uuid, php = laravel.job_payload()
    deep = '{"uuid":"poison-deep-nesting","job":"test.record","data":{"n":' + "[" * 200_000 + "]" * 200_000 + "}}"
    _, built = payload.build("test.record", {"n": 1, "blob": "x" * (10 * 1024 * 1024)}, created_at=0)
    big = json.dumps({**json.loads(built), "uuid": "poison-10mb"})
    return {
        "malformed-json": ('{"uuid":"poison-malformed-json","job":"test.record","data":{"n":1}', "not valid JSON"),
        "unknown-job": (envelope("no.such.job", {}, "poison-unknown-job"), "no.such.job"),
        "missing-job-field": ('{"uuid":"poison-missing-job-field","data":{"n":1}}', "job"),
        "missing-argument": (envelope("test.record", {}, "poison-missing-argument"), "missing"),
        "data-not-object": (envelope("test.record", [1, 2], "poison-data-not-object"), "must be a JSON object"),
        "job-not-string": ('{"uuid":"poison-job-not-string","job":42,"data":{}}', "job"),
        "tries-not-int": ('{"uuid":"poison-tries-not-int","job":"test.record","maxTries":"lots","data":{"n":1}}',
                          "maxTries"),
        "10mb": (big, "blob"),
        "php-job": (php.replace(php_uuid, "poison-php-job"), "Laravel (PHP) job"),
        "deep-nesting": (deep, "not valid JSON"),
        "undeserialisable": (envelope("test.undeserialisable", {"a": 1}, "poison-undeserialisable"),
                             "cannot deserialise"),
        "system-exit": (envelope("test.exit", {"code": 3}, "poison-system-exit"), "SystemExit"),
        "exits-process": (envelope("test.hard_exit", {"code": 7}, "poison-exits-process"),
                          "attempted too many times"),
        "never-returns": (envelope("test.stubborn", {"n": 1}, "poison-never-returns"), "could not be interrupted"),
    }


def drain(supervisor: Supervisor, storage: Storage, timeout: float, allowed_exits: int = 2) -> None:
    """Wait for an empty jobs table; fail at once on a crash loop, with the workers' last words."""

    def drained() -> bool:
        exits = supervisor.unexpected_exits()
        if len(exits) > allowed_exits:
            last = supervisor.output().strip().splitlines()[-3:]
            raise AssertionError(f"workers in a crash loop ({len(exits)} exits, codes "
                                 f"{sorted({e.code for e in exits})}); last output: {last}")
        return count_rows(storage, "jobs") == 0

    wait_for(drained, timeout=timeout, interval=0.5, what="the queue to drain")


def test_poison_jobs_fail_readably_and_the_workers_go_on(chaos_app: App) -> None:
    app = chaos_app
    # Two of these jobs end their worker; the jobs it had claimed come back after retry_after at
    # the latest. Keep that short here: how fast a dead worker's jobs come back is test_kill9's.
    app.write_env(DB_QUEUE_RETRY_AFTER="20")
    client = app.client()
    storage = app.storage()
    cases = poison_payloads()
    good = iter(range(GOOD))
    now = int(time.time())
    for payload_text, _ in cases.values():
        client.dispatch_many("test.mark", [{"n": next(good)} for _ in range(GOOD // (len(cases) + 1))])
        storage.push(NewJob("default", payload_text, now, now))
    expected = {f"poison-{case}": needle for case, (_, needle) in cases.items()}
    leaky = client.dispatch("test.leaky", {"key": "ICT_API_TOKEN"})
    client.dispatch_many("test.mark", [{"n": n} for n in good])
    supervisor = Supervisor(app, 2, ("--sleep", "0.1", "--tries", "1"))
    began = time.monotonic()
    supervisor.start()
    try:
        drain(supervisor, storage, timeout=120)
        # The job that never returns is recorded as failed just before its worker exits: let the
        # stand-in see that exit (and the one of the job that ends its process) before stopping.
        wait_for(lambda: len(supervisor.exits) >= 2, timeout=30, what="the two worker exits")
    finally:
        supervisor.stop()
    elapsed = time.monotonic() - began
    failed = {str(u): str(e) for u, e in rows(storage, "SELECT uuid, exception FROM failed_jobs")}
    reasons = {uuid: text.splitlines()[0] for uuid, text in failed.items()}
    for uuid, reason in sorted(reasons.items()):
        print(f"[chaos] poison {app.dialect} {uuid}: {reason[:160]}")
    report("poison", dialect=app.dialect, poison=len(expected), failed=len(failed), good=GOOD,
           good_done=len({n for n, _ in marks(app)}), worker_exits=[e.code for e in supervisor.exits],
           seconds=f"{elapsed:.1f}")
    assert sorted({n for n, _ in marks(app)}) == list(range(GOOD))
    for uuid, needle in expected.items():
        assert uuid in reasons, f"{uuid} is not in failed_jobs"
        assert needle.lower() in failed[uuid].lower(), (uuid, reasons[uuid])
        assert len(reasons[uuid]) > 20 and "\\x" not in reasons[uuid]
    assert "ICT_API_TOKEN=********" in failed[leaky.uuid]
    assert set(failed) == {*expected, leaky.uuid}
    # Only the two jobs that end their worker end one: no crash loop.
    assert sorted(e.code for e in supervisor.exits) == [1, 7], supervisor.exits
    assert supervisor.final_codes == [0, 0]
    assert leaks(app, [supervisor.output()]) == []


def test_non_utf8_bytes_fail_the_job_not_the_worker(chaos_app: App) -> None:
    """Raw bytes that are not UTF-8: SQLite stores them (they must end in failed_jobs);
    PostgreSQL and MariaDB refuse them at insert, so no worker ever meets them."""
    app = chaos_app
    storage = app.storage()
    raw = b'{"uuid":"poison-non-utf8","job":"test.record","data":{"n":"\xff\xfe\xc3"}}'
    now = int(time.time())
    if app.dialect != "sqlite":
        with pytest.raises(DatabaseError), storage._translated():
            cursor = storage.connection.cursor()
            cursor.execute(f"INSERT INTO jobs (queue, payload, attempts, available_at, created_at) "
                           f"VALUES ('default', {_bytes_literal(app.dialect, raw)}, 0, {now}, {now})")
        assert count_rows(storage, "jobs") == 0
        return
    app.client().dispatch_many("test.mark", [{"n": n} for n in range(20)])
    with storage._translated():
        storage.connection.execute("INSERT INTO jobs (queue, payload, attempts, available_at, created_at) "
                                   "VALUES ('default', CAST(? AS TEXT), 0, ?, ?)", (raw, now, now))
    app.client().dispatch_many("test.mark", [{"n": n} for n in range(20, 40)])
    supervisor = Supervisor(app, 1, ("--sleep", "0.1"))
    supervisor.start()
    try:
        drain(supervisor, storage, timeout=60, allowed_exits=0)
    finally:
        supervisor.stop()
    assert sorted({n for n, _ in marks(app)}) == list(range(40))
    assert supervisor.final_codes == [0]
    [(uuid, exception)] = rows(storage, "SELECT uuid, exception FROM failed_jobs")
    report("non-utf8", dialect=app.dialect, reason=str(exception).splitlines()[0][:120])
    assert uuid == "poison-non-utf8" and "UTF-8" in str(exception)
    assert leaks(app, [supervisor.output()]) == []


def _bytes_literal(dialect: str, raw: bytes) -> str:
    if dialect == "pgsql":  # text from bytes the server must validate as UTF-8
        return f"convert_from('\\x{raw.hex()}'::bytea, 'UTF8')"
    return f"CONVERT(X'{raw.hex()}' USING utf8mb4)"


def test_a_job_name_that_is_not_encodable_fails_without_harming_the_worker(chaos_app: App) -> None:
    """Valid JSON whose job name is a lone UTF-16 surrogate (``"\\ud800"``): Python can read it
    but cannot encode it back to UTF-8 for the database."""
    app = chaos_app
    storage = app.storage()
    now = int(time.time())
    storage.push(NewJob("default", '{"uuid":"poison-lone-surrogate","job":"test.\\ud800","data":{}}', now, now))
    app.client().dispatch_many("test.mark", [{"n": n} for n in range(20)])
    supervisor = Supervisor(app, 1, ("--sleep", "0.1"))
    supervisor.start()
    try:
        drain(supervisor, storage, timeout=60, allowed_exits=0)
        # A heartbeat after the drain writes the job statistics, names included.
        wait_for(lambda: sum(row.count for row in StatsRepository(storage).all()
                             if (row.job, row.outcome) == ("test.mark", "done")) == 20, what="the statistics")
    finally:
        supervisor.stop()
    [(uuid, exception)] = rows(storage, "SELECT uuid, exception FROM failed_jobs")
    report("lone-surrogate", dialect=app.dialect, reason=str(exception).splitlines()[0][:120],
           worker_exits=[e.code for e in supervisor.exits])
    assert uuid == "poison-lone-surrogate" and "is not valid Unicode text" in str(exception)
    assert sorted({n for n, _ in marks(app)}) == list(range(20))
    assert supervisor.exits == [] and supervisor.final_codes == [0]
    output = supervisor.output()
    assert "Logging error" not in output, "the worker could not write its log line about the job"
    assert "heartbeat-failed" not in output, "the heartbeat could not store the job statistics"
    assert "uuid=poison-lone-surrogate" in app.log_text()
    assert leaks(app, [supervisor.output()]) == []
