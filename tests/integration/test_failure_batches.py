"""Failures are written in batches (``Storage.fail_many``, ``ictq.worker.failures``) with the
guarantees of one failure at a time, on SQLite, PostgreSQL and MariaDB: fenced by
``(id, attempts)``, one failure record per failure however often a flush is retried, and
nothing written for a job another worker claimed in between."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ictq.db import Failure, Reserved, Storage
from ictq.errors import DatabaseError, DatabaseUnavailable
from ictq.worker.claims import Claims
from ictq.worker.failures import PendingFailures
from ictq.worker.lease import LeaseKeeper
from tests.support.app import App, count_rows, rows

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
