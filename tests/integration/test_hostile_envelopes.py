"""Whatever row is in the jobs table, a worker carries on: the job behind it runs, and the row
either runs (with its numbers clamped), waits for its (clamped) retry, or is in failed_jobs with
a readable one-line reason. Nothing is left reserved, nothing stops the worker, no failure
record is lost. On the three databases, with an in-process worker."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ictq
from ictq.db import Storage
from ictq.db.base import AVAILABLE_AT_MAX, NewJob
from ictq.payload import MAX_DELAY
from ictq.worker import Worker, WorkerOptions
from tests.integration.test_storage_contract import LARAVEL_DDL
from tests.support.app import App, count_rows, rows
from tests.support.databases import fresh_database

RAN: list[int] = []


@ictq.job("hostile.ok")
def ok(n: int, message: str = "", delay: Any = None) -> None:
    RAN.append(n)


@ictq.job("hostile.raise_once")
def raise_once(n: int, message: str = "", delay: Any = None) -> None:
    """Raises ``message`` on its first attempt (so that even unlimited tries end)."""
    if ictq.current_job().attempt == 1:
        raise ValueError(message)
    RAN.append(n)


@ictq.job("hostile.release_once", tries=0)
def release_once(n: int, message: str = "", delay: Any = None) -> None:
    """Releases itself with ``delay`` on its first attempt."""
    if ictq.current_job().attempt == 1:
        raise ictq.Release(delay=delay, reason=message)
    RAN.append(n)


@ictq.job("hostile.raise")
def always_raise(n: int, message: str = "") -> None:
    raise ValueError(message)


GOOD = -1  # the n of the good job queued behind each hostile one


@pytest.fixture(autouse=True)
def forget_runs() -> None:
    RAN.clear()


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        return "\n".join(record.getMessage() for record in self.records)


def run_worker(app: App, **options: Any) -> Captured:
    """A bounded in-process worker run (``--stop-when-empty``); it must return normally."""
    captured = Captured()
    logger = logging.getLogger(f"ictq.test.hostile.{time.monotonic_ns()}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(captured)
    options = {"stop_when_empty": True, "sleep": 0, "memory": 0, **options}  # memory: not this test process's RSS
    worker = Worker(app.settings, WorkerOptions(**options), logger=logger)
    assert worker.run() == 0, captured.text()
    assert "Traceback" not in captured.text()
    assert "write-failed" not in captured.text(), captured.text()
    return captured


def execute(storage: Storage, sql: str, params: Any = None) -> None:
    with storage._translated():
        cursor = storage.connection.cursor()
        cursor.execute(sql) if params is None else cursor.execute(sql, params)


def empty_tables(storage: Storage) -> None:
    for table in ("jobs", "failed_jobs"):
        execute(storage, f"DELETE FROM {table}")
    RAN.clear()


def push_raw(storage: Storage, text: str, queue: str = "default") -> int:
    now = int(time.time())
    return storage.push(NewJob(queue, text, now, now))


def push_good(app: App) -> None:
    client = app.client()
    try:
        client.dispatch("hostile.ok", {"n": GOOD})
    finally:
        client.close()


def failure_records(storage: Storage) -> list[tuple[str, str, str]]:
    return [(str(u), str(p), str(e)) for u, p, e in rows(storage, "SELECT uuid, payload, exception FROM failed_jobs")]


def assert_readable(exception: str) -> str:
    first = exception.split("\n", 1)[0]
    assert first.strip() and "\x00" not in exception
    exception.encode("utf-8")
    return first


# -- the property: any envelope --------------------------------------------------------------

RAW_NUMBERS = st.sampled_from([
    "1e309", "-1e309", "NaN", "Infinity", "1e20", "-1e20", "-1", "0", "0.5", "2.0", "3", "7",
    "99999999999999999999999999999", "true", "false", "null", '"3"', '"1,5"', '"-5,99999999999999999999999"',
    '"a,b"', "[]", "[1e309]", "[1e20,-3,2.0]", "[[1]]", '{"a":1}', '"\\u0000"', "[true]", "4102444800"])
NUMBERS = RAW_NUMBERS | st.integers(min_value=-(10**30), max_value=10**30).map(str) | st.floats().map(json.dumps)
ODD_TEXT = st.sampled_from(["", "a\x00b", "\x00", "\ud800", "x" * 300, "é" * 250, "\\", "\"'", "line\nbreak",
                            "\udcff\x00tail"]) | st.text(max_size=40)
FIELDS = ("maxTries", "maxExceptions", "timeout", "retryUntil", "exceptions", "backoff", "failOnTimeout")
HANDLERS = ("hostile.ok", "hostile.raise_once", "hostile.release_once")


@st.composite
def envelopes(draw: st.DrawFn, n: int) -> tuple[str, str]:
    """``(job name, payload text)``: a hostile envelope for one of the handlers above."""
    job = draw(st.sampled_from(HANDLERS))
    parts = [f'"job":{json.dumps(job)}']
    if draw(st.booleans()):
        parts.append(f'"uuid":{json.dumps(draw(ODD_TEXT))}')
    if draw(st.booleans()):
        parts.append(f'"displayName":{json.dumps(draw(ODD_TEXT))}')
    for field in FIELDS:
        if draw(st.booleans()):
            parts.append(f'"{field}":{draw(NUMBERS)}')
    delay = draw(NUMBERS)
    parts.append(f'"data":{{"n":{n},"message":{json.dumps(draw(ODD_TEXT))},"delay":{delay}}}')
    return job, "{" + ",".join(draw(st.permutations(parts))) + "}"


@settings(max_examples=20)
@given(data=st.data())
def test_no_envelope_stops_the_worker_or_blocks_the_queue(app: App, data: st.DataObject) -> None:
    storage = app.storage()
    empty_tables(storage)
    _, text = data.draw(envelopes(1))
    job_id = push_raw(storage, text)
    push_good(app)
    before = int(time.time())

    run_worker(app)

    assert GOOD in RAN  # the job behind it ran
    left = rows(storage, "SELECT id, reserved_at, available_at FROM jobs")
    failed = failure_records(storage)
    assert all(id == job_id for id, _, _ in left)
    for _, reserved_at, available_at in left:  # released for later: within the clamped delay
        assert reserved_at is None
        assert before < int(available_at) <= min(AVAILABLE_AT_MAX, int(time.time()) + MAX_DELAY)
    assert len(left) + len(failed) + RAN.count(1) == 1, (left, failed, RAN)
    for _, _, exception in failed:
        assert_readable(exception)
    storage.close()


# -- focused cases ------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ['"backoff":[1e309]', '"backoff":[1e20]', '"backoff":"99999999999999999999"'])
def test_huge_backoffs_release_the_job_for_thirty_days(app: App, raw: str) -> None:
    storage = app.storage()
    job_id = push_raw(storage, f'{{"job":"hostile.raise_once","maxTries":3,{raw},"data":{{"n":1}}}}')
    push_good(app)
    before = int(time.time())
    run_worker(app)
    assert RAN == [GOOD]
    if "1e309" in raw:  # infinite: not a number of seconds, the job fails naming the field
        assert count_rows(storage, "jobs") == 0
        (exception,) = [e for _, _, e in failure_records(storage)]
        assert "'backoff' must be a whole number, got inf" in assert_readable(exception)
    else:
        ((found, reserved_at, available_at),) = rows(storage, "SELECT id, reserved_at, available_at FROM jobs")
        assert found == job_id and reserved_at is None
        assert before + MAX_DELAY <= int(available_at) <= int(time.time()) + MAX_DELAY


@pytest.mark.parametrize("delay", ["1e20", "1e309", "-5", "99999999999999999999999"])
def test_a_job_asking_for_a_huge_release_delay_waits_thirty_days_at_most(app: App, delay: str) -> None:
    storage = app.storage()
    push_raw(storage, f'{{"job":"hostile.release_once","data":{{"n":1,"delay":{delay}}}}}')
    push_good(app)
    before = int(time.time())
    run_worker(app)
    assert GOOD in RAN
    if delay == "-5":  # no wait: it ran again at once
        assert RAN.count(1) == 1 and count_rows(storage, "jobs") == 0
    else:
        ((available_at,),) = rows(storage, "SELECT available_at FROM jobs")
        assert before + MAX_DELAY <= int(available_at) <= int(time.time()) + MAX_DELAY


def test_negative_max_tries_fails_the_job_instead_of_looping(app: App) -> None:
    storage = app.storage()
    push_raw(storage, '{"job":"hostile.raise","maxTries":-1,"data":{"n":1}}')
    push_good(app)
    run_worker(app)
    assert RAN == [GOOD] and count_rows(storage, "jobs") == 0
    ((_, _, exception),) = failure_records(storage)
    assert "'maxTries' must not be negative, got -1" in assert_readable(exception)


def test_a_job_at_the_attempts_columns_limit_fails_and_the_queue_goes_on(app: App) -> None:
    storage = app.storage()
    limit = storage.attempts_limit
    below = push_raw(storage, '{"job":"hostile.ok","data":{"n":1}}')
    at = push_raw(storage, '{"job":"hostile.ok","data":{"n":2}}')
    execute(storage, f"UPDATE jobs SET attempts = {limit - 1} WHERE id = {below}")
    execute(storage, f"UPDATE jobs SET attempts = {limit} WHERE id = {at}")
    push_good(app)

    run_worker(app)
    run_worker(app)  # and a second worker starts as well

    assert RAN == [GOOD] and count_rows(storage, "jobs") == 0
    exceptions = [e for _, _, e in failure_records(storage)]
    assert len(exceptions) == 2
    for exception in exceptions:
        assert f"the job reached the limit of the jobs table's attempts column ({limit})" in exception


def test_unlimited_releases_reach_the_limit_on_laravels_mariadb_table(tmp_path: Path) -> None:
    """Laravel's own MariaDB migration makes ``attempts`` a tinyint unsigned (255 at most)."""
    with fresh_database("mysql", tmp_path) as database:
        app = App(tmp_path, "mysql", database.env)
        storage = app.storage()
        for statement in LARAVEL_DDL["mysql"]:
            execute(storage, statement)
        client = app.client()
        client.migrate()
        for attempts in (254, 255):
            job_id = push_raw(storage, '{"job":"hostile.ok","data":{"n":1}}')
            execute(storage, f"UPDATE jobs SET attempts = {attempts} WHERE id = {job_id}")
        push_good(app)
        run_worker(app)
        assert RAN == [GOOD] and count_rows(storage, "jobs") == 0
        exceptions = [e for _, _, e in failure_records(storage)]
        assert len(exceptions) == 2 and all("attempts column (255)" in e for e in exceptions)
        storage.close()
        client.close()


