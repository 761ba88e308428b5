"""ictq's side data stays right while PHP writes behind its back, on each database.

The failure signatures (``failed --group``, ``metrics``) are kept in side tables; PHP workers,
``php artisan queue:forget`` and ``queue:flush`` insert and delete failed rows with plain SQL,
and transactions commit out of id order. Whatever happened, every read must equal what a
from-scratch grouping of failed_jobs gives (:func:`ictq.triage.group_rows`, the reference).
The jobs-side reads (sizes by state, queue names) are checked the same way against the rows.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from ictq import ops, triage
from ictq.db import NewJob, Storage
from ictq.db.failure_groups import FailureGroupsRepository
from ictq.db.jobs import JobsRepository
from tests.support import laravel
from tests.support.app import App, count_rows, rows

NOW = 1_800_000_000
EXCEPTIONS = (
    "RuntimeException: connection to 10.0.0.{n}:5432 refused after {n}ms in /srv/app/Job.php:{n}\n#0 trace",
    "ValueError: order {n} not found\nTraceback ...",
    "KeyError: 'user'",
)


def param(storage: Storage, name: str) -> str:
    return f":{name}" if storage.dialect == "sqlite" else f"%({name})s"


def php_insert_failed(storage: Storage, failed_id: int, queue: str, job: str, exception: str) -> None:
    """A row as Laravel's DatabaseUuidFailedJobProvider writes it, with the id a late-committing
    transaction had taken (so rows may arrive below ictq's highest known id)."""
    names = ("id", "uuid", "connection", "queue", "payload", "exception", "failed_at")
    sql = f"INSERT INTO failed_jobs ({', '.join(names)}) VALUES ({', '.join(param(storage, n) for n in names)})"
    payload = json.dumps({"uuid": f"u-{failed_id}", "displayName": job, "data": {},
                          "job": "Illuminate\\Queue\\CallQueuedHandler@call"})
    values = {"id": failed_id, "uuid": f"u-{failed_id}", "connection": "database", "queue": queue, "payload": payload,
              "exception": exception, "failed_at": storage.param_time(laravel_time(failed_id))}
    with storage._translated():
        storage.connection.cursor().execute(sql, values)


def laravel_time(failed_id: int) -> datetime:
    return datetime(2027, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=failed_id)


def php_delete_failed(storage: Storage, failed_id: int) -> None:
    with storage._translated():
        storage.connection.cursor().execute(f"DELETE FROM failed_jobs WHERE id = {int(failed_id)}")


def reference(storage: Storage) -> dict[str, dict[str, Any]]:
    every = [row for batch in ops.failed_all(storage) for row in batch]
    return {g.id: g.as_dict() for g in triage.group_rows(every)}


def assert_side_data_right(storage: Storage) -> None:
    expected = reference(storage)
    assert {g.id: g.as_dict() for g in triage.groups(storage)} == expected
    by_job: Counter[tuple[str, str]] = Counter()
    for row in (row for batch in ops.failed_all(storage) for row in batch):
        by_job[(row.queue, row.name)] += 1
    assert Counter(triage.job_counts(storage)) == by_job
    failed, members = FailureGroupsRepository(storage).fingerprints()
    assert failed == members
    assert triage.in_step(storage)
    for now in (NOW, int(laravel_time(30).timestamp())):  # the last hour: none, or some of the rows
        assert failed_counts(triage.sizes(storage, now, reconciled=True)) == failed_counts(ops.sizes(storage, now))


def failed_counts(sizes: list[ops.QueueSize]) -> list[tuple[str, int, int]]:
    return [(row.queue, row.failed, row.failed_last_hour) for row in sizes]


STEP = st.one_of(
    st.tuples(st.just("insert"), st.integers(1, 60), st.sampled_from(["default", "emails"]),
              st.sampled_from(["App\\Jobs\\Sync", "mail.welcome"]), st.integers(0, 2), st.integers(0, 999)),
    st.tuples(st.just("delete"), st.integers(0, 59)),
    st.tuples(st.just("read")),
)


@given(steps=st.lists(STEP, max_size=25))
def test_groups_stay_right_under_php_inserts_and_deletes(app: App, monkeypatch: pytest.MonkeyPatch,
                                                         steps: list[tuple[Any, ...]]) -> None:
    monkeypatch.setattr(triage, "WINDOW", 7)  # a reconciliation walks several windows of ids
    storage = app.storage()
    with storage._translated():
        for table in ("ictq_failed_jobs_members", "ictq_failed_jobs_groups", "ictq_failed_jobs_tally", "failed_jobs"):
            storage.connection.cursor().execute(f"DELETE FROM {table}")
        storage.connection.cursor().execute("UPDATE ictq_failed_jobs_signed SET members = 0, highest = 0, total = 0")
    note(repr(steps))
    used: set[int] = set()  # an id is never given twice (AUTO_INCREMENT), though it may commit late
    for step in steps:
        if step[0] == "insert":
            _, failed_id, queue, job, which, number = step
            if failed_id not in used:
                used.add(failed_id)
                php_insert_failed(storage, failed_id, queue, job, EXCEPTIONS[which].format(n=number))
        elif step[0] == "delete":
            present = [int(r[0]) for r in rows(storage, "SELECT id FROM failed_jobs ORDER BY id")]
            if present:
                php_delete_failed(storage, present[step[1] % len(present)])
        else:
            assert_side_data_right(storage)
    assert_side_data_right(storage)


def test_ictq_retry_and_forget_by_group_act_on_what_the_rows_say_now(app: App) -> None:
    storage = app.storage()
    for failed_id in range(1, 7):
        php_insert_failed(storage, failed_id, "default", "mail.welcome", EXCEPTIONS[failed_id % 2].format(n=failed_id))
    (refused, order) = sorted(triage.groups(storage), key=lambda g: g.signature)
    assert refused.count == 3 and order.count == 3
    php_delete_failed(storage, 3)  # PHP forgets one of the group behind ictq's back
    php_insert_failed(storage, 9, "emails", "mail.welcome", EXCEPTIONS[1].format(n=77))
    members = [row.id for batch in triage.members(storage, triage.resolve(storage, order.id)) for row in batch]
    assert members == [1, 5, 9]
    assert [row.id for batch in triage.members(storage, order, ["emails"]) for row in batch] == [9]
    assert ops.forget_many(storage, [row for batch in triage.members(storage, order) for row in batch]) == 3
    assert_side_data_right(storage)
    assert [g.count for g in triage.groups(storage)] == [3]  # the other group, untouched


def test_a_row_signed_by_ictq_and_changed_by_hand_is_not_retried_under_its_old_group(app: App) -> None:
    storage = app.storage()
    php_insert_failed(storage, 1, "default", "mail.welcome", EXCEPTIONS[2])
    (group,) = triage.groups(storage)
    php_delete_failed(storage, 1)
    # The same id again (not what AUTO_INCREMENT gives, but a restored backup might): the
    # fingerprints match, and retry still checks each row's own signature.
    php_insert_failed(storage, 1, "default", "mail.welcome", EXCEPTIONS[0].format(n=1))
    assert list(triage.members(storage, group)) == []


def test_metrics_count_failed_jobs_of_php_rows_by_queue_and_job(app: App) -> None:
    storage = app.storage()
    php_insert_failed(storage, 5, "default", "App\\Jobs\\Sync", EXCEPTIONS[0].format(n=1))
    php_insert_failed(storage, 3, "emails", "App\\Jobs\\Sync", EXCEPTIONS[0].format(n=2))
    assert triage.job_counts(storage) == {("default", "App\\Jobs\\Sync"): 1, ("emails", "App\\Jobs\\Sync"): 1}
    php_insert_failed(storage, 4, "emails", "mail.welcome", laravel.php_exception())  # below the highest id
    php_delete_failed(storage, 5)
    assert triage.job_counts(storage) == {("emails", "App\\Jobs\\Sync"): 1, ("emails", "mail.welcome"): 1}


@given(jobs=st.lists(st.tuples(st.sampled_from(["default", "emails", "z"]), st.integers(-100, 100),
                               st.booleans()), max_size=30))
def test_sizes_and_queue_names_match_the_rows_written_behind_ictqs_back(app: App,
                                                                         jobs: list[tuple[str, int, bool]]) -> None:
    storage = app.storage()
    with storage._translated():
        storage.connection.cursor().execute("DELETE FROM jobs")
    storage.push_many([NewJob(queue, "{}", NOW + offset, NOW) for queue, offset, _ in jobs])
    reserved = [i for i, (_, _, held) in enumerate(jobs) if held]
    ids = [int(r[0]) for r in rows(storage, "SELECT id FROM jobs ORDER BY id")]
    if reserved:  # a PHP worker's reservation: attempts and reserved_at written directly
        listed = ", ".join(str(ids[i]) for i in reserved)
        with storage._translated():
            storage.connection.cursor().execute(
                f"UPDATE jobs SET reserved_at = {NOW}, attempts = 1 WHERE id IN ({listed})")
    assert JobsRepository(storage).queue_names() == sorted({queue for queue, _, _ in jobs})
    expected = {}
    for queue in {q for q, _, _ in jobs}:
        mine = [(offset, held) for q, offset, held in jobs if q == queue]
        pending = [offset for offset, held in mine if not held and offset <= 0]
        expected[queue] = (len(pending), sum(1 for o, h in mine if not h and o > 0), sum(1 for _, h in mine if h),
                           None if not pending else -min(pending))
    assert {s.queue: (s.pending, s.delayed, s.reserved, s.oldest_pending_age) for s in ops.sizes(storage, NOW)} \
        == expected
    assert count_rows(storage, "jobs") == len(jobs)


def test_reconciliations_at_once_count_each_failure_once(app: App) -> None:
    """Scrapes and ``failed --group`` on several hosts reconcile at the same moment: the tally and
    the members' fingerprint, kept under one lock, still count each failed job once."""
    storage = app.storage()
    for failed_id in range(1, 301):
        php_insert_failed(storage, failed_id, ("default", "emails")[failed_id % 2], "mail.welcome",
                          EXCEPTIONS[failed_id % 3].format(n=failed_id))
    errors: list[BaseException] = []

    def reconcile() -> None:
        own = app.storage()
        try:
            for _ in range(3):
                triage.reconcile(own)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=reconcile) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert_side_data_right(storage)
    assert FailureGroupsRepository(storage).queue_totals() == {"default": 150, "emails": 150}


