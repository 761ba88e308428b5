"""A message is not sent twice when its job runs again after the send succeeded."""

from __future__ import annotations

import contextlib

import pytest

import ictq.mail
from ictq.db import NewJob, Storage
from ictq.db.workers import WorkersRepository
from ictq.errors import DatabaseError
from ictq.worker import crash_marker
from tests.support.app import App, count_rows, rows, wait_for
from tests.support.smtp import (  # noqa: F401 - fixtures
    WORKER_ARGS,
    SmtpServer,
    smtp_fixture,
    smtp_servers_fixture,
    use_server,
)


def queue_reset(app: App) -> ictq.Dispatched:
    client = app.client()
    try:
        return ictq.mail.notify("password_reset", "user@example.test", {"token": "tok"}, client=client)
    finally:
        client.close()


def cut_other_sessions(storage: Storage, dialect: str) -> None:
    """End the database sessions of the killed worker, as a crashed host's would end: a statement
    it left waiting on a lock must not finish on its behalf."""
    if dialect == "pgsql":
        rows(storage, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        return
    for (session,) in rows(storage, "SELECT id FROM information_schema.processlist "
                                    "WHERE db = DATABASE() AND id <> CONNECTION_ID()"):
        with contextlib.suppress(DatabaseError):  # "Unknown thread id": that session ended by itself
            rows(storage, f"KILL {int(session)}")


@pytest.mark.parametrize("dialect", ["pgsql", "mysql"])
@pytest.mark.parametrize("marker", ["lost", "kept"])
def test_a_worker_killed_after_the_send_does_not_cause_a_second_copy(app: App, smtp: SmtpServer,
                                                                      marker: str) -> None:
    """``lost``: the reaper cannot read the killed worker's crash marker (it runs on another
    machine), so the job runs again and the ledger stops the second send. ``kept``: a reaper on
    the same machine finds the finished job in the marker and deletes it: it never runs again."""
    use_server(app, smtp, DB_QUEUE_RETRY_AFTER="2")
    smtp.hold_data()
    job = queue_reset(app)
    worker = app.worker(*WORKER_ARGS)
    smtp.wait_held()  # the worker is in the middle of sending
    locker = app.storage()
    with locker.transaction():
        # Hold the job row: the worker can record the send but cannot delete the job.
        assert rows(locker, f"SELECT id FROM jobs WHERE id = {job.id} FOR UPDATE") == [(job.id,)]
        smtp.release_data()
        smtp.wait_for(1)
        reader = app.storage()
        wait_for(lambda: count_rows(reader, "ictq_mail_sent") == 1, what="the ledger row")
        reader.close()
        worker.kill()
        worker.wait(timeout=10)
        cut_other_sessions(locker, app.dialect)
    [(attempts, reserved_at)] = rows(app.storage(), f"SELECT attempts, reserved_at FROM jobs WHERE id = {job.id}")
    assert attempts == 1 and reserved_at is not None  # killed before the delete: the job is still there
    if marker == "lost":
        for record in WorkersRepository(app.storage()).all():
            crash_marker.forget(record.id)

    app.worker(*WORKER_ARGS)  # reaps the killed worker, or claims the job once retry_after has passed
    wait_for(lambda: count_rows(app.storage(), "jobs") == 0, timeout=30, what="the job to be finished")
    assert len(smtp.received) == 1
    assert count_rows(app.storage(), "failed_jobs") == 0
    if marker == "lost":
        assert "mail-already-sent" in app.log_text() and f"uuid={job.uuid}" in app.log_text()
    else:
        assert "mail-already-sent" not in app.log_text() and "processing" not in app.log_text().split(
            "worker-reaped", 1)[-1]  # after the reaping, the job did not run again


def test_a_job_that_comes_back_after_its_send_is_not_sent_again(app: App, smtp: SmtpServer) -> None:
    use_server(app, smtp)
    job = queue_reset(app)
    [(queue, payload)] = rows(app.storage(), f"SELECT queue, payload FROM jobs WHERE id = {job.id}")
    app.worker(*WORKER_ARGS)
    smtp.wait_for(1)
    wait_for(lambda: count_rows(app.storage(), "jobs") == 0, what="the job to be deleted")
    # The same job again, as a lost delete would leave it.
    storage = app.storage()
    storage.push(NewJob(str(queue), str(payload), 0, 0))
    wait_for(lambda: "mail-already-sent" in app.log_text(), what="the second run")
    wait_for(lambda: count_rows(storage, "jobs") == 0, what="the job to be deleted again")
    assert len(smtp.received) == 1
    assert count_rows(storage, "failed_jobs") == 0
