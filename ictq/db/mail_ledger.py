"""The mail sent-ledger table, ``ictq_mail_sent``: one row per message handed to the mail server,
keyed by its Message-ID (see :mod:`ictq.mail.ledger` for why and when it is written)."""

from __future__ import annotations

from dataclasses import dataclass

from ictq.db.base import Storage
from ictq.errors import DatabaseError, DatabaseUnavailable

TABLE = "ictq_mail_sent"


@dataclass(frozen=True)
class SentRecord:
    """A message the mail server accepted."""

    message_id: str
    job_uuid: str
    notification: str
    recipient: str


class MailLedgerRepository:
    """Reads and writes of the sent-ledger through one :class:`Storage`."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def check(self) -> None:
        """Raise :class:`DatabaseError` when the table is missing or lacks its columns
        (``ictq migrate`` creates it)."""
        try:
            self.storage.fetch("mail_check_ledger")
        except DatabaseUnavailable:
            raise
        except DatabaseError as exc:
            raise DatabaseError(f"the mail ledger table {TABLE} is missing; run `ictq migrate` ({exc})") from None

    def was_sent(self, message_id: str) -> bool:
        """Whether the message with this Message-ID was sent."""
        return bool(self.storage.fetch("mail_sent_at", {"message_id": message_id}))

    def sent_job(self, job_uuid: str) -> bool:
        """Whether the job with this uuid sent its message."""
        return bool(self.storage.fetch("mail_sent_by_uuid", {"job_uuid": job_uuid}))

    def mark_sent(self, record: SentRecord, sent_at: int) -> None:
        """Record a sent message (a second record of the same Message-ID changes nothing)."""
        self.storage.run("mail_mark_sent", {
            "message_id": record.message_id, "job_uuid": record.job_uuid, "notification": record.notification,
            "recipient": record.recipient, "sent_at": sent_at,
        })

    def prune(self, before: int) -> int:
        """Delete rows sent before ``before`` (Unix seconds); return how many."""
        return self.storage.run("mail_prune", {"before": before})


__all__ = ["TABLE", "MailLedgerRepository", "SentRecord"]
