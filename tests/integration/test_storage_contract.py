"""The storage contract, unchanged on SQLite, PostgreSQL and MariaDB (fixture ``app``)."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone

import pytest

from ictq.db import Reserved, Storage, open_storage
from tests.support.app import App, count_rows, rows
from tests.support.databases import fresh_database


def test_dispatch_writes_laravels_row(app: App) -> None:
    client = app.client(clock=lambda: 1_800_000_000.0)
    dispatched = client.dispatch("test.record", {"n": 1}, queue="emails", delay=30)
    row = rows(app.storage(), "SELECT id, queue, payload, attempts, reserved_at, available_at, created_at FROM jobs")
    assert len(row) == 1
    job_id, queue, text, attempts, reserved_at, available_at, created_at = row[0]
    assert (job_id, queue, attempts, reserved_at) == (dispatched.id, "emails", 0, None)
    assert (available_at, created_at) == (1_800_000_030, 1_800_000_000)
    envelope = json.loads(text)
    assert envelope["uuid"] == dispatched.uuid and envelope["displayName"] == "test.record"
    assert envelope["data"] == {"n": 1} and envelope["delay"] == 30


def test_claim_takes_available_jobs_oldest_first_and_counts_attempts(app: App) -> None:
    client = app.client(clock=lambda: 1000.0)
    client.dispatch_many("test.record", [{"n": i} for i in range(5)])
    client.dispatch("test.record", {"n": 99}, delay=60)
    storage = app.storage()
    first = storage.claim("default", 1000, 90, 2)
    second = storage.claim("default", 1000, 90, 10)
    assert [json.loads(j.payload)["data"]["n"] for j in first + second] == [0, 1, 2, 3, 4]
    assert all(j.attempts == 1 for j in first + second)
    assert storage.claim("default", 1000, 90, 10) == []
    assert [json.loads(j.payload)["data"]["n"] for j in storage.claim("default", 1060, 90, 10)] == [99]
    assert storage.claim("other", 5000, 90, 10) == []


def test_a_stale_reservation_is_taken_back_and_fences_the_old_holder(app: App) -> None:
    app.client(clock=lambda: 1000.0).dispatch("test.record", {"n": 1})
    storage = app.storage()
    (old,) = storage.claim("default", 1000, 90, 1)
    assert storage.claim("default", 1089, 90, 1) == []
    (new,) = storage.claim("default", 1090, 90, 1)
    assert (new.id, new.attempts) == (old.id, 2)
    assert not storage.touch(old, 1091) and not storage.delete(old)
    assert not storage.release(old, 0, old.payload)
    assert not storage.fail(old, "database", "x", old.payload, datetime.now(timezone.utc))
    assert storage.touch(new, 1100) and storage.delete(new)
    assert count_rows(storage, "jobs") == 0


def test_release_and_fail(app: App) -> None:
    app.client(clock=lambda: 1000.0).dispatch_many("test.record", [{"n": 1}, {"n": 2}])
    storage = app.storage()
    one, two = storage.claim("default", 1000, 90, 2)
    assert storage.release(one, 1010, one.payload)
    assert storage.claim("default", 1009, 90, 5) == []
    failed_at = datetime(2026, 11, 29, 12, 0, 0, tzinfo=timezone.utc)
    assert storage.fail(two, "database", "ValueError: boom\ntrace", two.payload, failed_at)
    (row,) = rows(storage, "SELECT uuid, connection, queue, payload, exception, failed_at FROM failed_jobs")
    assert row[0] == json.loads(two.payload)["uuid"] and row[1:5] == ("database", "default", two.payload,
                                                                      "ValueError: boom\ntrace")
    assert str(row[5]).startswith("2026-11-29")
    (again,) = storage.claim("default", 1010, 90, 5)
    assert (again.id, again.attempts) == (one.id, 2)


def test_concurrent_claims_never_hand_out_a_job_twice(app: App) -> None:
    app.client().dispatch_many("test.record", [{"n": i} for i in range(200)])
    claimed: list[list[Reserved]] = [[] for _ in range(4)]

    def claimer(slot: int) -> None:
        storage = app.storage()
        while batch := storage.claim("default", int(time.time()), 90, 3):
            claimed[slot].extend(batch)
        storage.close()

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [job.id for batch in claimed for job in batch]
    assert len(ids) == 200 and len(set(ids)) == 200


def test_migrate_is_idempotent_and_adopts_laravels_tables(dialect: str, tmp_path: object) -> None:
    from pathlib import Path

    workdir = Path(str(tmp_path))
    with fresh_database(dialect, workdir) as database:
        app = App(workdir, dialect, database.env)
        storage = app.storage()
        for statement in LARAVEL_DDL[dialect]:
            storage.connection.cursor().execute(statement)
        storage.connection.cursor().execute(
            "INSERT INTO jobs (queue, payload, attempts, reserved_at, available_at, created_at) "
            "VALUES ('default', '{\"job\":\"test.record\",\"data\":{\"n\":1}}', 0, NULL, 1, 1)")
        client = app.client()
        client.migrate()
        client.migrate()
        assert count_rows(storage, "jobs") == 1
        assert app.ictq("migrate").returncode == 0
        storage.close()
        client.close()


# The tables as Laravel 11's migrations create them (``php artisan make:queue-table``,
# ``make:queue-failed-table``), statement by statement.
LARAVEL_DDL = {
    "sqlite": [
        'create table "jobs" ("id" integer primary key autoincrement not null, "queue" varchar not null, '
        '"payload" text not null, "attempts" integer not null, "reserved_at" integer, '
        '"available_at" integer not null, "created_at" integer not null)',
        'create index "jobs_queue_index" on "jobs" ("queue")',
        'create table "failed_jobs" ("id" integer primary key autoincrement not null, "uuid" varchar not null, '
        '"connection" text not null, "queue" text not null, "payload" text not null, "exception" text not null, '
        '"failed_at" datetime not null default CURRENT_TIMESTAMP)',
        'create unique index "failed_jobs_uuid_unique" on "failed_jobs" ("uuid")',
    ],
    "pgsql": [
        'create table "jobs" ("id" bigserial not null primary key, "queue" varchar(255) not null, '
        '"payload" text not null, "attempts" smallint not null, "reserved_at" integer null, '
        '"available_at" integer not null, "created_at" integer not null)',
        'create index "jobs_queue_index" on "jobs" ("queue")',
        'create table "failed_jobs" ("id" bigserial not null primary key, "uuid" varchar(255) not null, '
        '"connection" text not null, "queue" text not null, "payload" text not null, "exception" text not null, '
        '"failed_at" timestamp(0) without time zone not null default CURRENT_TIMESTAMP)',
        'alter table "failed_jobs" add constraint "failed_jobs_uuid_unique" unique ("uuid")',
    ],
    "mysql": [
        "create table `jobs` (`id` bigint unsigned not null auto_increment primary key, `queue` varchar(255) "
        "not null, `payload` longtext not null, `attempts` tinyint unsigned not null, `reserved_at` int unsigned "
        "null, `available_at` int unsigned not null, `created_at` int unsigned not null) default character set "
        "utf8mb4 collate 'utf8mb4_unicode_ci'",
        "alter table `jobs` add index `jobs_queue_index`(`queue`)",
        "create table `failed_jobs` (`id` bigint unsigned not null auto_increment primary key, `uuid` "
        "varchar(255) not null, `connection` text not null, `queue` text not null, `payload` longtext not null, "
        "`exception` longtext not null, `failed_at` timestamp not null default CURRENT_TIMESTAMP) default "
        "character set utf8mb4 collate 'utf8mb4_unicode_ci'",
        "alter table `failed_jobs` add unique `failed_jobs_uuid_unique`(`uuid`)",
    ],
}


def test_bulk_dispatch_writes_the_same_envelope_as_single_dispatch(app: App) -> None:
    import tests.support.jobs  # noqa: F401 - the registered policy goes into the payloads

    client = app.client(clock=lambda: 1_800_000_000.0)
    one = client.dispatch("test.flaky", {"n": 0, "failures": 0})
    many = client.dispatch_many("test.flaky", ({"n": i, "failures": 0} for i in range(1, 2001)), delay=5)
    stored = rows(app.storage(), "SELECT payload, available_at, created_at, attempts FROM jobs ORDER BY id")
    assert len(stored) == 2001 and [d.uuid for d in [one, *many]] == [json.loads(r[0])["uuid"] for r in stored]
    first, second = json.loads(stored[0][0]), json.loads(stored[1][0])
    assert set(first) == set(second) and first["maxTries"] == second["maxTries"] == 3
    assert second["backoff"] == "2,5" and second["delay"] == 5 and second["data"] == {"n": 1, "failures": 0}
    assert stored[1][1:] == (1_800_000_005, 1_800_000_000, 0)
    assert len({d.uuid for d in many}) == 2000


DURABILITY_SQL = {"sqlite": "PRAGMA synchronous", "pgsql": "SHOW synchronous_commit",
                  "mysql": "SELECT @@innodb_flush_log_at_trx_commit"}


def durability(storage: Storage, dialect: str) -> str:
    ((value,),) = rows(storage, DURABILITY_SQL[dialect])
    return str(value)


@pytest.mark.parametrize("opt_out", [False, True])
def test_workers_commit_without_waiting_for_the_disk_and_dispatches_wait(app: App, opt_out: bool) -> None:
    """A worker's own connection commits asynchronously on PostgreSQL (synchronous_commit=off)
    and SQLite in WAL mode (synchronous=NORMAL); a dispatcher's commits stay durable, and
    DB_WORKER_SYNCHRONOUS_COMMIT=on makes the worker's durable too. (MariaDB's setting is the
    server's own, left alone.)"""
    if opt_out:
        app.write_env(DB_WORKER_SYNCHRONOUS_COMMIT="on")
    settings = app.settings
    worker, client = open_storage(settings, worker=True), open_storage(settings)
    durable = {"sqlite": "2", "pgsql": "on"}.get(app.dialect)
    if durable is None:  # MariaDB: both sessions follow the server
        assert durability(worker, app.dialect) == durability(client, app.dialect)
    else:
        assert durability(client, app.dialect) == durable
        assert durability(worker, app.dialect) == (durable if opt_out else {"sqlite": "1", "pgsql": "off"}[app.dialect])
    worker.close()
    client.close()