def test_nul_in_uuid_name_and_message_is_recorded_readably(app: App) -> None:
    storage = app.storage()
    text = ('{"uuid":"ab\\u0000cd","displayName":"na\\u0000me","job":"hostile.raise",'
            '"data":{"n":1,"message":"x\\u0000y"}}')
    push_raw(storage, text)
    push_good(app)
    log = run_worker(app)
    assert RAN == [GOOD] and count_rows(storage, "jobs") == 0
    ((job_uuid, stored, exception),) = failure_records(storage)
    assert job_uuid == "ab\\u0000cd" and "x\\u0000y" in assert_readable(exception)
    assert json.loads(stored)["data"]["message"] == "x\x00y"  # the payload as it was
    assert [m for m in (r.getMessage() for r in log.records) if m.startswith("failed ")]


@pytest.fixture
def sqlite_storage(sqlite_app: App) -> Iterator[Storage]:
    storage = sqlite_app.storage()
    yield storage
    storage.close()


@pytest.mark.parametrize("blob", [b'{"job":"hostile.ok","data":{"n":1}}',
                                  b'{"job":"hostile.ok","data":{"n":1,"message":"\xff\xfe"}}'])
def test_a_blob_payload_on_sqlite_runs_or_fails_readably(sqlite_app: App, sqlite_storage: Storage,
                                                          blob: bytes) -> None:
    now = int(time.time())
    execute(sqlite_storage, "INSERT INTO jobs (queue, payload, attempts, available_at, created_at) "
                            "VALUES ('default', ?, 0, ?, ?)", (blob, now, now))
    push_good(sqlite_app)
    run_worker(sqlite_app)
    assert GOOD in RAN and count_rows(sqlite_storage, "jobs") == 0
    if b"\xff" in blob:
        ((_, _, exception),) = failure_records(sqlite_storage)
        assert "payload is not UTF-8 text" in assert_readable(exception)
    else:
        assert RAN.count(1) == 1 and failure_records(sqlite_storage) == []


