"""The worker's claimed jobs: batch claims, a local buffer, batched acknowledgements.

A claim takes up to ``batch`` jobs of the first non-empty queue (in ``--queue`` order) in one
transaction, which also deletes the jobs finished since the last claim. The batch size adapts:
it doubles while claims come back full, up to :data:`MAX_BATCH`, but never beyond about
:data:`CLAIM_WINDOW` seconds of work at the pace the last batch ran (so slow jobs are claimed
one or a few at a time, as in Laravel, and a job that arrives on a higher-priority queue waits
at most that long), and it falls back to what the queue had. Claimed jobs wait in a local
buffer and run one by one; the lease keeper owns the set of held jobs (it is told of every
job claimed, and of every job let go: acknowledged, handed back or failed).
Finished jobs are deleted in batches: with the next claim, when :data:`ACK_MAX_DELAY` has
passed, and at exit. Failed jobs are moved to ``failed_jobs`` in batches in the same way
(:mod:`ictq.worker.failures`; written just before the claim, in a transaction of their own),
and stay held until then. A stopping worker hands back the jobs it claimed and did not start, at
once, with their attempt taken back. Every write is fenced by ``(id, attempts)``.
Each finished job also goes into the worker's crash marker (:mod:`ictq.worker.crash_marker`)
until its delete is committed, so that a reaper on this machine deletes it, rather than hands
it back to run again, if the worker is killed before that.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from ictq.db import Failure, Reserved, Storage
from ictq.worker.crash_marker import CrashMarker
from ictq.worker.failures import PendingFailures, Report
from ictq.worker.lease import LeaseKeeper

MAX_BATCH = 1024  # also bounds the held-jobs list stored with the claim (MySQL TEXT: 64 KB)
CLAIM_WINDOW = 0.05
ACK_MAX_DELAY = 0.5


class Claims:
    def __init__(self, storage: Storage, lease: LeaseKeeper[Any], queues: tuple[str, ...], retry_after: int,
                 clock: Callable[[], float], max_batch: int = MAX_BATCH, holder: str | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.holder = holder
        self.monotonic = monotonic  # the pace of the jobs (batch sizes, ack delay) is measured on it
        self.storage = storage
        self.lease = lease
        self.queues = queues
        self.retry_after = retry_after
        self.clock = clock
        self.max_batch = max(1, max_batch)
        self.batch = 1
        self._claimed_at: float | None = None  # when the last batch was claimed (None: it ran dry idle)
        self._claimed = 0
        self._buffer: deque[Reserved] = deque()
        self._acks: list[Reserved] = []
        self._oldest_ack = 0.0
        self._failures = PendingFailures(storage)
        self.marker = CrashMarker(None)  # the worker's own from start-up on: records the acks not committed

    def next(self, paused: frozenset[str], limit: int = 0) -> Reserved | None:
        """The next job to run: from the buffer, else from a new claim (acks flushed first).

        ``limit`` caps the claim (``--max-jobs``, ``--once``); 0 means no cap.
        """
        if paused and any(job.queue in paused for job in self._buffer):
            self.hand_back([job for job in self._buffer if job.queue in paused])
        if not self._buffer:
            self._claim(paused, limit)
        return self._buffer.popleft() if self._buffer else None

    def _claim(self, paused: frozenset[str], limit: int) -> None:
        """Claim from the first non-empty queue; the pending acks go in the first claim's commit."""
        size = min(self.batch, limit) if limit > 0 else self.batch
        now = int(self.clock())
        for queue in self.queues:
            if queue in paused:
                continue
            claimed = self._claim_with_acks(queue, now, size)
            if claimed:
                self._buffer.extend(claimed)
                self._resize(size, len(claimed))
                return
        self.batch, self._claimed_at = 1, None
        self.flush()  # every queue paused: nothing carried the acks

    def _resize(self, asked: int, got: int) -> None:
        """The next batch: what the queue had when it had less than asked; else double, capped
        by MAX_BATCH and by CLAIM_WINDOW at the pace the previous batch ran."""
        now = self.monotonic()
        if got < asked:
            self.batch = max(1, got)
        else:
            self.batch = min(self.max_batch, asked * 2)
            if self._claimed_at is not None and self._claimed:
                per_job = (now - self._claimed_at) / self._claimed
                if per_job > 0:
                    self.batch = max(1, min(self.batch, int(CLAIM_WINDOW / per_job)))
        self._claimed_at, self._claimed = now, got

    def _claim_with_acks(self, queue: str, now: int, size: int) -> list[Reserved]:
        self.flush_failures()
        acks = self._acks
        if acks:
            self.lease.let_go(acks)
        try:
            # The claim records the batch as this worker's held jobs; a heartbeat's snapshot and
            # write of that list happen wholly before or after (LeaseKeeper.recording).
            with self.lease.recording:
                claimed = self.storage.claim(queue, now, self.retry_after, size, done=acks, holder=self.holder)
                self.lease.hold(claimed)
        except BaseException:
            if acks:
                self.lease.hold(acks)
            raise
        if acks:
            self._acks = []
            self.marker.acknowledged()
        return claimed

    def done(self, job: Reserved) -> None:
        """``job`` finished: delete it with the next batch of acknowledgements."""
        if not self._acks:
            self._oldest_ack = self.monotonic()
        self._acks.append(job)
        self.marker.finished(job.id, job.attempts)
        if len(self._acks) > 2 * self.max_batch or self.monotonic() - self._oldest_ack >= ACK_MAX_DELAY:
            self.flush()

    def fail(self, failure: Failure, report: Report) -> None:
        """``failure.job`` failed: move it to failed_jobs with the next batch of failures (it
        stays held until then); ``report`` is told how that ended."""
        self._failures.add(failure, report, self.monotonic())
        if len(self._failures) > 2 * self.max_batch or self.monotonic() - self._failures.oldest >= ACK_MAX_DELAY:
            self.flush_failures()

    def holds_failure(self, job: Reserved) -> bool:
        """Whether ``job`` waits in the pending failures (it is let go when they are written)."""
        return self._failures.holds(job.id, job.attempts)

    def flush_failures(self) -> None:
        """Write the pending failures now (raises DatabaseUnavailable; they are kept for a retry)."""
        if len(self._failures):
            self.lease.let_go(failure.job for failure in self._failures.flush())

    def flush(self) -> None:
        """Write the pending failures and delete the finished jobs now (raises
        DatabaseUnavailable; what is not written is kept for a retry)."""
        self.flush_failures()
        if not self._acks:
            return
        acks = self._acks
        self.lease.let_go(acks)
        try:
            self.storage.delete_many(acks)
        except BaseException:
            self.lease.hold(acks)
            raise
        self._acks = []
        self.marker.acknowledged()

    def hand_back(self, jobs: Iterable[Reserved] | None = None) -> int:
        """Give claimed, unstarted jobs back to the queue at once (all of them by default)."""
        returning = list(self._buffer) if jobs is None else list(jobs)
        if not returning:
            return 0
        ids = {job.id for job in returning}
        self._buffer = deque(job for job in self._buffer if job.id not in ids)
        self.lease.let_go(returning)
        return self.storage.unclaim_many(returning)

    def waiting(self) -> list[Reserved]:
        """Claimed jobs not started yet (a copy: read from the lease thread when a job is stuck)."""
        return list(self._buffer)

    def finished(self) -> list[Reserved]:
        """Finished jobs not deleted yet (a copy, as :meth:`waiting`)."""
        return list(self._acks)

    def failing(self) -> list[Failure]:
        """Failed jobs not moved to failed_jobs yet (a copy, as :meth:`waiting`)."""
        return self._failures.failures()

    @property
    def buffered(self) -> int:
        return len(self._buffer)
