"""What each page shows, as plain data (dicts and lists): the pages render it, the JSON API
returns it as it is. Every read here stays flat at a million rows: sizes from the index counts
and the failure tally (:func:`ictq.triage.sizes`), rates from the per-minute history, groups from
the side tables; a text search reads a bounded window (:mod:`ictq.db.search`).
"""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any

from ictq import capacity, control, history, ops, payload, triage
from ictq.config import Settings
from ictq.dashboard import pretty
from ictq.db import Storage
from ictq.db.failed_jobs import FailedJobsRepository
from ictq.db.jobs import QueuedJob
from ictq.db.search import WINDOW, SearchRepository
from ictq.db.workers import WorkerRecord, WorkersRepository
from ictq.display import printable, text_of
from ictq.errors import NotFound

RECENT_MINUTES = 5  # the overview's rates are over the last five minutes
FAILED_LISTED = 50
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def stamp(seconds: float | None) -> str | None:
    """Unix seconds as ``YYYY-MM-DD HH:MM:SS`` UTC."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _restart_stamp(value: str | None) -> str | None:
    try:
        return stamp(float(value)) if value else None
    except ValueError:
        return printable(value, limit=40)


def overview(storage: Storage, now: int, grouped: bool = False) -> dict[str, Any]:
    """Per queue: the sizes, paused, rates and percentiles of the last minutes, workers serving
    it; the totals, workers alive and the last restart signal. ``grouped``: the failure tally
    holds every failed job; else (a big failed_jobs ictq has not grouped yet: the dashboard's
    background thread is at it) the failed counts are None, not counted in failed_jobs on every
    refresh (12 s on MariaDB at a million rows)."""
    rows = triage.sizes(storage, now, reconciled=True) if grouped else ops.sizes(storage, now, failed_counts=[])
    sizes = {row.queue: row for row in rows}
    flags = control.read(storage)
    rates = history.recent(storage, now, RECENT_MINUTES)
    alive = [record for record in WorkersRepository(storage).all() if record.alive(now)]
    serving: dict[str, int] = {}
    for record in alive:
        for queue in _queues_of(record):
            serving[queue] = serving.get(queue, 0) + 1
    names = sorted(set(sizes) | set(flags.paused) | set(rates) | set(serving))
    queues = []
    for name in names:
        size = sizes.get(name) or ops.QueueSize(name, 0, 0, 0, None, 0, 0)
        rate = rates.get(name)
        queues.append({
            "queue": printable(name), "pending": size.pending, "delayed": size.delayed, "reserved": size.reserved,
            "size": size.size, "paused": name in flags.paused, "oldest_pending_age": size.oldest_pending_age,
            "failed": size.failed if grouped else None,
            "failed_last_hour": size.failed_last_hour if grouped else None,
            "jobs_per_min": round(rate.jobs_per_min, 2) if rate else 0.0,
            "failures_per_min": round(rate.failures_per_min, 2) if rate else 0.0,
            "wait_p50": rate.wait_p50 if rate else None, "wait_p95": rate.wait_p95 if rate else None,
            "run_p50": rate.run_p50 if rate else None, "run_p95": rate.run_p95 if rate else None,
            "workers": serving.get(name, 0),
        })
    total = ops.total(list(sizes.values()))
    per_min = [rate for rate in rates.values() if rate.queue in names]
    return {
        "now": stamp(now), "queues": queues,
        "total": {"pending": total.pending, "delayed": total.delayed, "reserved": total.reserved,
                  "size": total.size, "failed": total.failed if grouped else None,
                  "failed_last_hour": total.failed_last_hour if grouped else None,
                  "oldest_pending_age": total.oldest_pending_age,
                  "jobs_per_min": round(sum(rate.jobs_per_min for rate in per_min), 2),
                  "failures_per_min": round(sum(rate.failures_per_min for rate in per_min), 2)},
        "workers_alive": len(alive),
        "paused": sorted(printable(name) for name in flags.paused),
        "restart_requested_at": _restart_stamp(flags.restart),
        "rates_over_minutes": RECENT_MINUTES,
    }


def _queues_of(record: WorkerRecord) -> list[str]:
    return [name for name in record.queues.split(",") if name]


def workers(storage: Storage, now: int) -> list[dict[str, Any]]:
    """Every worker that beat lately, alive or dead (dead ones stay until forgotten)."""
    found = []
    for record in WorkersRepository(storage).all():
        alive = record.alive(now)
        found.append({
            "id": printable(record.id), "name": printable(record.name), "host": printable(record.host),
            "pid": record.pid, "queues": _queues_of(record), "alive": alive,
            "state": "alive" if alive else ("dead" if record.state != "alive" else "silent"),
            "started_at": stamp(record.started_at), "up_seconds": max(0, now - record.started_at) if alive else None,
            "last_beat_seconds_ago": max(0, now - record.beat_at),
            "job_id": record.job_id, "job_name": printable(record.job_name) if record.job_name else None,
            "processed": record.processed, "failed": record.failed,
        })
    return found


def failed(storage: Storage, queue: str = "", ungrouped: int = 0) -> dict[str, Any]:
    """The groups of failed jobs (as ``ictq failed --group``) and the newest failed jobs;
    ``ungrouped``: how many failed jobs the groups leave out for now (the dashboard's
    :class:`~ictq.dashboard.app.Reconciler` is grouping them)."""
    queues = [queue] if queue else []
    groups = [_group(group) for group in triage.groups(storage, queues, fresh=False)]
    recent = [_failed_row(row) for row in ops.failed_recent(storage, queues, FAILED_LISTED)]
    return {"queue": queue, "groups": groups, "recent": recent, "ungrouped": ungrouped}


def _group(group: triage.Group) -> dict[str, Any]:
    data = group.as_dict()
    return {**data, "job": printable(data["job"]), "signature": pretty.shown(data["signature"]),
            "queues": [printable(q) for q in data["queues"]]}


def _failed_row(row: ops.FailedRow) -> dict[str, Any]:
    return {"id": row.id, "uuid": printable(row.uuid), "connection": printable(row.connection),
            "queue": printable(row.queue), "job": printable(row.name), "failed_at": row.failed_at,
            "reason": pretty.shown(row.reason)}


def group(storage: Storage, group_id: str) -> dict[str, Any]:
    """One group and its newest members."""
    found = triage.resolve(storage, group_id, fresh=False)
    members: list[dict[str, Any]] = []
    for batch in triage.members(storage, found, batch=FAILED_LISTED):
        members.extend(_failed_row(row) for row in batch)
        if len(members) >= FAILED_LISTED:
            break
    return {"group": _group(found), "members": members[:FAILED_LISTED]}


def failed_job(storage: Storage, failed_id: int) -> dict[str, Any]:
    """One failed job: its record, the payload pretty-printed, a PHP command readable, the
    exception's first line and its whole trace; secrets masked."""
    job = FailedJobsRepository(storage).by_id(failed_id)
    if job is None:
        raise NotFound(f"no failed job with id {failed_id}")
    row = ops.FailedRow.of(job)
    gid, _, sig = triage.key_of(row)
    return {**_failed_row(row), "group": gid, "signature": pretty.shown(sig), **_payload_view(row.payload),
            "exception": pretty.shown(row.exception)}