def test_side_tables_of_an_earlier_ictq_are_counted_on_their_first_change(app: App) -> None:
    """An upgrade finds members signed by an ictq without the tally: the first change counts
    the tally and the fingerprint from the members, and the reads agree with failed_jobs."""
    storage = app.storage()
    for failed_id in range(1, 41):
        php_insert_failed(storage, failed_id, "default", "mail.welcome", EXCEPTIONS[failed_id % 3].format(n=failed_id))
    triage.reconcile(storage)
    with storage._translated():  # as the earlier ictq left them: members, and no tally yet
        storage.connection.cursor().execute("DELETE FROM ictq_failed_jobs_tally")
        storage.connection.cursor().execute("UPDATE ictq_failed_jobs_signed SET members = -1, highest = 0, total = 0")
    failed, members = FailureGroupsRepository(storage).fingerprints()
    assert failed == members  # counted from the members while the kept one is missing
    php_insert_failed(storage, 41, "emails", "mail.welcome", EXCEPTIONS[0].format(n=41))
    php_delete_failed(storage, 7)
    assert_side_data_right(storage)
    assert FailureGroupsRepository(storage).queue_totals() == {"default": 39, "emails": 1}


def test_size_counts_failed_jobs_in_failed_jobs_while_the_side_tables_lag(app: App,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """More new failures than ``size`` signs on its own, or rows deleted behind ictq's back:
    ``size`` counts in failed_jobs (right, if slower) and leaves the catching up to the reads
    that reconcile."""
    monkeypatch.setattr(triage, "SIZES_BUDGET", 5)
    storage = app.storage()
    for failed_id in range(1, 4):
        php_insert_failed(storage, failed_id, "default", "mail.welcome", EXCEPTIONS[0].format(n=failed_id))
    assert triage.in_step(storage)  # three new failures: signed on the way
    for failed_id in range(4, 14):
        php_insert_failed(storage, failed_id, "emails", "mail.welcome", EXCEPTIONS[1].format(n=failed_id))
    assert not triage.in_step(storage)  # ten: too many to sign for a size
    assert failed_counts(triage.sizes(storage, NOW)) == failed_counts(ops.sizes(storage, NOW)) == [
        ("default", 3, 0), ("emails", 10, 0)]
    triage.reconcile(storage)
    php_delete_failed(storage, 2)
    assert not triage.in_step(storage)  # a deletion is found by the walk of a reconciliation only
    assert failed_counts(triage.sizes(storage, NOW)) == [("default", 2, 0), ("emails", 10, 0)]
    assert_side_data_right(storage)


def test_new_failures_are_signed_with_two_probes_and_group_actions_keep_the_side_tables_in_step(
        app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = app.storage()
    for failed_id in range(1, 5):
        php_insert_failed(storage, failed_id, "default", "mail.welcome", EXCEPTIONS[failed_id % 2].format(n=failed_id))
    assert triage.sign_new(storage)  # nothing signed ever: the fingerprints decide, and sign the four
    assert sum(g.count for g in triage.groups(storage, fresh=False)) == 4
    assert triage.sign_new(storage)  # nothing new
    for failed_id in (5, 6, 7):
        php_insert_failed(storage, failed_id, "emails", "mail.welcome", EXCEPTIONS[2])
    assert triage.sign_new(storage)
    assert_side_data_right(storage)
    monkeypatch.setattr(triage, "SIZES_BUDGET", 2)
    for failed_id in (8, 9, 10):
        php_insert_failed(storage, failed_id, "emails", "mail.welcome", EXCEPTIONS[2])
    assert not triage.sign_new(storage)  # more than the budget: left to reconcile
    triage.reconcile(storage)
    keyerror = next(g for g in triage.groups(storage, fresh=False) if g.signature.startswith("KeyError"))
    assert triage.forget_group(storage, keyerror) == 6
    done = triage.retry_group(storage, next(iter(triage.groups(storage, fresh=False))), NOW)
    assert len(done.moved) == 2 and not done.refused
    assert FailureGroupsRepository(storage).fingerprints()[0] == FailureGroupsRepository(storage).kept()
    assert_side_data_right(storage)
