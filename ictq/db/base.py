"""The storage interface: the only place that talks to a database.

One subclass per dialect supplies a connection and its SQL file; everything else is shared.
Driver errors are translated here, at the boundary, by the dialect's classifiers: what no
retry can fix (a wrong password, an unknown database, a file that cannot be opened or written)
becomes :class:`DatabaseRefused` (:class:`DatabaseMisconfigured` for the settings' own faults,
exit 2); a transient trouble (a lost or refused connection, a server restarting, too many
connections, a lock wait or deadlock lost) becomes :class:`DatabaseUnavailable` (the connection
is dropped and reopened on the next call); any other driver error becomes
:class:`DatabaseError`. Nothing above this module imports a driver.
"""

from __future__ import annotations

import abc
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from typing import Any, ClassVar, NamedTuple, Protocol

from ictq.config import DatabaseSettings
from ictq.errors import DatabaseError, DatabaseRefused, DatabaseUnavailable, FailureUuidTaken, SchemaError, one_line
from ictq.payload import clean, uuid_from_text
from ictq.sql import load_queries, statements

IDLE_POLL_MIN = 0.005
IDLE_POLL_MAX = 0.07
AVAILABLE_AT_MAX = 2**31 - 1
"""The latest ``available_at`` written (PostgreSQL's ``integer``, 2038-01-19): later ones are clamped."""


def writable(text: str) -> str:
    """Text every database stores as given: lone surrogates escaped (``\\udcff``) and NUL,
    which PostgreSQL refuses in text, written as ``\\u0000``. The one rule for text ictq writes
    that may come from a payload or a job (uuid, names, exception messages)."""
    if text.isascii():
        return text.replace("\x00", "\\u0000") if "\x00" in text else text
    text = clean(text)
    return text.replace("\x00", "\\u0000") if "\x00" in text else text


def fitted(text: str, length: int) -> str:
    """:func:`writable` text cut to a column of ``length`` characters; a cut one ends with ``~``
    and 8 hex digits of its hash, so that two long texts with the same beginning stay apart."""
    text = writable(text)
    if len(text) <= length:
        return text
    digest = hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()[:8]
    return f"{text[:length - 9]}~{digest}"


def available_at(moment: int) -> int:
    """``moment`` clamped into what every dialect's ``available_at`` column holds."""
    return AVAILABLE_AT_MAX if moment > AVAILABLE_AT_MAX else 0 if moment < 0 else moment


class WakeSignal(Protocol):
    """What :meth:`Storage.wait_for_work` watches beside the database: set (from a signal
    handler, another thread) to end an idle wait at once. The worker's self-pipe fits it."""

    @property
    def fd(self) -> int:
        """A file descriptor that turns readable when the signal is set."""

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when the signal was set (and is now consumed)."""

    def drain(self) -> bool:
        """Consume a set signal without waiting; True when there was one."""


class NewJob(NamedTuple):
    """A row to insert into the jobs table. (A named tuple: a bulk dispatch makes one per job,
    and a frozen dataclass costs several times as much to build.)"""

    queue: str
    payload: str
    available_at: int
    created_at: int


class Reserved(NamedTuple):
    """A claimed row. ``(id, attempts)`` identifies this reservation. (A named tuple: claims
    make hundreds at a time.) ``available_at``: when the job became claimable (unix seconds; 0
    where unknown), for its wait time in the history (:mod:`ictq.worker.history`)."""

    id: int
    queue: str
    payload: str
    attempts: int
    available_at: int = 0


class Failure(NamedTuple):
    """A claimed job to move to failed_jobs (its ``payload`` is what the record keeps), with
    the record's connection name, exception text and moment."""

    job: Reserved
    connection: str
    exception: str
    failed_at: datetime
    uuid: str | None = None  # the payload's uuid, when the caller has read it (else it is read here)


