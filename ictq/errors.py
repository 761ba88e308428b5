"""The one exception tree of ictq.

Every error ictq raises on purpose is an :class:`IctqError`. The class docstring is the
default message, so ``raise UnknownJob()`` still says something useful. The CLI turns any
``IctqError`` into one line on stderr and a non-zero exit code; the worker loop catches only
:class:`DatabaseUnavailable` (the connection branch) and retries it with backoff.
"""

from __future__ import annotations


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


class SchemaError(DatabaseError):
    """The queue tables do not have the shape ictq expects."""


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
