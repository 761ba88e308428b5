"""Finding jobs by what an operator types: an id, a uuid, a job name or a queue.

An id is one primary-key probe in each table; a uuid in ``failed_jobs`` is one probe of
Laravel's unique index. Anything else (a uuid of a queued job, a job's name, a queue) has no index
of its own in Laravel's layout (the name lives inside the payload), so it is looked for in the
newest :data:`WINDOW` rows of each table only (a range of the primary key): the cost stays flat at
a million rows, and the dashboard says which window it searched. :class:`SearchRepository` is the
only caller of the ``search_*`` statements.
"""

from __future__ import annotations

import json

from ictq.db.base import Storage, writable
from ictq.db.failed_jobs import FailedJob, failed_rows
from ictq.db.jobs import QueuedJob

WINDOW = 20_000  # newest rows of each table a text search reads
LIMIT = 50


class SearchRepository:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def job_by_id(self, job_id: int) -> QueuedJob | None:
        rows = self._jobs("search_job_by_id", {"id": job_id})
        return rows[0] if rows else None

    def jobs(self, text: str, window: int = WINDOW, limit: int = LIMIT) -> list[QueuedJob]:
        """Queued jobs of queue ``text``, or whose payload holds ``text`` (as JSON writes it: a
        typed ``App\\Jobs\\Mail`` is found as the payload's ``App\\\\Jobs\\\\Mail``), among the
        newest ``window``, newest first."""
        return self._jobs("search_jobs", _params(text, window, limit))

    def failed(self, text: str, window: int = WINDOW, limit: int = LIMIT) -> list[FailedJob]:
        """Failed jobs of queue ``text``, or whose payload holds ``text``, among the newest ``window``."""
        return failed_rows(self.storage, "search_failed", _params(text, window, limit))

    def _jobs(self, name: str, params: dict[str, object]) -> list[QueuedJob]:
        return [
            QueuedJob(id=int(job_id), queue=str(queue), payload=str(text), attempts=int(attempts),
                      reserved_at=None if reserved_at is None else int(reserved_at),
                      available_at=int(available_at), created_at=int(created_at))
            for job_id, queue, text, attempts, reserved_at, available_at, created_at
            in self.storage.fetch(name, params)
        ]


def _params(text: str, window: int, limit: int) -> dict[str, object]:
    needle = json.dumps(text, ensure_ascii=False)[1:-1]
    return {"queue": writable(text), "needle": writable(needle), "window": window, "limit": limit}


__all__ = ["LIMIT", "WINDOW", "SearchRepository"]
