"""Worker heartbeats: ``ictq workers`` across processes, and a dead worker's job back at once.

The workers beat every :data:`BEAT` seconds here (``ICTQ_BEAT_EVERY``), not every 5 s, so no
test waits on the production interval."""

from __future__ import annotations

import json
import signal

from tests.support.app import App, count_rows, failed_numbers, rows, wait_for

BEAT = "0.2"


def listed(app: App, *args: str) -> list[dict[str, object]]:
    result = app.ictq("workers", "--json", *args)
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


def test_workers_register_beat_and_leave(app: App) -> None:
    app.client().dispatch_many("test.record", [{"n": i} for i in range(3)])
    one = app.worker("--sleep", "0.1", "--name", "one", "--queue", "default", ICTQ_BEAT_EVERY=BEAT)
    two = app.worker("--sleep", "0.1", "--name", "two", "--queue", "emails,default", ICTQ_BEAT_EVERY=BEAT)
    wait_for(lambda: len(listed(app)) == 2, what="two registered workers")
    wait_for(lambda: len(app.executions()) == 3, what="the jobs")
    workers = {w["name"]: w for w in listed(app)}
    assert workers["two"]["queues"] == "emails,default" and workers["one"]["pid"] == one.pid
    assert all(w["alive"] and w["state"] == "alive" for w in workers.values())
    wait_for(lambda: sum(int(w["processed"]) for w in listed(app)) == 3,  # type: ignore[call-overload]
             what="processed counts in the heartbeats")
    for proc in (one, two):
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    assert listed(app, "--all") == []


def test_a_dead_workers_job_comes_back_at_once_not_after_retry_after(app: App) -> None:
    app.write_env(DB_QUEUE_RETRY_AFTER="600")
    # The job hangs on its first attempt until the victim is killed, so it is named in a beat.
    app.client().dispatch("test.hang_once", {"n": 1})
    victim = app.worker("--sleep", "0.1", "--name", "victim", ICTQ_BEAT_EVERY=BEAT)
    wait_for(lambda: app.executions("started"), what="the job to start")
    wait_for(lambda: any(w["job_id"] for w in listed(app)), what="the heartbeat naming the job")
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    rescuer = app.worker("--sleep", "0.1", "--name", "rescuer", ICTQ_BEAT_EVERY=BEAT)
    # Back through the reaper, not the lease: waiting longer than retry_after (600s) fails here.
    wait_for(lambda: app.executions("started") == ["1", "1"], timeout=120, what="the job to start again")
    wait_for(lambda: app.executions("record") == ["1"], what="the job to finish")
    assert "worker-reaped worker=rescuer dead=victim" in app.log_text()
    everyone = {w["name"]: w for w in listed(app, "--all")}
    assert everyone["victim"]["state"] == "dead" and everyone["rescuer"]["alive"]
    rescuer.send_signal(signal.SIGTERM)
    assert rescuer.wait(timeout=15) == 0


def _kill_mid_batch(app: App) -> dict[str, object]:
    """40 quick jobs; job 20 kills its worker (tries=1, Laravel's default) in the middle of a
    claimed batch (batches grow 1, 2, 4, 8, 16 at a quick pace: jobs 15-30 are held; how many
    depends on the pace). Return the dead worker's record (``ictq workers --json``)."""
    app.write_env(DB_QUEUE_RETRY_AFTER="300")
    app.client().dispatch_many("test.killer", [{"n": i, "kill_at": 20} for i in range(40)])
    victim = app.worker("--sleep", "0.1", "--name", "victim")
    assert victim.wait(timeout=60) == -signal.SIGKILL
    (dead,) = listed(app, "--all")
    assert dead["name"] == "victim" and dead["held"]  # the batch is on record
    return dead


def _held_numbers(app: App, dead: dict[str, object]) -> list[int]:
    """The ``n`` of every job the dead worker held (running, waiting or finished unacknowledged)."""
    ids = {int(i) for i, _ in json.loads(str(dead["held"]))} | ({int(str(dead["job_id"]))} if dead["job_id"] else set())
    found = rows(app.storage(), f"SELECT payload FROM jobs WHERE id IN ({','.join(str(i) for i in ids)})")
    return sorted(int(json.loads(payload)["data"]["n"]) for (payload,) in found)


