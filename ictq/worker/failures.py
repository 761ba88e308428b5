"""Failed jobs waiting to be moved to ``failed_jobs``, written in batches as acknowledgements are.

A job that fails stays held (leased) until its failure is written: with the next claim, when
:data:`~ictq.worker.claims.ACK_MAX_DELAY` has passed since the oldest pending one, and at exit
(see :class:`~ictq.worker.claims.Claims`). One transaction moves the whole batch
(:meth:`ictq.db.Storage.fail_many`), fenced by ``(id, attempts)``: a job another worker claimed
since is left alone, and a flush retried after a database error writes no failure twice.

Nothing is lost when the worker dies before the flush: the jobs are still in the jobs table,
reserved, and come back (at once when a worker on this machine reaps it, else after
``retry_after``) to run again. They are not in the crash marker's finished list, which only
holds successes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from ictq.db import Failure, Storage
from ictq.errors import DatabaseError, DatabaseUnavailable

Report = Callable[[bool | DatabaseError], None]
"""Told how a failure's write ended: True (moved), False (the reservation was lost: another
worker has the job) or the :class:`DatabaseError` that refused it (the job comes back after
``retry_after``)."""


class Pending(NamedTuple):
    failure: Failure
    report: Report


class PendingFailures:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._pending: list[Pending] = []
        self._held: set[tuple[int, int]] = set()
        self.oldest = 0.0  # when the oldest pending failure was added (the caller's clock)

    def add(self, failure: Failure, report: Report, now: float) -> None:
        if not self._pending:
            self.oldest = now
        self._pending.append(Pending(failure, report))
        self._held.add((failure.job.id, failure.job.attempts))

    def holds(self, job_id: int, attempts: int) -> bool:
        return (job_id, attempts) in self._held

    def __len__(self) -> int:
        return len(self._pending)

    def failures(self) -> list[Failure]:
        """The pending failures (a copy)."""
        return [pending.failure for pending in self._pending]

    def flush(self) -> list[Failure]:
        """Write the pending failures in one transaction and report each; return them (written,
        lost or refused: no longer held). Raises DatabaseUnavailable: they are kept for a retry.

        A batch the database refuses for another reason (a row it cannot take) is written again
        one failure at a time, so one bad row holds back no other."""
        pending = self._pending
        if not pending:
            return []
        try:
            moved = self.storage.fail_many([entry.failure for entry in pending])
        except DatabaseUnavailable:
            raise
        except DatabaseError:
            self._write_one_by_one()
            return [entry.failure for entry in pending]
        self._pending, self._held = [], set()
        for failure, report in pending:
            report((failure.job.id, failure.job.attempts) in moved)
        return [entry.failure for entry in pending]

    def _write_one_by_one(self) -> None:
        while self._pending:
            failure, report = self._pending[0]
            result: bool | DatabaseError
            try:
                result = bool(self.storage.fail_many([failure]))
            except DatabaseUnavailable:
                raise
            except DatabaseError as exc:
                result = exc
            self._pending.pop(0)
            self._held.discard((failure.job.id, failure.job.attempts))
            report(result)
