"""ictq: a Laravel-compatible database job queue and worker.

Define a job, dispatch it, let ``ictq work`` run it::

    import ictq

    @ictq.job("mail.welcome", queue="emails", tries=3, backoff=[10, 60])
    def welcome(user_id: int) -> None:
        ...

    ictq.dispatch("mail.welcome", {"user_id": 7})   # or: welcome.dispatch(user_id=7)
"""

from ictq.client import Client, configure, dispatch, dispatch_many
from ictq.errors import (
    ConfigError,
    DatabaseError,
    DatabaseMisconfigured,
    DatabaseRefused,
    DatabaseUnavailable,
    DispatchError,
    Fail,
    IctqError,
    InvalidPayload,
    JobFailure,
    JobTimeout,
    MaxAttemptsExceeded,
    Release,
    UnknownJob,
)
from ictq.jobs import Dispatched, JobContext, JobSpec, current_job, job

__version__ = "0.1.0"

__all__ = [
    "Client",
    "ConfigError",
    "DatabaseError",
    "DatabaseMisconfigured",
    "DatabaseRefused",
    "DatabaseUnavailable",
    "DispatchError",
    "Dispatched",
    "Fail",
    "IctqError",
    "InvalidPayload",
    "JobContext",
    "JobFailure",
    "JobSpec",
    "JobTimeout",
    "MaxAttemptsExceeded",
    "Release",
    "UnknownJob",
    "__version__",
    "configure",
    "current_job",
    "dispatch",
    "dispatch_many",
    "job",
]