def _rescue(app: App) -> dict[str, list[str]]:
    """Run a second worker until the jobs table is empty (the dead worker's batch comes back
    when the rescuer reaps it); return the executions by kind."""
    rescuer = app.worker("--sleep", "0.1", "--name", "rescuer")
    storage = app.storage()
    wait_for(lambda: count_rows(storage, "jobs") == 0, what="every job run or failed")
    rescuer.send_signal(signal.SIGTERM)
    assert rescuer.wait(timeout=15) == 0
    assert "worker-reaped worker=rescuer dead=victim" in app.log_text()
    return {kind: app.executions(kind) for kind in ("started", "record")}


def test_a_worker_killed_mid_batch_costs_only_the_running_job_its_attempt(app: App) -> None:
    _kill_mid_batch(app)
    runs = _rescue(app)
    # The job that killed its worker ran once and fails for good ("attempted too many times"),
    # as in Laravel; every other job of the dead worker's batch runs, none is failed for an
    # attempt it never had. (15-19 had finished but were not deleted yet: they run again.)
    assert failed_numbers(app.storage()) == [20]
    assert runs["started"].count("20") == 1
    assert sorted(set(runs["record"]), key=int) == [str(n) for n in range(40) if n != 20]
    (reason,) = rows(app.storage(), "SELECT exception FROM failed_jobs")[0]
    assert "attempted too many times" in reason


def test_without_the_dead_workers_progress_file_every_held_attempt_counts(app: App) -> None:
    from ictq.worker import crash_marker

    dead = _kill_mid_batch(app)
    dead_id = str(dead["id"])
    position = crash_marker.read(dead_id)
    assert position is not None and (position.attempts, position.state) == (1, crash_marker.RUNNING)
    ((payload,),) = rows(app.storage(), f"SELECT payload FROM jobs WHERE id = {position.job_id}")
    assert json.loads(payload)["data"]["n"] == 20  # the job that was running
    held = _held_numbers(app, dead)
    crash_marker.forget(dead_id)  # as when the reaper runs on another machine
    runs = _rescue(app)
    failed = failed_numbers(app.storage())
    # The conservative rule, as an expired lease: every job the dead worker held spent its one try.
    assert 20 in failed and failed == held
    assert sorted(set(runs["record"]) | {str(n) for n in failed}, key=int) == [str(n) for n in range(40)]


def test_job_statistics_are_stored_per_worker_and_job(app: App) -> None:
    from ictq.db.stats import DURATION_BUCKETS, StatsRepository

    client = app.client()
    client.dispatch_many("test.record", [{"n": i} for i in range(5)])
    client.dispatch("test.boom", {"message": "x"})
    assert app.ictq("work", "--stop-when-empty").returncode == 0
    stats = {(row.job, row.outcome): row for row in StatsRepository(app.storage()).all()}
    assert stats[("test.record", "done")].count == 5 and stats[("test.boom", "failed")].count == 1
    assert sum(stats[("test.record", "done")].buckets) == 5
    assert len(stats[("test.record", "done")].buckets) == len(DURATION_BUCKETS)


def test_the_worker_prunes_old_failed_jobs_when_configured(sqlite_app: App) -> None:
    from datetime import datetime, timedelta, timezone

    storage = sqlite_app.storage()
    for i, age in enumerate((48, 1)):
        storage.run("insert_failed", {
            "uuid": f"u{i}", "connection": "database", "queue": "default", "payload": "{}", "exception": "E",
            "failed_at": storage.param_time(datetime.now(timezone.utc) - timedelta(hours=age))})
    sqlite_app.write_env(ICTQ_PRUNE_FAILED_HOURS="24")
    proc = sqlite_app.worker("--sleep", "0.1", ICTQ_BEAT_EVERY=BEAT)
    wait_for(lambda: "failed-pruned worker=default deleted=1 older_than=24h" in sqlite_app.log_text(),
             what="the prune")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    from tests.support.app import rows

    assert rows(storage, "SELECT uuid FROM failed_jobs") == [("u1",)]