class Storage(abc.ABC):
    """Queue storage for one dialect. Not thread-safe: one instance per thread."""

    dialect: ClassVar[str]
    begin_sql: ClassVar[str] = "BEGIN"
    claim_is_one_statement: ClassVar[bool] = False  # atomic on its own, without BEGIN ... COMMIT
    # The largest ``attempts`` value the dialect's column holds (Laravel's own migration makes it
    # ``smallint`` on PostgreSQL, ``tinyint unsigned`` on MySQL/MariaDB). A claim never counts an
    # attempt past it, and a worker fails a job claimed at it (see ``claim``).
    attempts_limit: ClassVar[int] = 65535
    failed_rows_as_arrays: ClassVar[bool] = False  # insert_failed_many takes a column array each, not rows
    # insert_failed_many skips a row whose uuid failed_jobs holds and returns the uuids it wrote
    # (the uuid check folded into the insert; else failed_uuids_taken runs first).
    failed_insert_returns_uuids: ClassVar[bool] = False
    # Else the insert may be tried first, the check skipped: a duplicate key refuses it
    # (:meth:`_is_duplicate_key`), and the batch is moved again, the check first.
    failed_insert_before_check: ClassVar[bool] = False

    def __init__(self, db: DatabaseSettings, jobs_table: str, failed_table: str, worker: bool = False,
                 cache_table: str = "cache") -> None:
        self.db = db
        self.cache_table = cache_table  # the Laravel app's cache table (its database cache store)
        self.worker = worker  # a worker's connection (its own writes may commit asynchronously)
        self.jobs_table = jobs_table
        self.failed_table = failed_table
        self._conn: Any = None
        self._sql: dict[str, str] | None = None
        self.application_name = "ictq"  # how the server lists the connection (PostgreSQL)

    # -- connection ---------------------------------------------------------------------

    @abc.abstractmethod
    def _connect(self) -> Any:
        """Open a driver connection in autocommit mode."""

    @abc.abstractmethod
    def _is_connection_error(self, exc: BaseException) -> bool:
        """Whether a driver error is transient: the server or the connection is gone or busy
        (asked after :meth:`_permanent_error`)."""

    @abc.abstractmethod
    def _permanent_error(self, exc: BaseException) -> type[DatabaseRefused] | None:
        """The error to raise when a driver error says the database refuses ictq for good
        (:class:`DatabaseMisconfigured` for wrong settings); None when it does not."""

    @abc.abstractmethod
    def _is_missing_table(self, exc: BaseException) -> bool:
        """Whether a driver error says a table does not exist."""

    @abc.abstractmethod
    def _driver_error(self) -> type[BaseException]:
        """The driver's base exception class."""

    def _placeholders(self) -> dict[str, str]:
        return {"jobs": self.jobs_table, "failed_jobs": self.failed_table, "cache": self.cache_table}

    def describe(self) -> str:
        """Where this storage points, without the password."""
        if self.dialect == "sqlite":
            return f"sqlite:{self.db.database}"
        return f"{self.db.connection}://{self.db.username}@{self.db.address}/{self.db.database}"

    def server(self) -> str:
        """The server the open connection reached (``host:port``; one of several hosts), or ""."""
        return ""

    def _begin(self) -> str:
        """The statement that opens a transaction."""
        return self.begin_sql

    @property
    def connection(self) -> Any:
        if self._conn is None:
            with self._translated():
                self._conn = self._connect()
                self._sql = load_queries(self.dialect, **self._placeholders())
        return self._conn

    @property
    def sql(self) -> dict[str, str]:
        self.connection  # noqa: B018 - opens the connection and loads the statements
        assert self._sql is not None
        return self._sql

    def close(self) -> None:
        """Close the connection; the next call opens a new one."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with suppress(Exception):  # a broken connection may fail to close; it is gone anyway
                conn.close()

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except UnicodeEncodeError as exc:
            raise DatabaseError(f"{self.describe()}: text that is not valid Unicode: {exc.reason}") from None
        except self._driver_error() as exc:
            message = f"{self.describe()}: {one_line(exc)}"
            if self._is_missing_table(exc):
                raise SchemaError(f"{message} (run: ictq migrate)") from None
            permanent = self._permanent_error(exc)
            if permanent is not None:
                self.close()
                raise permanent(message) from None
            if self._is_connection_error(exc):
                self.close()
                raise DatabaseUnavailable(message) from None
            raise DatabaseError(message) from None

    # -- statement helpers --------------------------------------------------------------

    def _execute(self, name: str, params: Any = None) -> Any:
        cursor = self.connection.cursor()
        if params is None:
            cursor.execute(self.sql[name])
        else:
            cursor.execute(self.sql[name], params)
        return cursor

    def run(self, name: str, params: Any = None) -> int:
        """Execute a named statement; return the affected row count."""
        with self._translated():
            return int(self._execute(name, params).rowcount)

    def run_many(self, name: str, rows: Sequence[Any]) -> None:
        """Execute a named statement once per parameter set (a multi-row insert where the driver
        makes one)."""
        if rows:
            with self._translated():
                self.connection.cursor().executemany(self.sql[name], rows)

    def fetch(self, name: str, params: Any = None) -> list[tuple[Any, ...]]:
        """Execute a named query; return all rows."""
        with self._translated():
            return list(self._execute(name, params).fetchall())

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run the block in one transaction; roll back on any error."""
        with self._translated():
            conn = self.connection
            conn.cursor().execute(self._begin())
            try:
                yield
            except BaseException:
                try:
                    conn.cursor().execute("ROLLBACK")
                except Exception:  # noqa: BLE001 - the original error matters, not the rollback's
                    self.close()
                raise
            conn.cursor().execute("COMMIT")

    # -- the queue operations -------------------------------------------------------------

    def migrate(self) -> None:
        """Create the tables if missing; adopt (and check) tables a Laravel app made.

        Serialised: several ``ictq migrate`` at once (a deploy to many hosts) run one after the
        other, under the dialect's ``migrate_lock`` (an advisory lock on PostgreSQL, ``GET_LOCK``
        on MySQL, ``BEGIN IMMEDIATE`` on SQLite), so none fails on a table another is creating.
        """
        with self.transaction():
            (locked,) = self.fetch("migrate_lock")[0]
            if locked != 1:
                raise DatabaseUnavailable(f"{self.describe()}: another ictq migrate holds the migration lock")
            try:
                with self._translated():
                    for statement in statements(self.sql["schema"]):
                        self.connection.cursor().execute(statement)
            finally:
                with suppress(DatabaseError):  # a failed PostgreSQL transaction ends with it anyway
                    self.fetch("migrate_unlock")
        for check, table in (("check_jobs", self.jobs_table), ("check_failed_jobs", self.failed_table)):
            try:
                self.fetch(check)
            except DatabaseUnavailable:
                raise
            except DatabaseError as exc:
                raise SchemaError(f"table {table} exists but lacks Laravel's columns ({exc})") from None

    def push(self, job: NewJob) -> int:
        """Insert one job; return its id."""
        with self._translated():
            cursor = self._execute("push", _row(job))
            return self._inserted_id(cursor)

    def _inserted_id(self, cursor: Any) -> int:
        return int(cursor.fetchone()[0])

    def push_many(self, jobs: Iterable[NewJob]) -> int:
        """Insert many jobs in one transaction; return how many."""
        rows = [_row(job) for job in jobs]
        if not rows:
            return 0
        with self.transaction():
            self.connection.cursor().executemany(self.sql["push_many"], rows)
        return len(rows)

    def push_payloads(self, queue: str, available_at: int, created_at: int, chunks: Iterable[Sequence[str]]) -> int:
        """Insert many jobs of one queue and moment, in one transaction, given their payloads a
        chunk at a time (a bulk dispatch); return how many."""
        return self.push_many(NewJob(queue, text, available_at, created_at) for chunk in chunks for text in chunk)

    def param_time(self, moment: datetime) -> Any:
        """A UTC moment as this driver wants it for a timestamp column."""
        return moment.astimezone(timezone.utc).replace(tzinfo=None, microsecond=0)

    def param_ids(self, ids: Sequence[int]) -> Any:
        """A list of ids for an ``IN`` / ``ANY`` parameter."""
        return list(ids)

    def peek(self, queues: Sequence[str], now: int, retry_after: int) -> bool:
        """Whether any job of ``queues`` could be claimed now (no locks taken)."""
        params = {"queues": self.param_queues(queues), "now": now, "expired": now - retry_after}
        return bool(self.fetch("peek", params))

    def param_queues(self, queues: Sequence[str]) -> Any:
        return self.param_texts(queues)

    def param_texts(self, texts: Sequence[str]) -> Any:
        """A list of texts for an ``IN`` / ``ANY`` parameter."""
        return list(texts)

    def wait_for_work(self, seconds: float, waker: WakeSignal, queues: Sequence[str], now: Callable[[], int],
                      retry_after: int) -> None:
        """Idle until a job may be claimable, ``waker`` is set, or ``seconds`` pass.

        This default polls with :meth:`peek`, quickly at first and then every
        :data:`IDLE_POLL_MAX` seconds at most (a cheap indexed read); PostgreSQL listens instead.
        """
        deadline = time.monotonic() + seconds
        interval = IDLE_POLL_MIN
        while (left := deadline - time.monotonic()) > 0:
            if waker.wait(min(interval, left)) or self.peek(queues, now(), retry_after):
                return
            interval = min(interval * 2, IDLE_POLL_MAX)

    def claim(self, queue: str, now: int, retry_after: int, limit: int,
              done: Sequence[Reserved] = (), holder: str | None = None) -> list[Reserved]:
        """Reserve up to ``limit`` claimable jobs of ``queue``, oldest first, atomically.

        ``done``: finished jobs to delete in the same transaction (one commit for both).
        ``holder``: the claiming worker's heartbeat id; the claimed jobs are recorded there in
        the same transaction, so a dead worker's whole batch can be handed back at once.

        A job's ``attempts`` never goes past :attr:`attempts_limit` (the column would overflow and
        every claim of its queue fail): a job claimed at the limit is to be failed by the caller.
        """
        params = {"queue": queue, "now": now, "expired": now - retry_after, "limit": limit,
                  "max_attempts": self.attempts_limit}
        if not done and holder is None and self.claim_is_one_statement:
            with self._translated():
                return sorted(self._claim_rows(params), key=lambda job: job.id)
        with self.transaction():
            if done:
                self._fenced_statements("delete_many", _by_attempts(done), {})
            with self._translated():
                claimed = sorted(self._claim_rows(params), key=lambda job: job.id)
                if claimed and holder is not None:
                    held = json.dumps([[job.id, job.attempts] for job in claimed])
                    self._execute("worker_hold", {"id": holder, "held": held})
            return claimed

    def release_many(self, jobs: Sequence[Reserved]) -> int:
        """Put reserved jobs back as they are (their attempt counts), fenced."""
        return self._fenced("release_many", jobs, {})

    @abc.abstractmethod
    def _claim_rows(self, params: dict[str, Any]) -> list[Reserved]:
        """The dialect's claim statements, inside the caller's transaction."""

    def delete(self, job: Reserved) -> bool:
        """Delete a finished job; False when the reservation was lost."""
        return self.run("delete", {"id": job.id, "attempts": job.attempts}) == 1

    def release(self, job: Reserved, available_at: int, payload: str) -> bool:
        """Put a job back, to become available at ``available_at`` (clamped into the column, see
        :data:`AVAILABLE_AT_MAX`)."""
        params = {"id": job.id, "attempts": job.attempts, "available_at": _at(available_at),
                  "payload": writable(payload)}
        return self.run("release", params) == 1

    def delete_many(self, jobs: Sequence[Reserved]) -> int:
        """Delete finished jobs (one statement per attempts value); return how many were deleted."""
        return self._fenced("delete_many", jobs, {})

    def touch_many(self, jobs: Sequence[Reserved], now: int) -> int:
        """Refresh many reservations; return how many were still held."""
        return self._fenced("touch_many", jobs, {"now": now})

    def unclaim_many(self, jobs: Sequence[Reserved]) -> int:
        """Hand back claimed jobs that never started, their attempt taken back."""
        return self._fenced("unclaim_many", jobs, {})

    def _fenced(self, name: str, jobs: Sequence[Reserved], params: dict[str, Any]) -> int:
        groups = _by_attempts(jobs)
        if len(groups) <= 1:
            return self._fenced_statements(name, groups, params)
        with self.transaction():
            return self._fenced_statements(name, groups, params)

    def _fenced_statements(self, name: str, groups: dict[int, list[int]], params: dict[str, Any]) -> int:
        """One statement per attempts value, in the caller's transaction (if any)."""
        with self._translated():
            return sum(int(self._execute(name, {**params, "attempts": attempts, "ids": self.param_ids(ids)}).rowcount)
                       for attempts, ids in groups.items())

    def touch(self, job: Reserved, now: int) -> bool:
        """Refresh a reservation (the lease); False when it was lost."""
        return self.run("touch", {"id": job.id, "attempts": job.attempts, "now": now}) == 1

    def fail(self, job: Reserved, connection: str, exception: str, payload: str, failed_at: datetime) -> bool:
        """Move one job to failed_jobs (:meth:`fail_many`); False when the reservation was lost."""
        return bool(self.fail_many([Failure(job._replace(payload=payload), connection, exception, failed_at)]))

    def fail_many(self, failures: Sequence[Failure]) -> set[tuple[int, int]]:
        """Move jobs to failed_jobs in one transaction; return the ``(id, attempts)`` of those
        moved. The others' reservations were lost (another worker claimed the job since): their
        rows are left alone and get no failure record.

        Each job's row is deleted fenced by ``(id, attempts)``, and its failure record written
        only when that delete took it, in the same transaction: a flush retried after an error
        that left its commit unknown writes no record twice. Every text is :func:`writable`. A
        failure record is never replaced: when ``failed_jobs`` already holds the job's uuid (a
        job failed twice, or two jobs share a uuid), this one is recorded under a fresh uuid,
        its exception text saying which uuid the job had. (Where the records are inserted before
        their uuids are looked up, :attr:`failed_insert_before_check`, a batch whose insert a
        taken uuid refuses is rolled back and moved again, the uuids looked up first.)
        """
        if not failures:
            return set()
        if self.failed_insert_before_check:
            try:
                return self._move_failures(failures, check=False)
            except FailureUuidTaken:
                pass  # rolled back: moved again, the taken uuids looked up first
        return self._move_failures(failures, check=True)

    def _move_failures(self, failures: Sequence[Failure], check: bool) -> set[tuple[int, int]]:
        """:meth:`fail_many`'s transaction; unless ``check``, the records are inserted without
        looking up their uuids first (raises FailureUuidTaken, rolled back, when one is taken)."""
        with self.transaction():
            moved = self._delete_held(failures)
            rows = [self._failed_row(failure) for failure in failures
                    if (failure.job.id, failure.job.attempts) in moved]
            if rows and (check or len({row["uuid"] for row in rows}) < len(rows)):
                self._insert_failed(rows)
            elif rows:
                self._insert_rows(rows, refuse_taken=True)
        return moved

    def _delete_held(self, failures: Sequence[Failure]) -> set[tuple[int, int]]:
        """Delete the jobs' rows still held at their attempts; return the ``(id, attempts)`` deleted."""
        moved: set[tuple[int, int]] = set()
        for attempts, ids in _by_attempts([failure.job for failure in failures]).items():
            params = {"attempts": attempts, "ids": self.param_ids(ids)}
            with self._translated():
                moved.update((int(job_id), attempts) for job_id in self._deleted_ids(params))
        return moved

    def _deleted_ids(self, params: dict[str, Any]) -> list[Any]:
        """The dialect's ``fail_delete_many``: the ids it deleted."""
        return [job_id for (job_id,) in self._execute("fail_delete_many", params).fetchall()]

    def _failed_row(self, failure: Failure) -> dict[str, Any]:
        job = failure.job
        return {
            "uuid": fitted(failure.uuid or _uuid_of(job.payload), 255),
            "connection": writable(failure.connection),
            "queue": writable(job.queue),
            "payload": writable(job.payload),
            "exception": writable(failure.exception),
            "failed_at": self.param_time(failure.failed_at),
        }

    def _insert_failed(self, rows: list[dict[str, Any]]) -> None:
        """Write failure records, in the caller's transaction, each uuid ``failed_jobs`` (or an
        earlier row) holds recorded under a fresh one (:meth:`_unique_uuids`).

        Where the insert skips the uuids ``failed_jobs`` holds (:attr:`failed_insert_returns_uuids`),
        the batch is written at once, each uuid's first row only; the rest (a uuid taken, or met
        earlier in the batch: rare) is written next as elsewhere, checked first by
        :meth:`_unique_uuids`."""
        if self.failed_insert_returns_uuids:
            first: list[dict[str, Any]] = []
            again: list[dict[str, Any]] = []
            batch_uuids: set[str] = set()
            for row in rows:
                (again if row["uuid"] in batch_uuids else first).append(row)
                batch_uuids.add(row["uuid"])
            written = self._insert_rows(first)
            again_ids = {id(row) for row in again}
            rows = [row for row in rows if id(row) in again_ids or row["uuid"] not in written]
            if not rows:
                return
        rows = self._unique_uuids(rows)
        written = self._insert_rows(rows)
        if self.failed_insert_returns_uuids and len(written) < len(rows):  # a uuid taken since the check
            raise DatabaseError(f"{self.describe()}: a failure record was not written: a unique key of "
                                f"{self.failed_table} already holds it")

    def _unique_uuids(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows, each whose uuid ``failed_jobs`` (or an earlier row) already holds given a fresh one."""
        uuids = [row["uuid"] for row in rows]
        with self._translated():
            seen = {str(found) for (found,) in self._execute("failed_uuids_taken",
                                                             {"uuids": self.param_texts(uuids)}).fetchall()}
        for row in rows:
            job_uuid = row["uuid"]
            if job_uuid in seen:
                row["uuid"] = str(uuid.uuid4())
                first, _, rest = row["exception"].partition("\n")
                row["exception"] = (f"{first}\n(The job's uuid {job_uuid} is already in {self.failed_table}: "
                                    f"this failure is recorded under a new uuid.)\n{rest}").rstrip("\n")
            seen.add(row["uuid"])
        return rows

    def _insert_rows(self, rows: list[dict[str, Any]], refuse_taken: bool = False) -> set[str]:
        """Run ``insert_failed_many``, in the caller's transaction: the one place a failed_jobs
        row is written (every failure, one or a batch, comes through here). Return the uuids
        written when it says (:attr:`failed_insert_returns_uuids`), else an empty set.
        ``refuse_taken``: a duplicate key raises :class:`FailureUuidTaken`."""
        if not rows:
            return set()
        with self._translated():
            try:
                if self.failed_rows_as_arrays:
                    cursor = self._execute("insert_failed_many", {column: [row[column] for row in rows]
                                                                  for column in rows[0]})
                else:
                    cursor = self.connection.cursor()
                    cursor.executemany(self.sql["insert_failed_many"], rows)
            except self._driver_error() as exc:
                if refuse_taken and self._is_duplicate_key(exc):
                    raise FailureUuidTaken from None
                raise
            if self.failed_insert_returns_uuids:
                return {str(found) for (found,) in cursor.fetchall()}
        return set()

    def _is_duplicate_key(self, exc: BaseException) -> bool:
        """Whether the driver's error is a unique key's refusal (a failure record's uuid taken)."""
        return False


def _by_attempts(jobs: Sequence[Reserved]) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = {}
    for job in jobs:
        groups.setdefault(job.attempts, []).append(job.id)
    return groups


def _row(job: NewJob) -> dict[str, Any]:
    return {
        "queue": job.queue,
        "payload": job.payload,
        "attempts": 0,
        "reserved_at": None,
        "available_at": _at(job.available_at),
        "created_at": job.created_at,
    }


_at = available_at


def _uuid_of(payload: str) -> str:
    return uuid_from_text(payload) or str(uuid.uuid4())


__all__ = ["AVAILABLE_AT_MAX", "DatabaseError", "DatabaseUnavailable", "Failure", "NewJob", "Reserved", "Storage",
           "WakeSignal"]
