"""The bulk dispatch's fast paths: batched uuids, the reused JSON encoder, COPY text, NewJob rows."""

from __future__ import annotations

import itertools
import re
import threading
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ictq import payload
from ictq.client import Client
from ictq.config import load_settings
from ictq.db import NewJob
from ictq.db.pgsql import COPY_BATCH, copy_chunk, copy_text
from ictq.errors import DispatchError

UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


# -- random_uuids ------------------------------------------------------------------------------


def take(count: int, batch: int = payload.UUID_BATCH) -> list[str]:
    return list(itertools.islice(payload.random_uuids(batch), count))


@pytest.mark.parametrize("batch", [1, 3, payload.UUID_BATCH])
def test_random_uuids_are_version_4_rfc_4122_uuids_as_uuid4_writes_them(batch: int) -> None:
    for text in take(1000, batch):  # crosses batch boundaries for the small batches
        assert UUID_TEXT.fullmatch(text), text
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == text


def test_random_uuids_are_unique_and_every_random_bit_varies() -> None:
    texts = take(20_000, batch=7) + take(20_000)
    assert len(set(texts)) == len(texts)
    values = [uuid.UUID(text).int for text in texts[:2000]]
    fixed = [bit for bit in range(128) if len({(value >> bit) & 1 for value in values}) == 1]
    assert len(fixed) == 6  # the version (4 bits) and the variant (2 bits), nothing else


