"""Housekeeping, on the worker's background thread: heartbeats (table ``ictq_workers``), the
job statistics, reaping dead workers, pruning old failed jobs.

Every worker registers itself and beats every ``beat_every`` seconds: host, pid, name, queues,
start, last beat, current job, processed and failed counts, and the other jobs it holds. With
each beat it stores its job statistics (:mod:`ictq.worker.stats`) and reaps: a worker whose
beats stopped for ``ictq.db.workers.DEAD_AFTER`` seconds, or whose process is gone on this very
host, is marked dead and the jobs it held go back to the queue at once, instead of after
``retry_after``: the one it was running with its attempt counted, the others (not started, or
finished and not yet deleted) with their attempt taken back, when the dead worker's crash
marker (:mod:`ictq.worker.crash_marker`) says which was which; without it, every attempt counts.
The jobs the marker lists as finished but not yet acknowledged are deleted instead (they ran),
so a killed worker's finished jobs do not run twice when it is reaped on its own machine.
The writes are fenced by ``(id, attempts)``, so a job another worker has claimed since is never
touched. Rows of workers gone for ``forget_after`` seconds are deleted. With
``ICTQ_PRUNE_FAILED_HOURS``, failed jobs older than that are deleted, at most once per
``prune_every`` seconds.

With each beat it also adds the per-minute job history recorded since the last beat
(:mod:`ictq.worker.history`) to ``ictq_history``, in one transaction; a write that fails keeps
the counts for the next beat (and for :meth:`Housekeeping.leave`). The first worker whose beat
falls in a new minute (the one that marks it in ``ictq_history_marks``) stores the queues' sizes
of that minute in ``ictq_history_sizes``, for the whole fleet. History older than
``ICTQ_HISTORY_DAYS`` days is deleted at the prune interval.

The intervals are constructor arguments (:class:`Intervals`); a worker takes them from its
settings (``ICTQ_BEAT_EVERY``, ``ICTQ_PRUNE_EVERY``: 5 s and an hour unless set), and tests
use short ones.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from ictq import ops
from ictq.config import Settings
from ictq.db import Reserved, Storage
from ictq.db.history import HistoryRepository, QueueSnapshot
from ictq.db.stats import StatsRepository
from ictq.db.workers import BOOT_ID, WorkerRecord, WorkersRepository
from ictq.errors import DatabaseError, DatabaseRefused, DatabaseUnavailable
from ictq.pace import Every
from ictq.worker import crash_marker
from ictq.worker.history import JobHistory
from ictq.worker.log import WorkerLog
from ictq.worker.stats import JobStats

BEAT_EVERY = 5.0
PRUNE_EVERY = 3600.0
FORGET_AFTER = 24 * 3600


@dataclass(frozen=True)
class Intervals:
    beat_every: float = BEAT_EVERY
    prune_every: float = PRUNE_EVERY
    forget_after: int = FORGET_AFTER


class Identity:
    """Who this worker is in the workers table."""

    def __init__(self, name: str, queues: Sequence[str], started_at: int) -> None:
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.id = f"{self.host}:{self.pid}:{started_at}:{BOOT_ID}"
        self.name = name
        self.queues = ",".join(queues)
        self.started_at = started_at


class Activity(NamedTuple):
    """What a beat reports: the running job (and its name), the counts, the other held jobs."""

    job: Reserved | None
    job_name: str | None
    processed: int
    failed: int
    held: list[Reserved]


class Housekeeping:
    """Call :meth:`tick` from the thread that owns ``storage`` (a :class:`BackgroundThread` task)."""

    def __init__(self, storage: Storage, settings: Settings, identity: Identity, activity: Callable[[], Activity],
                 stats: JobStats, log: WorkerLog, clock: Callable[[], float],
                 intervals: Intervals = Intervals(), history: JobHistory | None = None,
                 recording: AbstractContextManager[object] | None = None) -> None:
        self.storage = storage
        self.workers = WorkersRepository(storage)
        self.stats_rows = StatsRepository(storage)
        self.settings = settings
        self.identity = identity
        self.activity = activity
        self.stats = stats
        self.log = log
        self.clock = clock
        self.intervals = intervals
        # Held while the beat reads the activity and writes it, so a claim's record of its batch
        # is never overwritten by an older list (LeaseKeeper.recording).
        self.recording = recording if recording is not None else nullcontext()
        self._beat_at = float("-inf")
        self._prune = Every(intervals.prune_every)
        self.history = history if history is not None else JobHistory()
        self.history_rows = HistoryRepository(storage)
        self._prune_history = Every(intervals.prune_every)
        self._sizes_minute: int | None = None  # the last minute this worker tried to snapshot
        self._history_failing = False

    def due(self) -> float:
        return self._beat_at + self.intervals.beat_every

    def tick(self, now: float) -> None:
        if now < self.due():
            return
        self._beat_at = now
        try:
            self.beat()
        except DatabaseError as exc:
            self.log.event(logging.DEBUG, "heartbeat-failed", error=str(exc))
        except Exception as exc:  # noqa: BLE001 - the background thread must outlive anything a beat meets
            self.log.event(logging.ERROR, "heartbeat-failed", error=f"{type(exc).__name__}: {exc}")

    def first_beat(self) -> None:
        """At start-up, before the background thread runs (so a worker killed by its very first
        job is reaped like any other, and dead workers' jobs come back before it claims): one beat
        now; if it fails, the background thread retries at once (and logs). Raises
        :class:`DatabaseRefused` (a database that will not take the write: the worker cannot work)."""
        try:
            self.beat()
        except DatabaseRefused:
            raise
        except DatabaseError:
            return
        self._beat_at = time.monotonic()

    def beat(self) -> None:
        """Record this worker as alive, store its statistics, reap dead workers, prune if due."""
        now = int(self.clock())
        me = self.identity
        with self.recording:
            job, job_name, processed, failed, held = self.activity()
            self.workers.beat(WorkerRecord(
                me.id, me.name, me.host, me.pid, me.queues, "alive", me.started_at, now,
                job.id if job else None, job.attempts if job else None, job_name if job else None,
                processed, failed), held)
        self.stats_rows.put(self.stats.changed(me.id))
        # Reaping first: a dead worker's jobs go back at once, whatever the history writes meet
        # (every worker adds to the same history rows, and may wait on them).
        for record in self.reap(now):
            self.log.event(logging.WARNING, "worker-reaped", dead=record.name, host=record.host, pid=record.pid,
                           released=record.job_id)
        self.add_history(now)
        self._snapshot_sizes_if_new_minute(now)
        self._prune_failed_if_due()
        self._prune_history_if_due(now)

    def add_history(self, now: int) -> bool:
        """Add the history recorded since the last beat to ``ictq_history`` (one transaction);
        on a DatabaseError keep it for the next beat (the minutes older than ``ICTQ_HISTORY_DAYS``
        excepted: they would be pruned) and return False. A DatabaseUnavailable is raised (after
        keeping the counts): the rest of the beat would meet it too."""
        rows = self.history.take()
        if not rows:
            return True
        try:
            self.history_rows.add(rows)
        except DatabaseError as exc:
            keep_after = now - self.settings.history_days * 86400
            self.history.give_back([row for row in rows if row.minute >= keep_after])
            if isinstance(exc, DatabaseUnavailable):
                raise
            if not self._history_failing:
                self.log.event(logging.WARNING, "history-write-failed", error=str(exc),
                               note="the counts are kept and added with the next beat")
            self._history_failing = True
            return False
        self._history_failing = False
        return True

    def _snapshot_sizes_if_new_minute(self, now: int) -> None:
        """The first beat of a minute: mark it; the one worker of the fleet that marked it first
        stores the queues' sizes (pending, delayed, reserved; no failed_jobs count)."""
        minute = now // 60 * 60
        if minute == self._sizes_minute:
            return
        try:
            won = self.history_rows.mark(minute)
            self._sizes_minute = minute
            if won:
                sizes = ops.sizes(self.storage, now, failed_counts=[])
                self.history_rows.put_sizes(minute, [QueueSnapshot(s.queue, s.pending, s.delayed, s.reserved)
                                                     for s in sizes])
        except DatabaseUnavailable:
            raise
        except DatabaseError as exc:
            self.log.event(logging.DEBUG, "history-sizes-failed", error=str(exc))

    def _prune_history_if_due(self, now: int) -> None:
        """Delete the history older than ``ICTQ_HISTORY_DAYS`` days, at most once per ``prune_every`` seconds."""
        if not self._prune_history.due():
            return
        days = self.settings.history_days
        try:
            deleted = self.history_rows.prune(now - days * 86400)
        except DatabaseUnavailable:
            raise
        except DatabaseError as exc:
            self.log.event(logging.DEBUG, "history-prune-failed", error=str(exc))
            return
        if deleted:
            self.log.event(logging.INFO, "history-pruned", deleted=deleted, older_than=f"{days}d")

    def reap(self, now: int) -> list[WorkerRecord]:
        """Mark dead workers dead and give their jobs back; forget long-gone workers."""
        reaped = []
        for record in self.workers.all():
            if record.id == self.identity.id or record.state != "alive" or record.alive(now):
                continue
            if not self.workers.mark(record.id, "dead"):
                continue  # another worker reaped it first
            here = record.on_this_boot()
            position = crash_marker.read(record.id) if here else None
            finished = crash_marker.read_finished(record.id) if here else []
            # Jobs it finished and had not acknowledged yet: they ran; delete them (fenced).
            done = [Reserved(job_id, "", "", attempts) for job_id, attempts in finished]
            self.storage.delete_many(done)
            ran, unstarted = split_held(record.held_jobs(), position, set(finished))
            # The running job's attempt counts, so a job that kills its worker still runs out of
            # tries; the others get theirs back. (Jobs done or re-claimed since are fenced off.)
            self.storage.release_many(ran)
            self.storage.unclaim_many(unstarted)
            crash_marker.forget(record.id)
            reaped.append(record)
        before = now - self.intervals.forget_after
        self.stats_rows.forget_old(before)
        self.workers.forget_old(before)
        return reaped

    def leave(self) -> None:
        """At exit: store the last statistics and remove this worker's row (else it goes stale
        and is reaped as dead). Raises DatabaseError."""
        self.stats_rows.put(self.stats.changed(self.identity.id))
        self.add_history(int(self.clock()))
        self.workers.leave(self.identity.id)

    def _prune_failed_if_due(self) -> None:
        """``ICTQ_PRUNE_FAILED_HOURS``: delete older failed jobs, at most once per ``prune_every`` seconds."""
        hours = self.settings.prune_failed_hours
        if hours <= 0 or not self._prune.due():
            return
        cutoff = datetime.fromtimestamp(self.clock(), timezone.utc) - timedelta(hours=hours)
        deleted = ops.prune_failed(self.storage, cutoff)
        if deleted:
            self.log.event(logging.INFO, "failed-pruned", deleted=deleted, older_than=f"{hours}h")


def split_held(held: Sequence[Reserved], position: crash_marker.Position | None,
               finished: Collection[tuple[int, int]] = ()) -> tuple[list[Reserved], list[Reserved]]:
    """A dead worker's held jobs as ``(ran, unstarted)``: ``ran`` is the job it was running when
    it died; without its crash marker every job counts as ran, as an expired lease would have it.
    The jobs of ``finished`` (``(id, attempts)``: deleted by the reaper) are in neither."""
    held = [job for job in held if (job.id, job.attempts) not in finished] if finished else held
    if position is None:
        return list(held), []
    ran = [job for job in held if position.state == crash_marker.RUNNING
           and (job.id, job.attempts) == (position.job_id, position.attempts)]
    return ran, [job for job in held if job not in ran]
