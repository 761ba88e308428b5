"""Every reading command and a metrics scrape survive any row (issue 13, family 5).

Rows are written straight into the tables, as any other writer could: display names and
queue names with lone surrogates, NUL and other control characters, escape sequences, a
megabyte of text; on SQLite also BLOB payloads and text that is not UTF-8. Then every reading
command (text and ``--json``) must exit 0 with printable output and valid JSON, and the live
``/metrics`` endpoint must answer 200 with a page Prometheus parses.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import tests.support.jobs  # noqa: F401 - registers the test jobs in this process
from ictq import logs
from ictq.cli import root
from ictq.cli.state import State
from ictq.db import Storage
from ictq.worker import Worker, WorkerOptions
from tests.integration.test_metrics import Exporter, parse
from tests.integration.test_metrics import exporter as exporter  # the exporter fixture, shared
from tests.support.app import App, count_rows, rows

SPECIALS = ["\ud800", "a\udcffb", "\x00", "nul\x00inside", "\x1b[31mred\x1b[0m", "tab\there", "line\nbreak",
            "\u2028", "\x7f\x85", "quote\"back\\slash", "é中🎉", "", " ", "x" * 3_000]
NAMES = st.one_of(st.sampled_from(SPECIALS), st.text(st.characters(codec=None), max_size=40),
                  st.tuples(st.text(max_size=5), st.sampled_from(SPECIALS[:10]), st.text(max_size=5)).map("".join))
QUEUES = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), min_size=1,
                 max_size=40).filter(lambda q: q.strip() != "")
READS: list[tuple[str, ...]] = [
    ("size",), ("size", "--json"), ("list",), ("list", "--json"), ("status",), ("workers", "--all"),
    ("workers", "--all", "--json"), ("failed",), ("failed", "--json"), ("failed", "--group"),
    ("failed", "--group", "--json"), ("health", "--min-workers", "0", "--max-failed-per-hour", "1000"),
    ("metrics", "--once"),
]


@st.composite
def hostile_rows(draw: st.DrawFn, dialect: str) -> dict[str, Any]:
    """A few jobs and failed jobs with odd names, queues and exception texts."""
    raw_bytes = dialect == "sqlite" and draw(st.booleans())
    return {
        "jobs": draw(st.lists(st.tuples(NAMES, QUEUES), min_size=1, max_size=3)),
        "failed": draw(st.lists(st.tuples(NAMES, QUEUES, NAMES.filter(lambda e: storable(e, dialect))),
                                min_size=1, max_size=3)),
        "raw": raw_bytes,
        "raw_text": draw(st.binary(min_size=1, max_size=20)) + b"\xff\xfe" if raw_bytes else b"",
    }


def storable(text: str, dialect: str) -> bool:
    """Text a column of ``dialect`` takes as it is (PostgreSQL refuses NUL; no database takes a
    lone surrogate as text: undecodable bytes come in through the SQLite BLOB rows instead)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return dialect != "pgsql" or "\x00" not in text


def envelope(name: str) -> str:
    """Laravel's envelope as JSON text: odd characters travel as JSON escapes (any database stores them)."""
    return json.dumps({"uuid": str(uuid.uuid4()), "displayName": name, "job": "test.record", "maxTries": None,
                       "data": {"n": 1}, "attempts": 0})


def _execute(storage: Storage, sql: str, params: dict[str, Any]) -> None:
    with storage.transaction():
        storage.connection.cursor().execute(sql, params)