def test_random_uuid_generators_are_independent_across_threads() -> None:
    results: list[list[str]] = [[] for _ in range(4)]

    def work(out: list[str]) -> None:
        out.extend(take(5000, batch=5))

    threads = [threading.Thread(target=work, args=(out,)) for out in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [text for out in results for text in out]
    assert len(everything) == 20_000 and len(set(everything)) == 20_000


def test_random_uuids_refuse_an_empty_batch() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        payload.random_uuids(0)


# -- Template.filler ---------------------------------------------------------------------------


DATA: list[Any] = [
    {},
    {"n": 1, "f": 1.5, "big": 10**30, "neg": -0.0, "t": True, "none": None},
    {"s": 'quote " backslash \\ newline \n tab \t cr \r nul \x00 é 漢字 🎉 \u2028'},
    {"nested": {"list": [1, [2, {"x": ()}]], "empty": []}, "tuple": (1, 2)},
    {"lone": "\ud800"},
    {1: "int key", 2.5: "float key", None: "null key", False: "bool key"},
]


def template() -> payload.Template:
    return payload.Template("mail.welcome", created_at=1000, delay=30, max_tries=3, backoff=(10, 60),
                            timeout=20, retry_until=5000)


def rendered_with(job_uuid: str, data: Any) -> str:
    """What render writes, with its uuid replaced by ``job_uuid``."""
    made, text = template().render(data)
    return text.replace(made, job_uuid, 1)


def test_filler_writes_exactly_what_render_writes() -> None:
    fill = template().filler()
    for job_uuid, data in zip(take(2 * len(DATA)), DATA * 2, strict=True):  # the same dicts twice
        assert fill(job_uuid, data) == rendered_with(job_uuid, data)


@pytest.mark.parametrize("bad", [{"when": object()}, {"x": float("nan")}, {"x": float("inf")}, [{}, set()]])
def test_filler_refuses_what_render_refuses_with_the_same_message(bad: Any) -> None:
    with pytest.raises(DispatchError) as rendered:
        template().render(bad)
    with pytest.raises(DispatchError) as filled:
        template().filler()("u", bad)
    assert str(filled.value) == str(rendered.value)
    assert "not JSON-serializable" in str(filled.value)


def test_filler_refuses_a_circular_reference_and_a_new_one_works_after() -> None:
    circular: dict[str, Any] = {"n": 1}
    circular["self"] = circular
    with pytest.raises(DispatchError, match="Circular reference detected"):
        template().filler()("u", circular)
    del circular["self"]
    assert template().filler()("u", circular) == rendered_with("u", circular)


def test_filler_without_the_c_encoder_is_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(payload.json.encoder, "c_make_encoder", None)
    fill = template().filler()
    assert all(fill("u", data) == rendered_with("u", data) for data in DATA)


# -- COPY text ---------------------------------------------------------------------------------


def copy_fields(text: str) -> list[list[str]]:
    """A reference reader of COPY's text format (no NULL markers needed here)."""
    escapes = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r", "b": "\b", "f": "\f", "v": "\v"}
    assert text.endswith("\n")
    rows = []
    for line in text[:-1].split("\n"):
        fields = []
        for raw in line.split("\t"):
            value, chars = [], iter(raw)
            for char in chars:
                value.append(escapes[next(chars)] if char == "\\" else char)
            fields.append("".join(value))
        rows.append(fields)
    return rows


def test_copy_text_writes_plain_rows_as_they_are() -> None:
    jobs = [NewJob("default", '{"uuid":"u","data":{"n":1}}', 1030, 1000), NewJob("other", "é 漢字", 5, 6)]
    assert copy_text(jobs) == 'default\t{"uuid":"u","data":{"n":1}}\t0\t1030\t1000\nother\té 漢字\t0\t5\t6\n'


TRICKY = ["plain", "tab\there", "new\nline", "cr\rhere", "back\\slash", "\\.", "\\N", "\\\\t", "\b\f\v", "end\\",
          '{"s":"a \\"quoted\\" \\\\ \\n"}']


@pytest.mark.parametrize("queue", ["default", "tab\tqueue", "slash\\queue"])
def test_copy_text_escapes_what_copy_must_and_reads_back_the_same(queue: str) -> None:
    jobs = [NewJob(queue, text, 7, 8) for text in TRICKY]
    assert copy_fields(copy_text(jobs)) == [[queue, text, "0", "7", "8"] for text in TRICKY]


def test_one_row_needing_escapes_does_not_break_its_block() -> None:
    jobs = [NewJob("default", f"payload {n}", n, n) for n in range(COPY_BATCH)]
    jobs[100] = NewJob("default", "a\tb\\c\nd", 1, 1)
    assert copy_fields(copy_text(jobs)) == [[job.queue, job.payload, "0", str(job.available_at),
                                             str(job.created_at)] for job in jobs]


@pytest.mark.parametrize("queue", ["default", "odd\tqueue\\name"])
def test_copy_chunk_writes_what_copy_text_writes_for_jobs_of_one_queue_and_moment(queue: str) -> None:
    payloads = ['{"uuid":"u","data":{"n":1}}', "é 漢字", *TRICKY]
    for chunk in (payloads[:2], payloads):
        jobs = [NewJob(queue, text, 2**40, 8) for text in chunk]
        assert copy_chunk(queue, 2**40, 8, chunk) == copy_text(jobs)
        assert copy_fields(copy_chunk(queue, 7, 8, chunk)) == [[queue, text, "0", "7", "8"] for text in chunk]
    with pytest.raises(psycopg.DataError, match="NUL"):
        copy_chunk("default", 1, 1, ["ok", "a\x00b"])


def test_copy_text_refuses_nul_as_psycopg_does() -> None:
    with pytest.raises(psycopg.DataError, match="NUL"):
        copy_text([NewJob("default", "ok", 1, 1), NewJob("a\x00b", "ok", 1, 1)])


# -- NewJob and dispatch_many ------------------------------------------------------------------


def test_new_job_is_an_immutable_named_row() -> None:
    job = NewJob("default", "{}", 5, 4)
    assert (job.queue, job.payload, job.available_at, job.created_at) == tuple(job) == ("default", "{}", 5, 4)
    assert NewJob(queue="default", payload="{}", available_at=5, created_at=4) == job
    with pytest.raises(AttributeError):
        job.queue = "other"  # type: ignore[misc]


class Collecting:
    """A storage that keeps what push_many is given."""

    def __init__(self) -> None:
        self.rows: list[NewJob] = []

    def push_many(self, jobs: Iterable[NewJob]) -> int:
        self.rows.extend(jobs)
        return len(self.rows)

    def push_payloads(self, queue: str, available_at: int, created_at: int, chunks: Iterable[list[str]]) -> int:
        return self.push_many(NewJob(queue, text, available_at, created_at) for chunk in chunks for text in chunk)

    def close(self) -> None:
        pass


def collecting_client(tmp_path: Path) -> tuple[Client, Collecting]:
    env = tmp_path / ".env"
    env.write_text(f"QUEUE_CONNECTION=database\nDB_CONNECTION=sqlite\nDB_DATABASE={tmp_path / 'q.sqlite'}\n")
    storage = Collecting()
    return Client(load_settings(env, environ={}), storage=storage, clock=lambda: 1000.0), storage  # type: ignore[arg-type]


def test_dispatch_many_rows_carry_the_returned_uuids_in_order(tmp_path: Path) -> None:
    client, storage = collecting_client(tmp_path)
    items = [{"n": n} for n in range(600)]  # several uuid batches
    dispatched = client.dispatch_many("some.job", iter(items), queue="q", delay=30)
    assert [d.name for d in dispatched] == ["some.job"] * 600 and {d.queue for d in dispatched} == {"q"}
    assert all(d.id is None and UUID_TEXT.fullmatch(d.uuid) for d in dispatched)
    assert len({d.uuid for d in dispatched}) == 600
    for d, row, item in zip(dispatched, storage.rows, items, strict=True):
        assert (row.queue, row.available_at, row.created_at) == ("q", 1030, 1000)
        parsed = payload.parse(row.payload)
        assert parsed.uuid == d.uuid and parsed.data == item
        assert row.payload == rendered_like(d.uuid, item)


def rendered_like(job_uuid: str, data: Any) -> str:
    made, text = payload.Template("some.job", created_at=1000, delay=30).render(data)
    return text.replace(made, job_uuid, 1)


def test_dispatch_many_of_nothing_pushes_nothing(tmp_path: Path) -> None:
    client, storage = collecting_client(tmp_path)
    assert client.dispatch_many("some.job", []) == [] and storage.rows == []


def test_dispatch_many_stops_at_bad_data(tmp_path: Path) -> None:
    client, _ = collecting_client(tmp_path)

    def items() -> Iterator[dict[str, Any]]:
        yield {"n": 1}
        yield {"n": object()}

    with pytest.raises(DispatchError, match="not JSON-serializable"):
        client.dispatch_many("some.job", items())