def test_two_failures_with_one_uuid_are_both_kept(app: App) -> None:
    storage = app.storage()
    shared = "11111111-2222-4333-8444-555555555555"
    for n in (1, 2):
        push_raw(storage, json.dumps({"uuid": shared, "job": "hostile.raise", "data": {"n": n, "message": f"m{n}"}}))
    push_good(app)
    run_worker(app)
    assert RAN == [GOOD] and count_rows(storage, "jobs") == 0
    records = sorted(failure_records(storage), key=lambda r: json.loads(r[1])["data"]["n"])
    assert [json.loads(p)["data"]["n"] for _, p, _ in records] == [1, 2]
    (first_uuid, _, first), (second_uuid, _, second) = records
    assert first_uuid == shared and "m1" in first
    assert second_uuid != shared and "m2" in second
    assert f"The job's uuid {shared} is already in failed_jobs" in second


def test_a_long_job_name_is_kept_in_the_statistics(app: App) -> None:
    from ictq.db.stats import StatsRepository, StatsRow

    storage = app.storage()
    long_names = ["j" * 300, "j" * 299 + "k", "n\x00\ud800" + "é" * 300]
    StatsRepository(storage).put([StatsRow("w1", name, "done", 1, 0.5, (0,) * 14) for name in long_names])
    stored = {row.job for row in StatsRepository(storage).all()}
    assert len(stored) == 3 and all(len(name) <= 191 and "\x00" not in name for name in stored)


def test_available_at_beyond_the_column_is_clamped_on_every_write(app: App) -> None:
    storage = app.storage()
    far, now = 10**12, int(time.time())
    storage.push(NewJob("default", '{"job":"hostile.ok","data":{"n":1}}', far, now))
    storage.push_many([NewJob("default", '{"job":"hostile.ok","data":{"n":2}}', far, now),
                       NewJob("default", '{"job":"hostile.ok","data":{"n":3}}', -far, now)])
    assert sorted(at for (at,) in rows(storage, "SELECT available_at FROM jobs")) == [0, AVAILABLE_AT_MAX,
                                                                                     AVAILABLE_AT_MAX]
    execute(storage, "DELETE FROM jobs")
    push_raw(storage, '{"job":"hostile.release_once","data":{"n":4,"delay":5}}')
    (job,) = storage.claim("default", int(time.time()) + 1, 90, 1)  # claimable whatever second push_raw saw
    assert storage.release(job, far, job.payload)
    assert rows(storage, "SELECT available_at FROM jobs") == [(AVAILABLE_AT_MAX,)]
    storage.close()
