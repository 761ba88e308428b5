"""Rows written straight into failed_jobs, as a Laravel app's failer writes them (any failed_at,
any uuid), for tests that need failures without running jobs."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from ictq.db import Storage


@dataclass(frozen=True)
class Failure:
    payload: str
    exception: str = "RuntimeException: boom"
    queue: str = "default"
    failed_at: datetime | None = None  # now by default
    uuid: str | None = None  # the payload's by default
    connection: str = "database"


def add_failures(storage: Storage, failures: Iterable[Failure]) -> None:
    """Insert the rows in one transaction (the storage's own ``insert_failed`` statement)."""
    now = datetime.now(timezone.utc)
    params = [{"uuid": failure.uuid or json.loads(failure.payload)["uuid"], "connection": failure.connection,
               "queue": failure.queue, "payload": failure.payload, "exception": failure.exception,
               "failed_at": storage.param_time(failure.failed_at or now)} for failure in failures]
    with storage.transaction():
        storage.connection.cursor().executemany(storage.sql["insert_failed"], params)


def add_failed(storage: Storage, payload: str, exception: str = "RuntimeException: boom", queue: str = "default",
               failed_at: datetime | None = None, uuid: str | None = None) -> None:
    add_failures(storage, [Failure(payload, exception, queue, failed_at, uuid)])
