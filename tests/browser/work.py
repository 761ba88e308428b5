"""What the browser tests do to the queue beside the page: dispatch, drain with real workers,
and read the tables the page is compared with."""

from __future__ import annotations

import json
from collections.abc import Iterable
from contextlib import closing
from typing import Any

import tests.support.jobs  # noqa: F401 - registers the test jobs for the in-process client
from tests.support.app import App, count_rows, rows, wait_for

BEAT = "0.2"  # seconds between the workers' heartbeats (history and liveness come soon)


def dispatch(app: App, name: str, items: Iterable[dict[str, Any]], queue: str) -> int:
    client = app.client()
    try:
        return len(client.dispatch_many(name, list(items), queue=queue))
    finally:
        client.close()


def drain(app: App, *queues: str) -> None:
    """Run one ``ictq work --stop-when-empty`` on ``queues`` to its end (its history written)."""
    done = app.ictq("work", "--queue", ",".join(queues), "--stop-when-empty", "--sleep", "0.1",
                    timeout=180, ICTQ_BEAT_EVERY=BEAT)
    assert done.returncode == 0, done.stdout + done.stderr


def count(app: App, table: str, where: str = "1=1") -> int:
    with closing(app.storage()) as storage:
        return count_rows(storage, table, where)


def select(app: App, sql: str) -> list[tuple[Any, ...]]:
    with closing(app.storage()) as storage:
        return rows(storage, sql)


def failed_ids(app: App, where: str = "1=1") -> list[int]:
    return [int(row[0]) for row in select(app, f"SELECT id FROM failed_jobs WHERE {where} ORDER BY id")]


def uuid_of_failed(app: App, failed_id: int) -> str:
    (found,), = select(app, f"SELECT uuid FROM failed_jobs WHERE id = {failed_id}")
    return str(found)


def queued_uuids(app: App, queue: str | None = None) -> list[str]:
    where = f"queue = '{queue}'" if queue else "1=1"
    return [str(json.loads(payload)["uuid"]) for (payload,) in select(app, f"SELECT payload FROM jobs WHERE {where}")]


def history_sums(app: App, queue: str | None = None) -> tuple[int, int]:
    """(processed, failed) summed over ``ictq_history`` (of ``queue``, or all)."""
    where = f"queue = '{queue}'" if queue else "1=1"
    (processed, failed), = select(app, f"SELECT SUM(processed), SUM(failed) FROM ictq_history WHERE {where}")
    return int(processed or 0), int(failed or 0)


def wait_history(app: App, processed: int, failed: int, queue: str | None = None) -> None:
    """Wait until the workers' history counts exactly these outcomes."""
    seen: list[tuple[int, int]] = []

    def counted() -> bool:
        seen[:] = [history_sums(app, queue)]
        return seen[0] == (processed, failed)
    try:
        wait_for(counted, timeout=60, what=f"ictq_history to count {processed} processed and {failed} failed")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: it counts {seen}") from None
