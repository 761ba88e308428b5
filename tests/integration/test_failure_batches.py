"""Failures are written in batches (``Storage.fail_many``, ``ictq.worker.failures``) with the
guarantees of one failure at a time, on SQLite, PostgreSQL and MariaDB: fenced by
``(id, attempts)``, one failure record per failure however often a flush is retried, and
nothing written for a job another worker claimed in between."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ictq.db import Failure, Reserved, Storage
from ictq.errors import DatabaseError, DatabaseUnavailable
from ictq.worker.claims import Claims
from ictq.worker.failures import PendingFailures
from ictq.worker.lease import LeaseKeeper
from tests.support.app import App, count_rows, migrated_app, rows, wait_for
from tests.support.failed import add_failed

FAILED_AT = datetime(2026, 12, 1, 12, 0, 0, tzinfo=timezone.utc)


def failure(job: Reserved) -> Failure:
    return Failure(job, "database", f"RuntimeError: job {job.id}\ntrace", FAILED_AT)


def uuid_of(job: Reserved) -> str:
    return str(json.loads(job.payload)["uuid"])


def failed_uuids(storage: Storage) -> list[str]:
    return sorted(str(found) for (found,) in rows(storage, "SELECT uuid FROM failed_jobs"))


def test_a_failure_batch_leaves_a_job_reclaimed_in_between_alone(app: App) -> None:
    app.client(clock=lambda: 1000.0).dispatch_many("test.record", [{"n": i} for i in range(5)])
    mine, other = app.storage(), app.storage()
    batch = mine.claim("default", 1000, 90, 5)
    # The reservations expire; another worker claims the oldest job before this one's failures are written.
    (taken,) = other.claim("default", 1090, 90, 1)
    assert (taken.id, taken.attempts) == (batch[0].id, 2)
    moved = mine.fail_many([failure(job) for job in batch])
    assert moved == {(job.id, 1) for job in batch[1:]}
    assert failed_uuids(mine) == sorted(uuid_of(job) for job in batch[1:])
    assert rows(mine, "SELECT id, attempts FROM jobs") == [(taken.id, 2)]
    assert mine.fail_many([failure(batch[0])]) == set()  # still fenced, alone too
    assert other.fail_many([failure(taken)]) == {(taken.id, 2)}
    assert count_rows(mine, "failed_jobs") == 5 and count_rows(mine, "jobs") == 0


def test_a_job_failed_twice_in_one_batch_keeps_both_records(app: App) -> None:
    """Two jobs with the same uuid (a payload copied by hand): both failures are kept, the
    second under a fresh uuid that says which uuid the job had."""
    client = app.client(clock=lambda: 1000.0)
    client.dispatch("test.record", {"n": 1})
    storage = app.storage()
    (payload,) = rows(storage, "SELECT payload FROM jobs")[0]
    client.dispatch("test.record", {"n": 2})
    storage.run("check_jobs")
    one, two = storage.claim("default", 1000, 90, 2)
    two = two._replace(payload=payload)
    assert len(storage.fail_many([failure(one), failure(two)])) == 2
    records = rows(storage, "SELECT uuid, exception FROM failed_jobs ORDER BY id")
    assert records[0][0] == uuid_of(one) and records[1][0] != uuid_of(one)
    assert f"The job's uuid {uuid_of(one)} is already in failed_jobs" in records[1][1]


class FaultyFlushes:
    """Make the next flushes of ``storage`` fail, each before or after its commit (the database
    went away while the commit's answer was on its way: the client cannot tell which)."""

    def __init__(self, storage: Storage, faults: list[str]) -> None:
        self.faults = list(faults)
        self.original: Callable[[list[Failure]], set[tuple[int, int]]] = storage.fail_many
        storage.fail_many = self.fail_many  # type: ignore[method-assign]

    def fail_many(self, failures: list[Failure]) -> set[tuple[int, int]]:
        fault = self.faults.pop(0) if self.faults else None
        if fault == "before-commit":
            raise DatabaseUnavailable("the connection dropped before the commit")
        moved = self.original(failures)
        if fault == "after-commit":
            raise DatabaseUnavailable("the connection dropped after the commit")
        return moved


@given(size=st.integers(1, 12), reclaimed=st.sets(st.integers(0, 11), max_size=4),
       faults=st.lists(st.sampled_from(["before-commit", "after-commit"]), max_size=3))
def test_a_flush_retried_after_transient_errors_writes_one_record_per_failure(
        app: App, size: int, reclaimed: set[int], faults: list[str]) -> None:
    mine, other = app.storage(), app.storage()
    mine.run("check_jobs")
    for table in ("jobs", "failed_jobs"):
        mine.connection.cursor().execute(f"DELETE FROM {table}")
    app.client(clock=lambda: 1000.0).dispatch_many("test.record", [{"n": i} for i in range(size)])
    batch = mine.claim("default", 1000, 90, size)
    taken = [batch[i] for i in sorted(reclaimed) if i < size]
    if taken:  # another worker re-claims these jobs (their reservations expired) before the flush
        ids = ",".join(str(job.id) for job in taken)
        other.connection.cursor().execute(f"UPDATE jobs SET attempts = 2, reserved_at = 1090 WHERE id IN ({ids})")
    pending = PendingFailures(mine)
    reports: dict[int, list[bool | DatabaseError]] = {}
    for job in batch:
        pending.add(failure(job), lambda result, job=job: reports.setdefault(job.id, []).append(result), 0.0)
    FaultyFlushes(mine, faults)
    for _ in range(len(faults) + 1):
        try:
            pending.flush()
            break
        except DatabaseUnavailable:
            assert len(pending) == size  # kept, for the retry
    assert len(pending) == 0
    kept = [job for job in batch if job not in taken]
    assert failed_uuids(other) == sorted(uuid_of(job) for job in kept)  # one record each, no more
    assert sorted(rows(other, "SELECT id, attempts FROM jobs")) == sorted((job.id, 2) for job in taken)
    assert all(len(results) == 1 for results in reports.values()) and len(reports) == size
    if "after-commit" not in faults:
        assert [job.id for job in batch if reports[job.id] == [True]] == [job.id for job in kept]


def test_a_row_the_database_refuses_holds_back_no_other_failure(app: App) -> None:
    app.client(clock=lambda: 1000.0).dispatch_many("test.record", [{"n": i} for i in range(3)])
    storage = app.storage()
    batch = storage.claim("default", 1000, 90, 3)
    original = storage.fail_many

    def refuse_the_second(failures: Any) -> set[tuple[int, int]]:
        if any(entry.job.id == batch[1].id for entry in failures):
            raise DatabaseError("a row this database cannot take")
        return original(failures)

    storage.fail_many = refuse_the_second  # type: ignore[method-assign]
    pending = PendingFailures(storage)
    results: dict[int, Any] = {}
    for job in batch:
        pending.add(failure(job), lambda result, job=job: results.__setitem__(job.id, result), 0.0)
    pending.flush()
    assert results[batch[0].id] is True and results[batch[2].id] is True
    assert isinstance(results[batch[1].id], DatabaseError)
    assert count_rows(storage, "failed_jobs") == 2


def test_claims_hold_a_failed_job_until_its_failure_is_written_with_the_next_claim(app: App) -> None:
    app.client(clock=lambda: 1000.0).dispatch_many("test.record", [{"n": i} for i in range(4)])
    storage = app.storage()
    lease: LeaseKeeper[object] = LeaseKeeper(storage, 30.0, lambda: 1000.0, logging.getLogger("test"),
                                             on_deadline=lambda running: None)
    claims = Claims(storage, lease, ("default",), 90, lambda: 1000.0, monotonic=lambda: 0.0)
    first = claims.next(frozenset())
    assert first is not None
    written: list[bool | DatabaseError] = []
    claims.fail(failure(first), written.append)
    assert claims.holds_failure(first) and first in lease.held() and written == []
    assert count_rows(storage, "failed_jobs") == 0  # not yet: with the next claim
    second = claims.next(frozenset())
    assert second is not None and written == [True] and not claims.holds_failure(first)
    assert first not in lease.held()
    assert failed_uuids(storage) == [uuid_of(first)]
    claims.fail(failure(second), written.append)
    claims.flush()  # at exit
    assert written == [True, True] and count_rows(storage, "failed_jobs") == 2


def test_a_batch_with_uuids_already_failed_keeps_one_record_per_failure(app: App) -> None:
    """A uuid failed_jobs holds (a retried job failing again) and a uuid met earlier in the same
    batch are each recorded under a fresh uuid saying which uuid the job had; the batch's other
    records keep their uuid and text."""
    client = app.client(clock=lambda: 1000.0)
    client.dispatch_many("test.record", [{"n": i} for i in range(5)])
    storage = app.storage()
    jobs = storage.claim("default", 1000, 90, 5)
    jobs[4] = jobs[4]._replace(payload=jobs[2].payload)  # a payload copied by hand: jobs[2]'s uuid twice
    add_failed(storage, jobs[1].payload, exception="RuntimeError: the first time")
    assert len(storage.fail_many([failure(job) for job in jobs])) == 5
    records = {str(uuid): str(text) for uuid, text in rows(storage, "SELECT uuid, exception FROM failed_jobs")}
    assert len(records) == 6  # the earlier record and one per failure
    assert records[uuid_of(jobs[1])] == "RuntimeError: the first time"
    for job in (jobs[0], jobs[2], jobs[3]):
        assert records[uuid_of(job)] == f"RuntimeError: job {job.id}\ntrace"
    for job, had in ((jobs[1], uuid_of(jobs[1])), (jobs[4], uuid_of(jobs[2]))):
        (text,) = [text for uuid, text in records.items() if text.startswith(f"RuntimeError: job {job.id}\n")]
        assert text == (f"RuntimeError: job {job.id}\n(The job's uuid {had} is already in failed_jobs: "
                        "this failure is recorded under a new uuid.)\ntrace")
    assert count_rows(storage, "jobs") == 0


def test_a_record_another_unique_key_refuses_fails_the_batch_and_loses_nothing(app: App) -> None:
    """failed_jobs with a unique key of its own (beside the uuid's) that a record breaks: the
    batch is refused (written again one failure at a time by the worker) and its jobs stay."""
    client = app.client(clock=lambda: 1000.0)
    client.dispatch_many("test.record", [{"n": i} for i in range(2)])
    storage = app.storage()
    jobs = storage.claim("default", 1000, 90, 2)
    column = "exception(100)" if app.dialect == "mysql" else "exception"
    storage.connection.cursor().execute(f"CREATE UNIQUE INDEX failed_jobs_test_exception ON failed_jobs ({column})")
    add_failed(storage, jobs[1].payload.replace(uuid_of(jobs[1]), "00000000-0000-4000-8000-000000000000"),
               exception=f"RuntimeError: job {jobs[1].id}\ntrace")
    with pytest.raises(DatabaseError):
        storage.fail_many([failure(job) for job in jobs])
    assert sorted(job_id for (job_id,) in rows(storage, "SELECT id FROM jobs")) == sorted(job.id for job in jobs)
    assert count_rows(storage, "failed_jobs") == 1
    assert storage.fail_many([failure(jobs[0])]) == {(jobs[0].id, jobs[0].attempts)}


def test_a_uuid_another_writer_is_recording_is_waited_for_then_recorded_anew(tmp_path: Path) -> None:
    """PostgreSQL: the insert skips a uuid another transaction wrote once that one commits (it
    waits for it), and the failure is recorded under a fresh uuid, as a uuid found taken is."""
    with migrated_app("pgsql", tmp_path) as app:
        app.client(clock=lambda: 1000.0).dispatch("test.record", {"n": 1})
        storage, other = app.storage(), app.storage()
        (job,) = storage.claim("default", 1000, 90, 1)
        backend = storage.connection.info.backend_pid
        with other.transaction():
            other.connection.cursor().execute(
                "INSERT INTO failed_jobs (uuid, connection, queue, payload, exception, failed_at) "
                "VALUES (%s, 'database', 'default', %s, 'RuntimeError: the other writer', now())",
                (uuid_of(job), job.payload))
            result: list[Any] = []
            writer = threading.Thread(target=lambda: result.append(storage.fail_many([failure(job)])))
            writer.start()
            wait_for(lambda: rows(other, f"SELECT 1 FROM pg_stat_activity WHERE pid = {backend} "
                                         "AND wait_event_type = 'Lock'"), what="the insert waits for the other writer")
        writer.join()
        assert result == [{(job.id, job.attempts)}]
        records = {str(uuid): str(text) for uuid, text in rows(other, "SELECT uuid, exception FROM failed_jobs")}
        assert records.pop(uuid_of(job)) == "RuntimeError: the other writer"
        assert list(records.values()) == [f"RuntimeError: job {job.id}\n(The job's uuid {uuid_of(job)} is already "
                                          "in failed_jobs: this failure is recorded under a new uuid.)\ntrace"]


def test_a_uuid_already_failed_late_in_a_large_batch_leaves_one_record_per_failure(app: App) -> None:
    """A batch large enough to be sent as several statements, the last job's uuid already in
    failed_jobs: no record is written twice, that one is recorded under a fresh uuid."""
    client = app.client(clock=lambda: 1000.0)
    client.dispatch_many("test.record", [{"n": i} for i in range(40)])
    storage = app.storage()
    jobs = [job._replace(payload=json.dumps({**json.loads(job.payload), "pad": "x" * 40_000}))
            for job in storage.claim("default", 1000, 90, 40)]  # ~1.6 MB of records
    add_failed(storage, jobs[-1].payload, exception="RuntimeError: the first time")
    assert len(storage.fail_many([failure(job) for job in jobs])) == 40
    records = {str(uuid): str(text) for uuid, text in rows(storage, "SELECT uuid, exception FROM failed_jobs")}
    assert len(records) == 41 and count_rows(storage, "failed_jobs") == 41
    for job in jobs[:-1]:
        assert records[uuid_of(job)] == f"RuntimeError: job {job.id}\ntrace"
    assert records[uuid_of(jobs[-1])] == "RuntimeError: the first time"
    (renamed,) = [text for text in records.values() if text.startswith(f"RuntimeError: job {jobs[-1].id}\n")]
    assert f"(The job's uuid {uuid_of(jobs[-1])} is already in failed_jobs" in renamed
    assert count_rows(storage, "jobs") == 0
