"""The sent-ledger: which messages were handed to the mail server.

A row (keyed by Message-ID, which is derived from the job's uuid) is written right after the
server accepted the message and before the worker deletes the job. A job that runs again
after that (its worker was killed before the delete, or the delete was lost) finds the row
and does not send a second copy. Rows older than :data:`KEEP_SECONDS` are pruned now and then.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from ictq import logs
from ictq.config import Settings
from ictq.db import Storage, open_storage
from ictq.db.mail_ledger import MailLedgerRepository, SentRecord
from ictq.errors import DatabaseError, DatabaseUnavailable
from ictq.pace import Every

KEEP_SECONDS = 30 * 24 * 3600
PRUNE_EVERY = 3600.0
WRITE_TRIES = 4
WRITE_PAUSE = 0.5


class SentLedger:
    """Reads and writes the ledger through its own storage (not the worker's)."""

    def __init__(self, storage: Storage, clock: Callable[[], float] = time.time,
                 logger: logging.Logger | None = None) -> None:
        self.storage = storage
        self.rows = MailLedgerRepository(storage)
        self.clock = clock
        self.logger = logger or logging.getLogger(logs.LOGGER_NAME)
        self._prune = Every(PRUNE_EVERY, clock)

    def check(self) -> None:
        """Raise :class:`DatabaseError` when the ledger table is missing (``ictq migrate`` creates it)."""
        self.rows.check()

    def was_sent(self, message_id: str) -> bool:
        return self.rows.was_sent(message_id)

    def sent_job(self, job_uuid: str) -> bool:
        return self.rows.sent_job(job_uuid)

    def mark_sent(self, record: SentRecord) -> bool:
        """Record a sent message; False (and an error in the log) when the database would not take it.

        Never raises: the message is already with the mail server, and failing the job now
        would only send it again.
        """
        sent_at = int(self.clock())
        for attempt in range(1, WRITE_TRIES + 1):
            try:
                self.rows.mark_sent(record, sent_at)
                break
            except DatabaseUnavailable as exc:
                if attempt == WRITE_TRIES:
                    return self._write_failed(record, exc)
                time.sleep(WRITE_PAUSE * attempt)
            except DatabaseError as exc:
                return self._write_failed(record, exc)
        self._prune_now_and_then()
        return True

    def prune(self, before: int) -> int:
        """Delete rows sent before ``before`` (Unix seconds); return how many."""
        return self.rows.prune(before)

    def _prune_now_and_then(self) -> None:
        if not self._prune.due():
            return
        try:
            self.prune(int(self.clock()) - KEEP_SECONDS)
        except DatabaseError as exc:
            logs.event(self.logger, logging.WARNING, "mail-ledger-prune-failed", error=str(exc))

    def _write_failed(self, record: SentRecord, exc: DatabaseError) -> bool:
        logs.event(self.logger, logging.ERROR, "mail-ledger-write-failed", message_id=record.message_id,
                   error=str(exc), note="the message was sent; a retry of this job would send it again")
        return False


_local = threading.local()


def ledger_for(settings: Settings) -> SentLedger:
    """This thread's ledger for the database of ``settings`` (one connection, kept)."""
    key = (os.getpid(), settings.db)
    current: tuple[object, SentLedger] | None = getattr(_local, "ledger", None)
    if current is not None and current[0] == key:
        return current[1]
    if current is not None:
        current[1].storage.close()
    ledger = SentLedger(open_storage(settings))
    _local.ledger = (key, ledger)
    return ledger


__all__ = ["KEEP_SECONDS", "SentLedger", "SentRecord", "ledger_for"]
