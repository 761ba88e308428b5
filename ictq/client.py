"""Dispatching jobs: the producer side of the queue.

``ictq.dispatch(...)`` uses a client built from the application's ``.env`` (one per thread,
created on first use); ``Client`` can be built explicitly from other settings.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ictq import jobs, payload
from ictq.config import Settings, load_settings
from ictq.db import NewJob, Storage, open_storage
from ictq.errors import DispatchError

Delay = int | float | timedelta | None


@dataclass(frozen=True)
class Dispatched:
    """A queued job: its row id (None for sync) and its uuid."""

    id: int | None
    uuid: str
    name: str
    queue: str


class Client:
    """Dispatches jobs to the queue described by ``settings``."""

    def __init__(
        self,
        settings: Settings,
        storage: Storage | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.storage = storage or open_storage(settings)
        self.clock = clock

    def migrate(self) -> None:
        """Create (or adopt) the queue tables."""
        self.storage.migrate()

    def close(self) -> None:
        self.storage.close()

    def dispatch(
        self, name: str, data: Mapping[str, Any] | None = None, queue: str | None = None, delay: Delay = None
    ) -> Dispatched:
        """Queue the job ``name`` with ``data`` as its keyword arguments."""
        spec = jobs.find(name)
        data = dict(data or {})
        if spec is not None:
            jobs.check_arguments(spec, data)
        if self.settings.queue_connection == "sync":
            return self._run_now(name, data)
        target, row, job_uuid = self._row(name, data, spec, queue, _seconds(delay))
        return Dispatched(self.storage.push(row), job_uuid, name, target)

    def dispatch_many(
        self, name: str, items: Iterable[Mapping[str, Any]], queue: str | None = None, delay: Delay = None
    ) -> list[Dispatched]:
        """Queue one job per item, all in one transaction."""
        spec = jobs.find(name)
        prepared = [dict(item) for item in items]
        if spec is not None:
            for data in prepared:
                jobs.check_arguments(spec, data)
        if self.settings.queue_connection == "sync":
            return [self._run_now(name, data) for data in prepared]
        seconds = _seconds(delay)
        built = [self._row(name, data, spec, queue, seconds) for data in prepared]
        self.storage.push_many([row for _, row, _ in built])
        return [Dispatched(None, job_uuid, name, target) for target, _, job_uuid in built]

    def _row(
        self, name: str, data: dict[str, Any], spec: jobs.JobSpec | None, queue: str | None, delay: int
    ) -> tuple[str, NewJob, str]:
        now = int(self.clock())
        target = queue or (spec.queue if spec else None) or self.settings.default_queue
        job_uuid, text = payload.build(
            name,
            data,
            created_at=now,
            delay=delay or None,
            max_tries=spec.tries if spec else None,
            max_exceptions=spec.max_exceptions if spec else None,
            fail_on_timeout=spec.fail_on_timeout if spec else False,
            backoff=spec.backoff if spec else None,
            timeout=spec.timeout if spec else None,
            retry_until=now + spec.retry_until if spec and spec.retry_until else None,
        )
        return target, NewJob(target, text, now + delay, now), job_uuid

    def _run_now(self, name: str, data: dict[str, Any]) -> Dispatched:
        """``QUEUE_CONNECTION=sync``: run the job in this process, now; errors propagate."""
        spec = jobs.get(name)
        job_uuid, _ = payload.build(name, data, created_at=int(self.clock()))
        target = spec.queue or self.settings.default_queue
        with jobs.running(jobs.JobContext(None, job_uuid, name, target, 1, self.settings, spec.tries or 0)):
            spec.handler(**data)
        return Dispatched(None, job_uuid, name, target)


def _seconds(delay: Delay) -> int:
    if delay is None:
        return 0
    seconds = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
    if seconds < 0:
        raise DispatchError(f"delay must not be negative, got {seconds:g}s")
    return round(seconds)


_local = threading.local()
_default_env_file: str | None = None


def configure(env_file: str | os.PathLike[str] | None = None) -> None:
    """Point ``ictq.dispatch`` at another ``.env`` (default: ``$ICTQ_ENV_FILE`` or ``./.env``)."""
    global _default_env_file
    _default_env_file = None if env_file is None else os.fspath(env_file)
    client = getattr(_local, "client", None)
    if client is not None:
        client.close()
    _local.client = None


def default_client() -> Client:
    """This thread's client for the configured ``.env``."""
    client: Client | None = getattr(_local, "client", None)
    if client is None:
        client = Client(load_settings(_default_env_file))
        _local.client = client
    return client


def dispatch(
    name: str, data: Mapping[str, Any] | None = None, queue: str | None = None, delay: Delay = None
) -> Dispatched:
    """Queue the job ``name``; see :meth:`Client.dispatch`."""
    return default_client().dispatch(name, data, queue=queue, delay=delay)


def dispatch_many(
    name: str, items: Iterable[Mapping[str, Any]], queue: str | None = None, delay: Delay = None
) -> list[Dispatched]:
    """Queue many jobs in one transaction; see :meth:`Client.dispatch_many`."""
    return default_client().dispatch_many(name, items, queue=queue, delay=delay)
