"""Dispatching jobs: the producer side of the queue.

``ictq.dispatch(...)`` uses a client built from the application's ``.env`` (one per thread,
created on first use); ``Client`` can be built explicitly from other settings.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import timedelta
from itertools import islice
from typing import Any

from ictq import jobs, payload
from ictq.config import Settings, load_settings
from ictq.db import NewJob, Storage, open_storage
from ictq.errors import DispatchError
from ictq.jobs import Dispatched

Delay = int | float | timedelta | None
CHUNK = 256  # jobs encoded at a time by a bulk dispatch (a COPY write of ~110 KB on PostgreSQL)

__all__ = ["Client", "Delay", "Dispatched", "configure", "default_client", "dispatch", "dispatch_many"]


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
        seconds = _seconds(delay)
        now = int(self.clock())
        target = self._queue(spec, queue)
        job_uuid, text = self._template(name, spec, now, seconds).render(data)
        return Dispatched(self.storage.push(NewJob(target, text, now + seconds, now)), job_uuid, name, target)

    def dispatch_many(
        self, name: str, items: Iterable[Mapping[str, Any]], queue: str | None = None, delay: Delay = None
    ) -> list[Dispatched]:
        """Queue one job per item, all in one transaction (COPY on PostgreSQL, multi-row
        inserts elsewhere). Rows stream to the database while later ones are encoded."""
        spec = jobs.find(name)
        if self.settings.queue_connection == "sync":
            return [self._run_now(name, dict(item)) for item in items]
        seconds = _seconds(delay)
        now = int(self.clock())
        target = self._queue(spec, queue)
        available_at = now + seconds
        fill = self._template(name, spec, now, seconds).chunk_filler()
        dispatched: list[Dispatched] = []

        def chunks() -> Iterator[list[str]]:
            # A chunk of jobs at a time, each step a list comprehension over the chunk: checked,
            # given uuids (payload.uuid_batches: one os.urandom call per chunk; uuid4() per job
            # costs more than encoding the job), encoded. Each Dispatched is built here, while the
            # server is still busy with the earlier chunks, rather than in a loop after the commit.
            iterator = iter(items)
            for job_uuids in payload.uuid_batches(CHUNK):
                chunk = list(islice(iterator, CHUNK))
                if not chunk:
                    return
                if spec is not None:
                    jobs.check_chunk(spec, chunk)
                if len(chunk) < CHUNK:
                    job_uuids = job_uuids[:len(chunk)]
                dispatched.extend([Dispatched(None, job_uuid, name, target) for job_uuid in job_uuids])
                yield fill(job_uuids, chunk)

        self.storage.push_payloads(target, available_at, now, chunks())
        return dispatched

    def _queue(self, spec: jobs.JobSpec | None, queue: str | None) -> str:
        return queue or (spec.queue if spec else None) or self.settings.default_queue

    def _template(self, name: str, spec: jobs.JobSpec | None, now: int, delay: int) -> payload.Template:
        if spec is None:
            return payload.Template(name, created_at=now, delay=delay or None)
        return payload.Template(
            name,
            created_at=now,
            delay=delay or None,
            max_tries=spec.tries,
            max_exceptions=spec.max_exceptions,
            fail_on_timeout=spec.fail_on_timeout,
            backoff=spec.backoff,
            timeout=spec.timeout,
            retry_until=now + spec.retry_until if spec.retry_until else None,
        )

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


def _dispatch_with_default_client(name: str, data: dict[str, Any], queue: str | None, delay: int | None) -> Dispatched:
    return default_client().dispatch(name, data, queue=queue, delay=delay)


jobs.use_dispatcher(_dispatch_with_default_client)
