"""The table repositories of ``ictq/db`` (jobs, failed jobs, mail ledger, workers, control,
stats), every method, on SQLite, PostgreSQL and MariaDB (fixture ``app``); the last test checks
that no public method of a repository is left out here."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import ictq.db
from ictq.db import NewJob, Reserved, Storage
from ictq.db.control import PAUSE_PREFIX, RESTART, ControlRepository, ControlState
from ictq.db.failed_jobs import FailedCounts, FailedJob, FailedJobsRepository
from ictq.db.failure_groups import FailureGroupsRepository, Fingerprint, GroupCount, GroupText, Signed
from ictq.db.history import HistoryRepository, HistoryRow, QueueSnapshot, Sums
from ictq.db.jobs import JobAttempts, JobsRepository, QueueCounts, QueuedJob
from ictq.db.laravel_cache import CacheTableRepository
from ictq.db.mail_ledger import MailLedgerRepository, SentRecord
from ictq.db.search import SearchRepository
from ictq.db.stats import StatsRepository, StatsRow
from ictq.db.users import User, UsersRepository
from ictq.db.workers import WorkerRecord, WorkersRepository
from ictq.errors import DatabaseError
from tests.support.app import App, count_rows, rows
from tests.support.failed import Failure, add_failures

NOW = 1_800_000_000
MOMENT = datetime(2027, 1, 15, 12, 0, 0, tzinfo=timezone.utc)


def payload(job_uuid: str, name: str = "App\\Jobs\\Sync", size: int = 0) -> str:
    data = {"uuid": job_uuid, "displayName": name, "job": "x", "data": {"pad": "é" * size}}
    return json.dumps(data, ensure_ascii=False)


def jobs_of(storage: Storage) -> JobsRepository:
    storage.push_many([NewJob("default", payload("d1"), NOW - 10, NOW - 50),
                       NewJob("default", payload("d2"), NOW + 60, NOW - 40),
                       NewJob("default", payload("d3"), NOW - 5, NOW - 30),
                       NewJob("emails", payload("e1"), NOW, NOW - 20)])
    return JobsRepository(storage)


def test_jobs_counts_by_queue_and_state(app: App) -> None:
    storage = app.storage()
    repository = jobs_of(storage)
    (held,) = storage.claim("default", NOW, 90, 1)
    assert sorted(repository.counts(NOW), key=lambda c: c.queue) == [
        QueueCounts("default", pending=1, delayed=1, reserved=1, oldest_available_at=NOW - 5),
        QueueCounts("emails", pending=1, delayed=0, reserved=0, oldest_available_at=NOW)]
    assert json.loads(held.payload)["uuid"] == "d1"
    assert sorted(repository.counts(NOW - 100), key=lambda c: c.queue) == [
        QueueCounts("default", pending=0, delayed=2, reserved=1, oldest_available_at=None),
        QueueCounts("emails", pending=0, delayed=1, reserved=0, oldest_available_at=None)]
    repository.clear("emails")
    assert [c.queue for c in repository.counts(NOW)] == ["default"]


def test_jobs_queue_names_from_the_index(app: App) -> None:
    storage = app.storage()
    repository = JobsRepository(storage)
    assert repository.queue_names() == []
    jobs_of(storage)
    storage.push(NewJob("alpha", payload("a1"), NOW, NOW))
    assert repository.queue_names() == ["alpha", "default", "emails"]


def test_jobs_list_a_queue_by_state_oldest_first(app: App) -> None:
    storage = app.storage()
    repository = jobs_of(storage)
    (held,) = storage.claim("default", NOW, 90, 1)
    every = repository.list_queue("default", "any", NOW, 10)
    assert [job.id for job in every] == sorted(job.id for job in every) and len(every) == 3
    first = every[0]
    assert first == QueuedJob(held.id, "default", payload("d1"), 1, NOW, NOW - 10, NOW - 50)
    assert [job.state(NOW) for job in every] == ["reserved", "delayed", "pending"]
    assert [json.loads(j.payload)["uuid"] for j in repository.list_queue("default", "pending", NOW, 10)] == ["d3"]
    assert [json.loads(j.payload)["uuid"] for j in repository.list_queue("default", "delayed", NOW, 10)] == ["d2"]
    assert [j.id for j in repository.list_queue("default", "reserved", NOW, 10)] == [held.id]
    assert len(repository.list_queue("default", "any", NOW, 2)) == 2
    assert repository.list_queue("nothing", "any", NOW, 10) == []
    with pytest.raises(ValueError, match="unknown job state"):
        repository.list_queue("default", "running", NOW, 10)


def test_jobs_clear_keeps_reserved_jobs_unless_asked(app: App) -> None:
    storage = app.storage()
    repository = jobs_of(storage)
    storage.claim("default", NOW, 90, 1)
    assert repository.clear("default") == 2
    assert repository.clear("default") == 0
    assert count_rows(storage, "jobs", "queue = 'default'") == 1
    assert repository.clear("default", include_reserved=True) == 1
    assert count_rows(storage, "jobs") == 1


def test_jobs_requeue_and_attempts(app: App) -> None:
    storage = app.storage()
    repository = JobsRepository(storage)
    repository.requeue("emails", payload("r1"), NOW)
    ((job_id, queue, text, attempts, reserved_at, available_at, created_at),) = rows(
        storage, "SELECT id, queue, payload, attempts, reserved_at, available_at, created_at FROM jobs")
    assert (queue, text, attempts, reserved_at, available_at, created_at) == ("emails", payload("r1"), 0, None,
                                                                              NOW, NOW)
    assert repository.attempts(job_id) == JobAttempts(0, None)
    assert not JobAttempts(0, None).reserved
    storage.claim("emails", NOW, 90, 1)
    found = repository.attempts(job_id)
    assert found == JobAttempts(1, NOW) and found.reserved
    assert repository.attempts(job_id + 1000) is None


def failures(storage: Storage) -> list[int]:
    """Five failed jobs (three on default, two on emails), two of them older than a day; their ids."""
    add_failures(storage, [
        Failure(payload("f1"), "ValueError: one\ntrace", "default", MOMENT - timedelta(days=2)),
        Failure(payload("f2"), "ValueError: two", "emails", MOMENT - timedelta(days=3)),
        Failure(payload("f3", size=2000), "KeyError: three", "default", MOMENT - timedelta(minutes=30)),
        Failure(payload("f4", name="App\\Jobs\\Mail"), "E", "emails", MOMENT),
        Failure(payload("f5"), "E", "default", MOMENT + timedelta(seconds=1), connection="redis"),
    ])
    return [int(row[0]) for row in rows(storage, "SELECT id FROM failed_jobs ORDER BY id")]


def test_failed_counts_since_a_moment(app: App) -> None:
    storage = app.storage()
    failures(storage)
    repository = FailedJobsRepository(storage)
    assert sorted(repository.counts(MOMENT - timedelta(hours=1)), key=lambda c: c.queue) == [
        FailedCounts("default", total=3, since=2), FailedCounts("emails", total=2, since=1)]
    assert sorted(repository.counts(MOMENT + timedelta(days=1)), key=lambda c: c.queue) == [
        FailedCounts("default", total=3, since=0), FailedCounts("emails", total=2, since=0)]


def test_failed_look_ups_by_id_and_uuid(app: App) -> None:
    storage = app.storage()
    ids = failures(storage)
    repository = FailedJobsRepository(storage)
    found = repository.by_id(ids[0])
    assert found == FailedJob(ids[0], "f1", "database", "default", payload("f1"), "ValueError: one\ntrace",
                              "2027-01-13 12:00:00")
    assert repository.by_uuid("f5") == FailedJob(ids[4], "f5", "redis", "default", payload("f5"), "E",
                                                 "2027-01-15 12:00:01")
    assert repository.by_id(ids[-1] + 100) is None and repository.by_uuid("nope") is None
    assert repository.exception_of("f1") == "ValueError: one\ntrace"
    assert repository.exception_of("nope") is None


def test_failed_recent_and_range_scans(app: App) -> None:
    storage = app.storage()
    ids = failures(storage)
    repository = FailedJobsRepository(storage)
    assert [job.id for job in repository.recent(3)] == ids[:-4:-1]
    assert [job.uuid for job in repository.recent(10, "emails")] == ["f4", "f2"]
    assert [job.id for job in repository.range(0, 10)] == ids
    assert [job.id for job in repository.range(ids[1], 2)] == ids[2:4]
    assert [job.uuid for job in repository.range(0, 10, "default")] == ["f1", "f3", "f5"]
    assert [job.id for job in repository.range(0, 10, low=ids[1], high=ids[3])] == ids[1:4]
    assert repository.range(ids[-1], 10) == []


def test_failed_deletes_and_pruning_ids(app: App) -> None:
    storage = app.storage()
    ids = failures(storage)
    repository = FailedJobsRepository(storage)
    assert repository.ids_before(MOMENT - timedelta(days=1), 0, 10) == [ids[0], ids[1]]
    assert repository.ids_before(MOMENT - timedelta(days=1), ids[0], 10) == [ids[1]]
    assert repository.ids_before(MOMENT - timedelta(days=1), 0, 1) == [ids[0]]
    assert repository.ids_before(MOMENT - timedelta(days=5), 0, 10) == []
    assert repository.delete(ids[0]) and not repository.delete(ids[0])
    assert repository.delete_ids([ids[1], ids[2], ids[0]]) == 2
    assert repository.delete_ids([]) == 0
    assert [job.id for job in repository.range(0, 10)] == ids[3:]


def test_failure_groups_sign_count_and_forget(app: App) -> None:
    storage = app.storage()
    ids = failures(storage)
    repository = FailureGroupsRepository(storage)
    failed, members = repository.fingerprints()
    assert failed == Fingerprint(5, ids[-1], sum(ids)) and members == Fingerprint(0, 0, 0)
    assert repository.kept() in (None, Fingerprint(0, 0, 0))  # none kept yet, or an empty one
    assert [job.id for job in repository.unsigned(0, ids[-1], 10)] == ids
    assert [job.id for job in repository.unsigned(ids[0], ids[-1], 2)] == ids[1:3]
    assert [job.id for job in repository.unsigned(ids[0], ids[2], 10)] == ids[1:3]
    assert repository.unsigned(0, ids[-1], 10)[0] == FailedJobsRepository(storage).by_id(ids[0])
    repository.put([Signed(ids[0], "g1", "App\\Jobs\\Sync", "ValueError: one", "default", "2027-01-13 12:00:00"),
                    Signed(ids[2], "g1", "App\\Jobs\\Sync", "ValueError: one", "default", "2027-01-15 11:30:00"),
                    Signed(ids[3], "g2", "App\\Jobs\\Mail", "E", "emails", "2027-01-15 12:00:00")])
    repository.put([Signed(ids[0], "g9", "x", "y", "other", "2027-01-01 00:00:00")])  # kept as it was, not counted
    repository.put([])
    assert [job.id for job in repository.unsigned(0, ids[-1], 10)] == [ids[1], ids[4]]
    assert repository.fingerprints()[1] == Fingerprint(3, ids[3], ids[0] + ids[2] + ids[3])
    assert repository.kept() == Fingerprint(3, ids[3], ids[0] + ids[2] + ids[3])
    assert repository.highest_failed() == ids[-1]
    assert repository.texts() == {"g1": GroupText("g1", "App\\Jobs\\Sync", "ValueError: one"),
                                  "g2": GroupText("g2", "App\\Jobs\\Mail", "E")}
    assert sorted(repository.counts(), key=lambda c: c.group_id) == [
        GroupCount("g1", "default", 2, "2027-01-13 12:00:00", "2027-01-15 11:30:00", ids[0]),
        GroupCount("g2", "emails", 1, "2027-01-15 12:00:00", "2027-01-15 12:00:00", ids[3])]
    assert [c.group_id for c in repository.counts("emails")] == ["g2"]
    assert repository.queue_totals() == {"default": 2, "emails": 1}
    moment = datetime(2027, 1, 15, 11, 30, tzinfo=timezone.utc)
    assert repository.recent_totals(moment) == {"default": 1, "emails": 1}
    assert repository.recent_totals(moment + timedelta(minutes=1)) == {"emails": 1}
    assert repository.recent_totals(moment - timedelta(days=5)) == {"default": 2, "emails": 1}
    assert [job.id for job in repository.members("g1", 0, 10)] == [ids[0], ids[2]]
    assert [job.id for job in repository.members("g1", ids[0], 10)] == [ids[2]]
    assert repository.members("g1", 0, 10, "emails") == []
    assert repository.orphans(0, ids[-1], 10) == []
    FailedJobsRepository(storage).delete_ids([ids[2], ids[3]])
    assert repository.orphans(0, ids[-1], 10) == [ids[2], ids[3]]
    assert repository.orphans(ids[2], ids[-1], 10) == [ids[3]] and repository.orphans(0, ids[2], 10) == [ids[2]]
    assert repository.forget([ids[2], ids[3]]) == 2 and repository.forget([]) == 0
    assert repository.forget([ids[2]]) == 0  # already gone: nothing counted twice
    assert repository.fingerprints()[1] == Fingerprint(1, ids[0], ids[0])
    assert repository.counts() == [GroupCount("g1", "default", 1, "2027-01-13 12:00:00", "2027-01-13 12:00:00", ids[0])]
    assert repository.queue_totals() == {"default": 1}
    assert repository.orphans(0, ids[-1], 10) == []
    assert sorted(repository.texts()) == ["g1"]  # groups left without members go too


def test_mail_ledger_marks_finds_and_prunes(app: App) -> None:
    storage = app.storage()
    repository = MailLedgerRepository(storage)
    repository.check()
    record = SentRecord("<u-1@ict.example>", "u-1", "password_reset", "user@example.test")
    assert not repository.was_sent(record.message_id) and not repository.sent_job("u-1")
    repository.mark_sent(record, NOW)
    repository.mark_sent(record, NOW + 5)  # a second record of the same message changes nothing
    repository.mark_sent(SentRecord("<u-2@ict.example>", "u-2", "welcome", "other@example.test"), NOW + 10)
    assert repository.was_sent(record.message_id) and repository.sent_job("u-1")
    assert not repository.was_sent("<u-1@elsewhere>") and not repository.sent_job("u-3")
    assert rows(storage, "SELECT message_id, job_uuid, notification, recipient, sent_at FROM ictq_mail_sent "
                         "ORDER BY sent_at") == [
        ("<u-1@ict.example>", "u-1", "password_reset", "user@example.test", NOW),
        ("<u-2@ict.example>", "u-2", "welcome", "other@example.test", NOW + 10)]
    assert repository.prune(NOW + 1) == 1
    assert repository.prune(NOW + 1) == 0
    assert not repository.sent_job("u-1") and repository.sent_job("u-2")


def test_mail_ledger_check_names_the_missing_table(app: App) -> None:
    storage = app.storage()
    with storage._translated():
        storage.connection.cursor().execute("DROP TABLE ictq_mail_sent")
    with pytest.raises(DatabaseError, match="ictq_mail_sent is missing; run `ictq migrate`"):
        MailLedgerRepository(storage).check()


def worker(worker_id: str, beat_at: int, **fields: object) -> WorkerRecord:
    values: dict[str, object] = {"name": "w1", "host": "host-a", "pid": 4242, "queues": "emails,default",
                                 "state": "alive", "started_at": NOW - 100, "job_id": None, "job_attempts": None,
                                 "job_name": None, "processed": 0, "failed": 0}
    values.update(fields)
    return WorkerRecord(worker_id, beat_at=beat_at, **values)  # type: ignore[arg-type]


def test_workers_beat_read_mark_leave_and_forget(app: App) -> None:
    storage = app.storage()
    repository = WorkersRepository(storage)
    assert repository.all() == []
    repository.beat(worker("a:1:boot", NOW), [])
    repository.beat(worker("a:1:boot", NOW + 5, job_id=7, job_attempts=2, job_name="mail.welcome", processed=3,
                           failed=1), [Reserved(8, "default", "", 1), Reserved(9, "default", "", 1)])
    repository.beat(worker("b:2:boot", NOW - 3600, name="w2"), [])
    found = {record.id: record for record in repository.all()}
    assert set(found) == {"a:1:boot", "b:2:boot"}
    first = found["a:1:boot"]
    assert (first.beat_at, first.job_id, first.job_attempts, first.job_name, first.processed, first.failed) == (
        NOW + 5, 7, 2, "mail.welcome", 3, 1)
    assert (first.name, first.host, first.pid, first.queues, first.state, first.started_at) == (
        "w1", "host-a", 4242, "emails,default", "alive", NOW - 100)
    assert [(job.id, job.attempts) for job in first.held_jobs()] == [(8, 1), (9, 1), (7, 2)]
    assert repository.mark("b:2:boot", "dead") is True
    assert repository.mark("b:2:boot", "dead") is False  # only a live worker is marked: one reaper wins
    assert {r.id: r.state for r in repository.all()} == {"a:1:boot": "alive", "b:2:boot": "dead"}
    repository.forget_old(NOW - 60)
    assert [r.id for r in repository.all()] == ["a:1:boot"]
    repository.leave("a:1:boot")
    assert repository.all() == []


def test_control_flags_set_read_and_delete(app: App) -> None:
    storage = app.storage()
    repository = ControlRepository(storage)
    assert repository.all() == {} and repository.state() == ControlState(None, frozenset())
    repository.set(RESTART, "1800000000.5", NOW)
    repository.set(PAUSE_PREFIX + "emails", "1", NOW)
    repository.set(PAUSE_PREFIX + "emails", "1", NOW + 1)  # setting again replaces
    repository.set(PAUSE_PREFIX + "default", "1", NOW + 2)
    assert repository.all() == {RESTART: "1800000000.5", "pause:emails": "1", "pause:default": "1"}
    assert repository.state() == ControlState("1800000000.5", frozenset({"emails", "default"}))
    assert repository.delete(PAUSE_PREFIX + "emails") is True
    assert repository.delete(PAUSE_PREFIX + "emails") is False
    assert repository.state().paused == frozenset({"default"})


def test_stats_put_replace_read_and_forget(app: App) -> None:
    storage = app.storage()
    workers, repository = WorkersRepository(storage), StatsRepository(storage)
    workers.beat(worker("a:1:boot", NOW), [])
    workers.beat(worker("b:2:boot", NOW - 3600), [])
    buckets = tuple(range(14))
    repository.put([StatsRow("a:1:boot", "mail.welcome", "processed", 3, 0.25, buckets),
                    StatsRow("a:1:boot", "mail.welcome", "failed", 1, 2.0, (0,) * 14),
                    StatsRow("b:2:boot", "App\\Jobs\\Sync", "processed", 5, 1.5, (1,) * 14)])
    repository.put([StatsRow("a:1:boot", "mail.welcome", "processed", 4, 0.5, buckets)])  # replaces, not adds
    found = sorted(repository.all(), key=lambda row: (row.worker_id, row.outcome))
    assert found == [StatsRow("a:1:boot", "mail.welcome", "failed", 1, 2.0, (0,) * 14),
                     StatsRow("a:1:boot", "mail.welcome", "processed", 4, 0.5, buckets),
                     StatsRow("b:2:boot", "App\\Jobs\\Sync", "processed", 5, 1.5, (1,) * 14)]
    repository.forget_old(NOW - 60)  # b is silent but not yet marked dead: kept
    assert {row.worker_id for row in repository.all()} == {"a:1:boot", "b:2:boot"}
    workers.mark("b:2:boot", "dead")
    repository.forget_old(NOW - 60)
    assert {row.worker_id for row in repository.all()} == {"a:1:boot"}


def test_history_adds_sums_snapshots_and_prunes(app: App) -> None:
    repository = HistoryRepository(app.storage())
    one = Sums(1, 2, 3, 0.5, 1.5, tuple(range(14)), tuple(range(12)))
    long_name = "q" * 300  # cut to the column, with a hash
    repository.add([HistoryRow(NOW, "default", "a", one), HistoryRow(NOW + 60, "default", "a", one),
                    HistoryRow(NOW + 60, long_name, "b", one)])
    repository.add([HistoryRow(NOW, "default", "a", one)])  # adds, not replaces
    repository.add([])
    totals = repository.totals(NOW, NOW + 120)
    assert totals["default"] == one + one + one and len(totals) == 2
    assert sorted(len(name) for name in totals) == [7, 191]
    assert repository.series(NOW, NOW + 120, 60, queue="default", job="a") == [(NOW, one + one), (NOW + 60, one)]
    assert repository.series(NOW, NOW + 120, 120) == [(NOW, one + one + one + one)]
    assert repository.series(NOW, NOW + 120, 60, job="b") == [(NOW + 60, one)]
    assert repository.queues(NOW + 60) == sorted(["default", next(n for n in totals if n != "default")])
    assert repository.jobs(NOW + 60) == ["a", "b"] and repository.jobs(NOW + 3600) == []  # names by the hour
    repository.add([HistoryRow(NOW + 3660, "default", "a", one)])
    # whole hours from an hour's start read the hourly roll-up: the same sums
    assert repository.series(NOW, NOW + 7200, 3600) == [(NOW, one + one + one + one), (NOW + 3600, one)]
    assert repository.series(NOW, NOW + 7200, 7200, queue="default") == [(NOW, one + one + one + one)]
    assert repository.jobs(NOW + 3600) == ["a"]
    assert repository.mark(NOW) is True and repository.mark(NOW) is False and repository.mark(NOW + 120) is True
    assert repository.snapshot_minutes(NOW, NOW + 180) == (NOW, NOW + 120)
    assert repository.snapshot_minutes(NOW + 180, NOW + 240) is None
    repository.put_sizes(NOW, [QueueSnapshot("default", 3, 2, 1), QueueSnapshot("emails", 0, 5, 0)])
    assert repository.sizes_at(NOW) == {"default": QueueSnapshot("default", 3, 2, 1),
                                        "emails": QueueSnapshot("emails", 0, 5, 0)}
    assert repository.sizes_at(NOW + 60) == {}
    assert repository.prune(NOW + 60) == 1  # the minute before (the hour it is in stays)
    assert repository.series(NOW, NOW + 7200, 3600)[0] == (NOW, one + one + one + one)
    assert repository.totals(NOW, NOW + 120)["default"] == one and repository.sizes_at(NOW) == {}
    assert repository.snapshot_minutes(NOW, NOW + 180) == (NOW + 120, NOW + 120)


def test_dashboard_users_put_read_replace_and_delete(app: App) -> None:
    repository = UsersRepository(app.storage())
    assert repository.all() == [] and repository.get("ann") is None
    repository.put("ann", "viewer", "$argon2id$one", NOW)
    repository.put("bob", "operator", "$argon2id$two", NOW + 1)
    assert repository.get("ann") == User("ann", "viewer", "$argon2id$one", NOW, NOW)
    repository.put("ann", "operator", "$argon2id$three", NOW + 5)
    assert repository.all() == [User("ann", "operator", "$argon2id$three", NOW, NOW + 5),
                                User("bob", "operator", "$argon2id$two", NOW + 1, NOW + 1)]
    with pytest.raises(ValueError):
        repository.put("eve", "admin", "h", NOW)
    assert repository.delete("ann") and not repository.delete("ann")
    repository.end_session("s1", NOW + 10)
    repository.end_session("s1", NOW + 10)  # twice: one logout, two tabs
    repository.end_session("s2", NOW + 99)
    assert repository.session_ended("s1") and not repository.session_ended("s3")
    assert repository.prune_sessions(NOW + 50) == 1
    assert not repository.session_ended("s1") and repository.session_ended("s2")
    assert [user.name for user in repository.all()] == ["bob"] and repository.get("bob").operator  # type: ignore[union-attr]


def test_search_probes_ids_and_reads_a_window_of_the_newest_rows(app: App) -> None:
    storage = app.storage()
    jobs_of(storage)
    ids = failures(storage)
    repository = SearchRepository(storage)
    job_ids = [int(row[0]) for row in rows(storage, "SELECT id FROM jobs ORDER BY id")]
    found = repository.job_by_id(job_ids[2])
    assert found is not None and (found.queue, found.payload) == ("default", payload("d3"))
    assert repository.job_by_id(job_ids[-1] + 1) is None
    assert [job.id for job in repository.jobs("emails")] == [job_ids[3]]  # a queue's name
    assert [job.id for job in repository.jobs('d2')] == [job_ids[1]]  # text in the payload
    assert [job.id for job in repository.jobs("Sync")] == job_ids[::-1]  # newest first
    assert [job.id for job in repository.jobs("Sync", limit=2)] == job_ids[:1:-1]
    assert [job.id for job in repository.jobs("Sync", window=2)] == job_ids[:1:-1]  # only the newest two ids
    assert repository.jobs("nowhere") == []
    assert [job.id for job in repository.failed("App\\Jobs\\Mail")] == [ids[3]]
    assert [job.id for job in repository.failed("emails")] == [ids[3], ids[1]]
    assert [job.uuid for job in repository.failed('f5')] == ["f5"]
    assert [job.id for job in repository.failed("Sync", window=1)] == [ids[4]]


def test_laravel_cache_table_put_read_replace_and_forget(app: App) -> None:
    """The Laravel app's cache table, as ``php artisan cache:table`` makes it (the mixed-fleet
    tests use the one Laravel's own migration creates)."""
    storage = app.storage()
    quote = "`" if app.dialect == "mysql" else '"'
    storage.connection.cursor().execute(
        f"CREATE TABLE cache ({quote}key{quote} varchar(255) NOT NULL PRIMARY KEY, "
        f"{quote}value{quote} text NOT NULL, {quote}expiration{quote} integer NOT NULL)")
    repository = CacheTableRepository(storage)
    assert repository.get("ict_cacheilluminate:queue:restart") is None
    repository.put("ict_cacheilluminate:queue:restart", "i:1800000000;", NOW)
    repository.put("ict_cacheilluminate:queue:restart", "i:1800000001;", NOW + 1)  # replaces
    repository.put("ict_cacheother", "b:1;", NOW)
    assert repository.get("ict_cacheilluminate:queue:restart") == ("i:1800000001;", NOW + 1)
    assert repository.forget("ict_cacheother") is True and repository.forget("ict_cacheother") is False
    assert repository.get("ict_cacheother") is None


def _repositories() -> list[type]:
    """Every ``*Repository`` class of ``ictq.db``'s modules."""
    found = []
    for module_info in pkgutil.iter_modules(ictq.db.__path__):
        module = importlib.import_module(f"ictq.db.{module_info.name}")
        found += [cls for name, cls in inspect.getmembers(module, inspect.isclass)
                  if name.endswith("Repository") and cls.__module__ == module.__name__]
    return found


REPOSITORIES = _repositories()


def test_the_repositories_are_found() -> None:
    assert {JobsRepository, FailedJobsRepository, MailLedgerRepository, WorkersRepository, ControlRepository,
            StatsRepository, CacheTableRepository, HistoryRepository} <= set(REPOSITORIES)


@pytest.mark.parametrize("repository", REPOSITORIES, ids=lambda cls: cls.__name__)
def test_every_public_method_of_the_repository_is_exercised_here(repository: type) -> None:
    text = Path(__file__).read_text(encoding="utf-8")
    methods = [name for name, _ in inspect.getmembers(repository, inspect.isfunction) if not name.startswith("_")]
    assert methods
    assert [name for name in methods if f".{name}(" not in text] == []
