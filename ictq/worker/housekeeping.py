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
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from ictq import ops
from ictq.config import Settings
from ictq.db import Reserved, Storage
from ictq.db.stats import StatsRepository
from ictq.db.workers import BOOT_ID, WorkerRecord, WorkersRepository
from ictq.errors import DatabaseError, DatabaseRefused
from ictq.pace import Every
from ictq.worker import crash_marker
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
                 intervals: Intervals = Intervals()) -> None:
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
        self._beat_at = float("-inf")
        self._prune = Every(intervals.prune_every)

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
        me, (job, job_name, processed, failed, held) = self.identity, self.activity()
        self.workers.beat(WorkerRecord(
            me.id, me.name, me.host, me.pid, me.queues, "alive", me.started_at, now,
            job.id if job else None, job.attempts if job else None, job_name if job else None,
            processed, failed), held)
        self.stats_rows.put(self.stats.changed(me.id))
        for record in self.reap(now):
            self.log.event(logging.WARNING, "worker-reaped", dead=record.name, host=record.host, pid=record.pid,
                           released=record.job_id)
        self._prune_failed_if_due()

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