def _payload_view(text: str) -> dict[str, Any]:
    view: dict[str, Any] = {"payload": pretty.payload(text), "display_name": None, "command_name": None,
                            "php_class": None, "php_command": None, "attempts_allowed": None}
    try:
        envelope = payload.parse(text)
    except Exception:  # noqa: BLE001 - a malformed payload is shown as it is
        return view
    data = envelope.data if isinstance(envelope.data, dict) else {}
    view["display_name"] = printable(envelope.display_name)
    view["command_name"] = printable(text_of(data.get("commandName"))) if data.get("commandName") else None
    view["attempts_allowed"] = envelope.max_tries
    php = pretty.php_command(text)
    if php is not None:
        view["php_class"], view["php_command"] = printable(php[0]), php[1]
    return view


def queued_job(storage: Storage, job_id: int, now: int) -> dict[str, Any]:
    job = SearchRepository(storage).job_by_id(job_id)
    if job is None:
        raise NotFound(f"no queued job with id {job_id} (done, failed or never there)")
    return {**_queued_row(job, now), **_payload_view(job.payload)}


def _queued_row(job: QueuedJob, now: int) -> dict[str, Any]:
    return {"id": job.id, "queue": printable(job.queue), "job": printable(payload.name_of(job.payload)),
            "attempts": job.attempts, "state": job.state(now), "created_at": stamp(job.created_at),
            "available_at": stamp(job.available_at), "reserved_at": stamp(job.reserved_at)}


def queue_jobs(storage: Storage, queue: str, now: int, limit: int = FAILED_LISTED) -> list[dict[str, Any]]:
    """The oldest jobs of one queue (any state)."""
    return [asdict(row) for row in ops.list_jobs(storage, now, [queue], "any", limit)]


def search(storage: Storage, text: str, now: int) -> dict[str, Any]:
    """Jobs and failed jobs by id, uuid, job name or queue."""
    text = text.strip()
    result: dict[str, Any] = {"q": printable(text, limit=200), "jobs": [], "failed": [], "window": WINDOW}
    if not text or len(text) > 500:
        return result
    repository, failed_jobs = SearchRepository(storage), FailedJobsRepository(storage)
    if text.isdigit() and len(text) < 19:
        job = repository.job_by_id(int(text))
        failed_job_row = failed_jobs.by_id(int(text))
        result["jobs"] = [_queued_row(job, now)] if job else []
        result["failed"] = [_failed_row(ops.FailedRow.of(failed_job_row))] if failed_job_row else []
        return result
    if _UUID.fullmatch(text):
        by_uuid = failed_jobs.by_uuid(text.lower())
        result["failed"] = [_failed_row(ops.FailedRow.of(by_uuid))] if by_uuid else []
        result["jobs"] = [_queued_row(job, now) for job in repository.jobs(text.lower())]
        return result
    result["jobs"] = [_queued_row(job, now) for job in repository.jobs(text)]
    result["failed"] = [_failed_row(ops.FailedRow.of(job)) for job in repository.failed(text)]
    return result


def capacity_advice(storage: Storage, now: int, target_wait: float, window: int) -> dict[str, Any]:
    advice = capacity.advise(storage, now, target_wait, window)
    return {"target_wait": target_wait, "window": window,
            "queues": [{**asdict(item), "queue": printable(item.queue), "hint": item.hint} for item in advice]}


def chart_names(storage: Storage, now: int) -> tuple[list[str], list[str]]:
    queues, jobs = history.names(storage, now - history.SPANS["week"][0])
    return [printable(q) for q in queues], [printable(j) for j in jobs]


def settings_summary(settings: Settings) -> dict[str, str]:
    """Where the dashboard looks (no secret: the database's name and host, never its password)."""
    db = settings.db
    where = db.database if db.dialect == "sqlite" else f"{db.database} on {db.host}"
    return {"connection": db.connection, "database": printable(where)}