def insert(storage: Storage, data: dict[str, Any]) -> None:
    now = int(time.time())
    for name, queue in data["jobs"]:
        _execute(storage, storage.sql["push"], {"queue": queue, "payload": envelope(name), "available_at": now,
                                                "created_at": now})
    for name, queue, exception in data["failed"]:
        _execute(storage, storage.sql["insert_failed"], {
            "uuid": str(uuid.uuid4()), "connection": "database", "queue": queue, "payload": envelope(name),
            "exception": exception or "x", "failed_at": storage.param_time(datetime.now(timezone.utc))})
    if data["raw"]:  # SQLite only: BLOBs and text that is not UTF-8, in every column a read shows
        raw = data["raw_text"]
        blob = b'{"uuid":"u-' + raw.hex().encode() + b'","displayName":"' + raw + b'","job":"test.record"}'
        _execute(storage, "INSERT INTO jobs (queue, payload, attempts, available_at, created_at) "
                          "VALUES (CAST(:q AS TEXT), :p, 0, :t, :t)", {"q": raw, "p": blob, "t": now})
        _execute(storage, "INSERT INTO jobs (queue, payload, attempts, available_at, created_at) "
                          "VALUES (:q, CAST(:p AS TEXT), 0, :t, :t)", {"q": raw, "p": blob, "t": now})
        _execute(storage, "INSERT INTO failed_jobs (uuid, connection, queue, payload, exception) VALUES "
                          "(CAST(:u AS TEXT), :c, CAST(:q AS TEXT), :p, CAST(:e AS TEXT))",
                 {"u": b"u-" + raw, "c": raw, "q": raw, "p": blob, "e": b"RuntimeError: " + raw})
        _execute(storage, "INSERT INTO failed_jobs (uuid, connection, queue, payload, exception) VALUES "
                          "(:u, 'database', :q, CAST(:p AS TEXT), :e)",
                 {"u": b"v-" + raw, "q": raw, "p": blob, "e": b"RuntimeError: " + raw})


def run(app: App, *args: str) -> tuple[int, str]:
    """One ``ictq`` command in this process, as the entry point runs it; output must be UTF-8."""
    result = CliRunner().invoke(root, ["--env-file", str(app.env_file), *args], obj=State())
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, repr(result.exception))
    output = result.stdout_bytes.decode("utf-8")  # strict: no lone surrogate reached the output
    return result.exit_code, output


def read_everything(app: App, storage: Storage) -> None:
    for args in READS:
        code, output = run(app, *args)
        assert code == 0, (args, output[-300:])
        if "--json" in args:
            json.loads(output)
        assert len(output) < 150_000, (args, len(output))  # a megabyte name is cut, not printed whole
    ids = [row[0] for row in rows(storage, "SELECT id FROM failed_jobs ORDER BY id")]
    for failed_id in ids[:2] + ids[-1:]:
        for extra in ((), ("--json",)):
            code, output = run(app, "failed", "show", str(failed_id), *extra)
            assert code == 0, output[-500:]
            if extra:
                json.loads(output)


def test_every_read_and_a_scrape_survive_any_row(app: App, exporter: Exporter) -> None:
    storage = app.storage()

    @settings(max_examples=8)
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        _execute(storage, "DELETE FROM jobs", {})
        _execute(storage, "DELETE FROM failed_jobs", {})
        insert(storage, data.draw(hostile_rows(app.dialect)))
        read_everything(app, storage)
        page = exporter.text()  # asserts HTTP 200
        assert parse(page)  # Prometheus can read it

    try:
        check()
    finally:
        storage.close()
    code, _ = exporter.stop()
    assert code == 0


def test_a_megabyte_of_text_in_every_column_is_cut_in_every_read(app: App) -> None:
    storage = app.storage()
    huge = "é" * 1_000_000
    insert(storage, {"jobs": [(huge, "default")], "failed": [(huge, "default", "RuntimeError: " + huge)],
                     "raw": False, "raw_text": b""})
    try:
        read_everything(app, storage)
    finally:
        storage.close()


def test_a_huge_display_name_makes_a_bounded_log_line(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ICTQ_TEST_OUT", str(app.out))
    storage = app.storage()
    huge = "N" * 10_000_000
    _execute(storage, storage.sql["push"], {"queue": "default", "payload": json.dumps(
        {"uuid": str(uuid.uuid4()), "displayName": huge, "job": "no.such.job", "data": {}}),
        "available_at": 0, "created_at": 0})
    settings_ = app.settings
    logs.setup(settings_.log_file, settings_.log_level, settings_.secrets)
    try:
        assert Worker(settings_, WorkerOptions(stop_when_empty=True, sleep=0, memory=0)).run() == 0
    finally:
        logs.setup(None, "INFO", [], stderr_level=logging.WARNING)
    assert count_rows(storage, "jobs") == 0 and count_rows(storage, "failed_jobs") == 1
    lines = app.log_text().splitlines()
    assert any(" ERROR failed " in line for line in lines), [line[:200] for line in lines]
    assert max(len(line) for line in lines) <= logs.MAX_LINE + 100
    storage.close()
