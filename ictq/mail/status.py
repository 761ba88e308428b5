"""Where a dispatched notification is: waiting, sent, or failed (for ``ictq test-email --wait``)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ictq.client import Dispatched
from ictq.db import Storage
from ictq.db.failed_jobs import FailedJobsRepository
from ictq.db.jobs import JobsRepository
from ictq.display import printable, text_of
from ictq.errors import first_line
from ictq.mail.ledger import SentLedger


class State(enum.Enum):
    WAITING = "waiting"
    SENT = "sent"
    FAILED = "failed"
    GONE = "gone"  # neither queued, sent nor failed: deleted by someone else


@dataclass(frozen=True)
class Status:
    state: State
    detail: str = ""


def status_of(storage: Storage, ledger: SentLedger, job: Dispatched) -> Status:
    """The state of ``job``, read from the ledger, failed_jobs and the jobs table."""
    finished = _finished(storage, ledger, job)
    if finished is not None:
        return finished
    queued = JobsRepository(storage).attempts(job.id) if job.id is not None else None
    if queued is not None:
        doing = "being worked on" if queued.reserved else "queued"
        return Status(State.WAITING, f"{doing}, {queued.attempts} attempt(s) so far")
    # The row is gone: the worker may have finished between the reads above, so read again.
    return _finished(storage, ledger, job) or Status(
        State.GONE, "the job left the queue without a record of sending or failing")


def _finished(storage: Storage, ledger: SentLedger, job: Dispatched) -> Status | None:
    if ledger.sent_job(job.uuid):
        return Status(State.SENT)
    exception = FailedJobsRepository(storage).exception_of(job.uuid)
    if exception is not None:
        return Status(State.FAILED, printable(_first_reason(text_of(exception)), 1000))
    return None


def _first_reason(exception: str) -> str:
    """The first line of a failed_jobs.exception, without the exception class."""
    first = first_line(exception)
    return first.split(": ", 1)[1] if ": " in first else first
