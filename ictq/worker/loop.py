"""The worker loop: claim a job, run it, record what happened; and the signals.

:meth:`Worker.run` reads top to bottom, one comment per step; every reason to stop is decided
in :meth:`Worker._stop_reason`. Signals only set flags (TERM/INT/QUIT: stop after the current
job, a second one: stop now; USR2: pause; CONT: resume), except that a second stop signal
during a job interrupts it.

The parts: :mod:`~ictq.worker.claims` (batch claims, batched acknowledgements),
:mod:`~ictq.worker.outcomes` (release, retry, fail, stuck), and on a background thread with its
own connection, :mod:`~ictq.worker.lease` (leases, the hard deadline) and
:mod:`~ictq.worker.housekeeping` (heartbeats, statistics, reaping, pruning).
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

from ictq import jobs, laravel_cache, logs, payload, policy
from ictq.config import Settings
from ictq.db import Reserved, Storage, open_storage
from ictq.errors import (
    ConfigError,
    DatabaseError,
    DatabaseUnavailable,
    Fail,
    ForcedStop,
    InvalidPayload,
    JobFailure,
    JobTimeout,
    MaxAttemptsExceeded,
    Release,
    UnknownJob,
)
from ictq.pace import Sampled
from ictq.worker import crash_marker
from ictq.worker.background import BackgroundThread
from ictq.worker.builtin import register_builtin_jobs
from ictq.worker.claims import MAX_BATCH, Claims
from ictq.worker.control import ControlWatcher
from ictq.worker.crash_marker import CrashMarker
from ictq.worker.history import JobHistory
from ictq.worker.housekeeping import Activity, Housekeeping, Identity, Intervals
from ictq.worker.lease import LeaseKeeper
from ictq.worker.log import WorkerLog
from ictq.worker.outcomes import Outcomes
from ictq.worker.php_neighbours import php_queue_workers
from ictq.worker.running import Running
from ictq.worker.stats import JobStats
from ictq.worker.timeouts import TimeLimit
from ictq.worker.wakeup import Waker

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_MEMORY = 12
PHP_CHECK_EVERY = 5.0  # seconds between looks for PHP queue workers on the same SQLite file
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
OUTAGE_BACKOFF_MAX = 30.0
FORCED_STOP_GRACE = 5.0


@dataclass(frozen=True)
class WorkerOptions:
    """``queue:work``'s options, with Laravel's defaults."""

    queues: tuple[str, ...] = ("default",)
    sleep: float = 3.0
    tries: int = 1
    backoff: tuple[int, ...] = (0,)
    timeout: int = 60
    memory: int = 128
    max_jobs: int = 0
    max_time: int = 0
    rest: float = 0.0
    stop_when_empty: bool = False
    once: bool = False
    name: str = "default"
    force: bool = False


@dataclass(frozen=True)
class Stop:
    reason: str
    exit_code: int


class Worker:
    def __init__(
        self,
        settings: Settings,
        options: WorkerOptions,
        storage: Storage | None = None,
        clock: Callable[[], float] = time.time,
        logger: logging.Logger | None = None,
        intervals: Intervals | None = None,
    ) -> None:
        register_builtin_jobs()
        self.settings = settings
        self.options = options
        self.storage = storage or open_storage(settings, worker=True)
        self.clock = clock
        self.logger = logger or logging.getLogger(logs.LOGGER_NAME)
        self.log = WorkerLog(self.logger, options.name)
        self.stats = JobStats()
        self.history = JobHistory()
        # The background thread: leases and the hard deadline, housekeeping; its own connection,
        # and its own outcomes for a job stuck past its deadline.
        self.background = BackgroundThread(open_storage(settings, worker=True))
        # pg_stat_activity (and PgBouncer's SHOW CLIENTS) list the worker's connections by name.
        for own in (self.storage, self.background.storage):
            own.application_name = f"ictq-worker:{options.name}"
        lease_every = max(0.5, min(30.0, settings.retry_after / 4))
        self.lease: LeaseKeeper[Running] = LeaseKeeper(self.background.storage, lease_every, clock, self.logger,
                                                       on_deadline=self._on_deadline,
                                                       wake_by=self.background.wake_by)
        self._deadline_outcomes = Outcomes(self.background.storage, settings, self.stats, self.log, clock,
                                           self._database_down_now, history=self.history)
        self.identity = Identity(options.name, options.queues, int(clock()))
        intervals = intervals or Intervals(settings.beat_every, settings.prune_every)
        self.housekeeping = Housekeeping(self.background.storage, settings, self.identity, self._activity,
                                         self.stats, self.log, clock, intervals, history=self.history,
                                         recording=self.lease.recording)
        self.background.add(self.lease)
        self.background.add(self.housekeeping)
        self.claims = Claims(self.storage, self.lease, options.queues, settings.retry_after, clock,
                             max_batch=1 if options.once else MAX_BATCH, holder=self.identity.id)
        # The outcomes of the jobs the loop runs; their failures are written in batches, by the claims.
        self.outcomes = Outcomes(self.storage, settings, self.stats, self.log, clock, self._database_down_now,
                                 batch=self.claims, history=self.history)
        self.control = ControlWatcher(self.storage, laravel=laravel_cache.open_store(settings, self.storage),
                                      queues=options.queues, connection=settings.queue_connection,
                                      trouble=self._laravel_cache_trouble)
        self._php_workers: Sampled[list[int]] | None = None
        if settings.db.dialect == "sqlite" and settings.db.database != ":memory:":
            database, app_dir = settings.db.database, settings.app_dir
            self._php_workers = Sampled(lambda: php_queue_workers(app_dir, database), every=PHP_CHECK_EVERY)
        down = settings.app_dir / "storage" / "framework" / "down"
        self._down_flag = Sampled(down.exists, every=1.0)
        self.time_limit = TimeLimit()
        self.crash_marker = CrashMarker(None)  # the real one from start-up on (see _start)
        self._policies: dict[tuple[Any, ...], policy.Policy] = {}
        self.processed = 0
        self.iterations = 0
        self._started = time.monotonic()
        self._waker = Waker()
        self._quit = False
        self._paused = False
        self._queue_empty = False
        self._running: Running | None = None
        self._in_handler = False
        self._forced = False
        self._outage_since: float | None = None
        self._outage_delay = 0.0
        self._previous_handlers: dict[int, Any] = {}

    # -- the loop -----------------------------------------------------------------------

    def run(self) -> int:
        """Process jobs until a stop reason; return the process exit code."""
        self._start()
        self.log.event(logging.INFO, "worker-started", pid=os.getpid(), queues=",".join(self.options.queues),
                       connection=self.storage.describe())
        try:
            while True:
                # 1. Stop when any reason says so (signal, restart, memory, limits, --once, empty queue).
                stop = self._stop_reason()
                if stop is not None:
                    self.log.event(logging.INFO, "worker-stopping", reason=stop.reason, processed=self.processed)
                    return stop.exit_code
                # 2. Paused (USR2) or the application is down for maintenance: hand back what
                #    was claimed, and wait.
                if self._paused or self._app_is_down():
                    self._settle_claims()
                    self._sleep(self.options.sleep)
                    continue
                # 3. Finish writes that waited for the database, read the control flags
                #    (ictq restart / pause), then claim the next job.
                try:
                    self.outcomes.flush_pending()
                    control = self.control.refresh()
                    if self.control.restart_requested:
                        continue  # step 1 stops the worker
                    job = self.claims.next(control.paused, self._claim_limit())
                except DatabaseUnavailable as exc:
                    self._database_down(exc)
                    continue
                self._database_up()
                self.iterations += 1
                # 4. Nothing to do: wait for work (unless the stop reasons end the loop first).
                if job is None:
                    self._queue_empty = True
                    if not (self.options.stop_when_empty or self.options.once):
                        self._idle()
                    continue
                # 5. Run it, record the outcome, rest if asked to.
                self._queue_empty = False
                self._process(job)
                self.processed += 1
                if self.options.rest > 0:
                    self._sleep(self.options.rest)
        except ForcedStop:
            self.log.event(logging.WARNING, "worker-stopping", reason="forced", processed=self.processed)
            return EXIT_ERROR
        finally:
            self._finish()

    def _start(self) -> None:
        self._install_signal_handlers()  # first: a TERM during start-up is a clean stop too
        try:
            self._check_database()
            self.housekeeping.first_beat()  # registered before the first claim (a first write, too)
        except BaseException:
            self._restore_signal_handlers()
            self.background.storage.close()
            self.storage.close()
            raise
        self.time_limit.install()
        self.crash_marker = self.claims.marker = CrashMarker(self.identity.id)
        self.background.start()

    def _finish(self) -> None:
        """Hand back and acknowledge what can be, leave the workers table, let go of everything."""
        self._settle_claims()
        self.outcomes.flush_pending(final=True)
        self.background.stop()
        with contextlib.suppress(DatabaseError):  # else the row goes stale and is reaped as dead
            self.housekeeping.leave()
        self.background.storage.close()
        self.crash_marker.close()
        self.time_limit.restore()
        self._restore_signal_handlers()
        self.storage.close()
        self._waker.close()

    def _check_database(self) -> None:
        """Fail at start, in one line, on what no retry can fix (a wrong path, missing tables,
        :class:`DatabaseRefused`: a wrong password, an unknown database, a file that cannot be
        opened or written); a database that is merely down is waited for by the loop.

        Later, a :class:`~ictq.errors.DatabaseRefused` (the database dropped, the password
        changed, the file made read-only) is not caught by the loop either: the worker stops
        (after handing back what it can) and the CLI says why in one line, so that Supervisor
        shows the worker failing rather than one spinning forever."""
        if self._php_workers is not None and (pids := self._php_workers(force=True)):
            raise ConfigError(_php_workers_message(pids))
        with contextlib.suppress(DatabaseUnavailable):
            self.control.refresh(force=True)

    def _stop_reason(self) -> Stop | None:
        """Every reason for the worker to stop, in one place."""
        if self._quit:
            return Stop("signal", EXIT_OK)
        if self.control.restart_requested:
            by = "php artisan queue:restart" if self.control.laravel_restart_requested else "ictq restart"
            return Stop(f"restart requested ({by})", EXIT_OK)
        if self.options.memory > 0 and resident_mb() >= self.options.memory:
            return Stop(f"memory {resident_mb():.0f}MB over --memory={self.options.memory}MB", EXIT_MEMORY)
        if self.options.max_jobs > 0 and self.processed >= self.options.max_jobs:
            return Stop("max-jobs", EXIT_OK)
        if self.options.max_time > 0 and time.monotonic() - self._started >= self.options.max_time:
            return Stop("max-time", EXIT_OK)
        if self.options.once and self.iterations > 0:
            return Stop("once", EXIT_OK)
        if self.options.stop_when_empty and self._queue_empty:
            return Stop("queue empty", EXIT_OK)
        if self._php_workers is not None and (pids := self._php_workers()):
            return Stop(_php_workers_message(pids), EXIT_ERROR)
        return None

    def _claim_limit(self) -> int:
        """How many jobs the next claim may take at most (0: no limit)."""
        if self.options.once:
            return 1
        return max(1, self.options.max_jobs - self.processed) if self.options.max_jobs > 0 else 0

    def _settle_claims(self) -> None:
        """Hand back claimed, unstarted jobs and delete finished ones, if the database lets us."""
        try:
            returned = self.claims.hand_back()
            self.claims.flush()
        except DatabaseError as exc:
            self.log.event(logging.WARNING, "claims-not-settled", error=str(exc),
                           note="the jobs come back after retry_after")
            return
        if returned:
            self.log.event(logging.INFO, "handed-back", jobs=returned)

    # -- one job --------------------------------------------------------------------------

    def _process(self, job: Reserved) -> None:
        # A job that succeeded or failed stays held until its batch is written (see Claims).
        if not self._process_one(job) and not self.claims.holds_failure(job):
            self.lease.let_go([job])
        self.crash_marker.set(job.id, job.attempts, crash_marker.FINISHED)

    def _process_one(self, job: Reserved) -> bool:
        """Run one claimed job and record its outcome; True when it succeeded (ack pending)."""
        outcomes = self.outcomes
        if job.attempts >= self.storage.attempts_limit:  # the claim could count no further attempt
            outcomes.fail(job, MaxAttemptsExceeded(
                f"the job reached the limit of the jobs table's attempts column ({self.storage.attempts_limit})"),
                payload.name_of(job.payload))
            return False
        try:
            running = self._prepare(job)
        except JobFailure as exc:
            outcomes.fail(job, exc, payload.name_of(job.payload))
            return False
        exhausted = policy.exhausted_before_run(running.policy, job.attempts, int(self.clock()))
        if exhausted is not None:
            outcomes.fail(job, MaxAttemptsExceeded(exhausted), running.spec.name)
            return False
        self.crash_marker.set(job.id, job.attempts, crash_marker.RUNNING)  # if the worker dies now, this attempt counts
        self.log.job(logging.INFO, "processing", running)
        try:
            self._execute(running)
        except Release as release:
            outcomes.retry(running, release.delay, release.reason or "released by the job", exception=False)
        except Fail as exc:
            outcomes.fail(job, exc, running.spec.name, why="the job failed itself", started=running.started)
        except JobTimeout as exc:
            outcomes.after_timeout(running, exc)
        except ForcedStop:
            outcomes.release_now(running)
            raise
        except BaseException as exc:  # noqa: BLE001 - a job's SystemExit or KeyboardInterrupt fails the job, not the worker
            outcomes.after_exception(running, exc)
        else:
            # Success: the job is deleted with the next batch of acknowledgements (see Claims).
            elapsed = time.monotonic() - running.started
            self._acknowledge(job)
            self.stats.record(running.spec.name, "done", elapsed)
            self.history.record(job.queue, running.spec.name, "done", elapsed, self.clock() - elapsed, job.available_at)
            self.log.job(logging.INFO, "done", running, duration_ms=f"{elapsed * 1000:.1f}")
            return True
        return False

    def _acknowledge(self, job: Reserved) -> None:
        try:
            self.claims.done(job)
        except DatabaseUnavailable as exc:  # the acks stay queued; the loop retries them
            self._database_down(exc, sleep=False)

    def _prepare(self, job: Reserved) -> Running:
        envelope = payload.parse(job.payload)
        if envelope.is_php:
            raise UnknownJob(
                f"{envelope.display_name} is a Laravel (PHP) job; ictq workers do not run PHP jobs "
                "(run it with php artisan queue:work on a queue ictq does not serve)"
            )
        spec = jobs.get(envelope.job)
        if not isinstance(envelope.data, dict):
            raise InvalidPayload(f"payload field 'data' must be a JSON object, got {type(envelope.data).__name__}")
        try:
            jobs.check_arguments(spec, envelope.data)
        except Exception as exc:  # noqa: BLE001 - any mismatch is a bad payload
            raise InvalidPayload(str(exc)) from None
        return Running(job, envelope, spec, self._policy(envelope, spec), self.settings)

    def _policy(self, envelope: payload.Envelope, spec: jobs.JobSpec) -> policy.Policy:
        """:func:`policy.resolve`, remembered: the jobs of one dispatch share their policy."""
        key = (spec, envelope.max_tries, envelope.max_exceptions, envelope.backoff, envelope.timeout,
               envelope.retry_until, envelope.fail_on_timeout)
        found = self._policies.get(key)
        if found is None:
            if len(self._policies) >= 1024:  # retryUntil differs per dispatch: keep it bounded
                self._policies.clear()
            opts = self.options
            found = self._policies[key] = policy.resolve(envelope, spec, opts.tries, opts.backoff, opts.timeout)
        return found

    def _execute(self, running: Running) -> None:
        """Run the handler under the lease's hard deadline, the time limit and the job context.

        (Plain arm/disarm pairs rather than context managers: this runs once per job.)"""
        limit = running.policy.timeout
        self._running = running
        if limit > 0:
            grace = min(10.0, max(1.0, limit / 2))
            self.lease.arm(time.monotonic() + limit + grace, running)
        try:
            self.time_limit.arm(limit)
            try:
                token = jobs.enter(running.context)
                try:
                    self._in_handler = True
                    running.spec.handler(**running.envelope.data)
                finally:
                    self._in_handler = False
                    jobs.leave(token)
            finally:
                self.time_limit.disarm()
        finally:
            if limit > 0:
                self.lease.disarm()
            self._running = None

    # -- called from the background thread --------------------------------------------------

    def _on_deadline(self, running: Running) -> None:
        """The job outlived its hard deadline and could not be interrupted: record it and exit."""
        self._deadline_outcomes.stuck(running, self._forced, self.claims.waiting(), self.claims.finished(),
                                      self.claims.failing())
        self.log.event(logging.ERROR, "worker-exiting", reason="job could not be interrupted", pid=os.getpid())
        logging.shutdown()
        os._exit(EXIT_ERROR)

    def _activity(self) -> Activity:
        """What the next heartbeat reports."""
        running = self._running
        if running is None:
            return Activity(None, None, self.processed, self.outcomes.failed, self.lease.held())
        job = running.job
        held = [other for other in self.lease.held() if other.id != job.id]
        return Activity(job, running.spec.name, self.processed, self.outcomes.failed, held)

    # -- database outages ---------------------------------------------------------------

    def _database_down(self, exc: DatabaseUnavailable, sleep: bool = True) -> None:
        """One log line per outage; then capped exponential backoff between attempts."""
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            self._outage_delay = 0.5
            self.log.event(logging.ERROR, "database-unavailable", error=str(exc),
                           retry=f"backoff up to {OUTAGE_BACKOFF_MAX:.0f}s")
        if sleep:
            self._sleep(self._outage_delay)
            self._outage_delay = min(OUTAGE_BACKOFF_MAX, self._outage_delay * 2)

    def _database_down_now(self, exc: DatabaseUnavailable) -> None:
        """An outcome write met the outage: report it, no sleep (the write is kept for later)."""
        self._database_down(exc, sleep=False)

    def _database_up(self) -> None:
        if self._outage_since is not None:
            seconds = time.monotonic() - self._outage_since
            self._outage_since = None
            # The server it reached: after a failover (several DB_HOST), the new primary.
            server = self.storage.server()
            self.log.event(logging.INFO, "database-restored", after=f"{seconds:.1f}s",
                           **({"server": server} if server else {}))

    # -- signals, sleeping, environment -------------------------------------------------

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in STOP_SIGNALS:
            self._previous_handlers[signum] = signal.signal(signum, self._on_stop_signal)
        self._previous_handlers[signal.SIGUSR2] = signal.signal(signal.SIGUSR2, self._on_pause)
        self._previous_handlers[signal.SIGCONT] = signal.signal(signal.SIGCONT, self._on_resume)

    def _restore_signal_handlers(self) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers.clear()

    def _on_stop_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._quit and self._in_handler:
            self._forced = True
            self.lease.extend(time.monotonic() + FORCED_STOP_GRACE)
            raise ForcedStop()
        self._quit = True
        self._waker.set()

    def _on_pause(self, signum: int, frame: FrameType | None) -> None:
        self._paused = True
        self.log.event(logging.INFO, "worker-paused")

    def _on_resume(self, signum: int, frame: FrameType | None) -> None:
        if self._paused:
            self._paused = False
            self.log.event(logging.INFO, "worker-resumed")
        self._waker.set()

    def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once on a signal."""
        self._waker.wait(seconds)

    def _idle(self) -> None:
        """Wait up to --sleep for new work: NOTIFY on PostgreSQL, a fast cheap probe elsewhere."""
        try:
            self.storage.wait_for_work(self.options.sleep, self._waker, self.options.queues,
                                       lambda: int(self.clock()), self.settings.retry_after)
        except DatabaseUnavailable as exc:
            self._database_down(exc)

    def _laravel_cache_trouble(self, message: str | None) -> None:
        """Laravel's cache store (its restart and pause signals) became unreadable, or readable again."""
        if message is None:
            self.log.event(logging.INFO, "laravel-signals-readable")
        else:
            self.log.event(logging.WARNING, "laravel-signals-unreadable", error=message)

    def _app_is_down(self) -> bool:
        """Laravel's maintenance mode (``php artisan down``) holds workers unless --force."""
        return not self.options.force and self._down_flag()


def _php_workers_message(pids: list[int]) -> str:
    shown = ", ".join(str(pid) for pid in pids[:5]) + (", ..." if len(pids) > 5 else "")
    return (f"PHP queue workers use this SQLite database too (php artisan queue:work, pid {shown}): beside "
            "ictq workers their transactions fail with 'database is locked' and leave jobs reserved; run one "
            "kind of worker on SQLite, or move the queue to PostgreSQL or MariaDB")


def resident_mb() -> float:
    """This process's resident memory now, in MB (Linux: one read of /proc/self/statm)."""
    global _statm
    try:
        if _statm is None:
            _statm = os.open("/proc/self/statm", os.O_RDONLY)
        return int(os.pread(_statm, 64, 0).split()[1]) * _PAGE / 1_048_576
    except (OSError, ValueError, IndexError):  # not Linux: the peak instead
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1_048_576 if sys.platform == "darwin" else 1024)


_statm: int | None = None
_PAGE = os.sysconf("SC_PAGE_SIZE")
