"""The one exception tree of ictq.

Every error ictq raises on purpose is an :class:`IctqError`. The class docstring is the
default message, so ``raise UnknownJob()`` still says something useful. The CLI turns any
``IctqError`` into one line on stderr and a non-zero exit code; the worker loop catches only
:class:`DatabaseUnavailable` (the connection branch) and retries it with backoff. A
:class:`DatabaseRefused` (the database will not take ictq, and waiting does not change that)
stops a worker with one line, at start-up or later.

Two kinds of exception are raised *by job handlers* to steer the worker, not by ictq on failure:
:class:`Release` and :class:`Fail` (both under :class:`JobControl`). One class stands outside the
tree on purpose: :class:`ForcedStop` derives from ``BaseException`` so that a handler's
``except Exception`` cannot swallow a forced stop.
"""

from __future__ import annotations


def first_line(text: str) -> str:
    """The first non-blank line of ``text`` (an exception record, a reason), stripped.

    The one rule for "the headline of an exception" wherever a record is shown in one line:
    logs, ``ictq failed``, mail status, triage.
    """
    for line in text.splitlines():
        if stripped := line.strip():
            return stripped
    return ""


def one_line(exc: BaseException) -> str:
    """An exception as one line: its message with blanks squeezed, or its class name."""
    return " ".join(str(exc).split()) or type(exc).__name__


class IctqError(Exception):
    """ictq failed."""

    exit_code = 1

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigError(IctqError):
    """The configuration (.env) is invalid."""

    exit_code = 2


class DatabaseError(IctqError):
    """A database statement failed."""


class DatabaseUnavailable(DatabaseError):
    """The database cannot be reached or refused the statement for now; retry later.

    Raised for a refused, lost or timed-out connection, and for statements that lost a deadlock
    or a lock wait. The connection is dropped; the next call opens a new one.
    """


class DatabaseRefused(DatabaseError):
    """The database refuses ictq for good (a file it cannot open or write); retrying does not help.

    Not a :class:`DatabaseUnavailable`: a worker that meets it stops (exit 1) rather than wait.
    """


class DatabaseMisconfigured(DatabaseRefused):
    """The database settings are wrong (wrong user or password, a database that does not exist).

    A configuration error: exit code 2, as for :class:`ConfigError`.
    """

    exit_code = 2


class SchemaError(DatabaseError):
    """The queue tables do not have the shape ictq expects."""


class FailureUuidTaken(DatabaseError):
    """A failure record's uuid is already in failed_jobs (its unique key refused the insert).

    Raised and caught within :meth:`ictq.db.Storage.fail_many`, whose transaction it rolls back:
    the batch is moved again, the uuids looked up first.
    """


class DispatchError(IctqError):
    """A job could not be dispatched."""


class JobFailure(IctqError):
    """A job cannot run; the reason goes to failed_jobs."""


class InvalidPayload(JobFailure):
    """The job payload is not a valid Laravel queue envelope."""


class UnknownJob(JobFailure):
    """The payload names a job that is not registered in this worker."""


class MaxAttemptsExceeded(JobFailure):
    """The job has been attempted too many times."""


class JobTimeout(JobFailure):
    """The job ran longer than its timeout."""


class NotFound(IctqError):
    """No such failed job."""


class GroupNotFound(IctqError):
    """No group of failed jobs has that id."""


class RetryRefused(IctqError):
    """A failed job that ``ictq retry`` will not put back as it is (a ``retryUntil`` deadline it
    cannot renew): it stays in failed_jobs."""


class UserError(IctqError):
    """A dashboard user cannot be added or removed as asked."""


class Refused(IctqError):
    """The dashboard refuses a request: an HTTP ``status`` and a one-line reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class CacheUnreachable(IctqError):
    """The Laravel application's cache store (its queue signals) could not be read or written."""


class MailCheckFailed(IctqError):
    """A test e-mail failed."""


class MailCheckTimeout(MailCheckFailed):
    """A test e-mail was not sent in time."""

    exit_code = 3  # the exit code `ictq test-email --wait` documents for a timeout


class InvalidAddress(IctqError, ValueError):
    """The text is not a single, sendable e-mail address."""


class UnknownSpan(IctqError, ValueError):
    """No history chart has that span (see :data:`ictq.history.SPANS`)."""


class RenderError(IctqError):
    """A notification cannot be rendered (missing template, unknown locale, template error)."""


class JobControl(IctqError):
    """Raised by a job handler to tell the worker what to do with the job (not an error of ictq)."""


class Release(JobControl):
    """Raised by a job to put itself back on the queue without counting an exception.

    ``delay`` is in seconds; None uses the job's backoff. The attempt still counts towards
    ``tries`` (as in Laravel's ``$this->release()``).
    """

    def __init__(self, delay: int | None = None, reason: str = "") -> None:
        super().__init__(reason or "released by the job")
        self.delay = delay
        self.reason = reason


class Fail(JobControl):
    """Raised by a job to fail at once, whatever tries remain (Laravel's ``$this->fail()``).

    The message is the reason stored in ``failed_jobs``.
    """


class ForcedStop(BaseException):
    """A second stop signal, or a job past its hard deadline: unwind the running job now.

    A ``BaseException`` on purpose, outside the :class:`IctqError` tree, so that a handler's
    ``except Exception`` does not swallow it.
    """
