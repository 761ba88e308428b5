"""The sent-ledger on each real database."""

from __future__ import annotations

import logging

import pytest

from ictq.errors import DatabaseError
from ictq.mail.ledger import KEEP_SECONDS, SentLedger, SentRecord, ledger_for
from tests.support.app import App, count_rows, rows

RECORD = SentRecord("<u-1@ict.example>", "u-1", "password_reset", "user@example.test")


def test_marking_is_idempotent_and_readable(app: App) -> None:
    now = [1_700_000_000.0]
    ledger = SentLedger(app.storage(), clock=lambda: now[0])
    assert not ledger.was_sent(RECORD.message_id) and not ledger.sent_job("u-1")
    assert ledger.mark_sent(RECORD)
    assert ledger.mark_sent(RECORD)  # a second write of the same message changes nothing
    assert ledger.was_sent(RECORD.message_id) and ledger.sent_job("u-1")
    assert rows(app.storage(), "SELECT job_uuid, notification, recipient, sent_at FROM ictq_mail_sent") == [
        ("u-1", "password_reset", "user@example.test", 1_700_000_000)]


def test_old_rows_are_pruned_now_and_then(app: App) -> None:
    now = [1_700_000_000.0]
    ledger = SentLedger(app.storage(), clock=lambda: now[0])
    ledger.mark_sent(RECORD)
    now[0] += KEEP_SECONDS + 10
    ledger.mark_sent(SentRecord("<u-2@ict.example>", "u-2", "password_reset", "user@example.test"))
    assert not ledger.was_sent(RECORD.message_id)
    assert ledger.was_sent("<u-2@ict.example>")


def test_a_missing_table_says_to_migrate(sqlite_app: App, caplog: pytest.LogCaptureFixture) -> None:
    storage = sqlite_app.storage()
    rows(storage, "DROP TABLE ictq_mail_sent")
    ledger = SentLedger(storage)
    with pytest.raises(DatabaseError, match="run `ictq migrate`"):
        ledger.check()
    with caplog.at_level(logging.ERROR, logger="ictq"):
        assert not ledger.mark_sent(RECORD)  # logged, never raised: the message is already out
    assert "mail-ledger-write-failed" in caplog.text and "<u-1@ict.example>" in caplog.text


def test_one_ledger_per_thread_and_database(sqlite_app: App) -> None:
    settings = sqlite_app.settings
    assert ledger_for(settings) is ledger_for(settings)
    ledger_for(settings).mark_sent(RECORD)
    assert count_rows(sqlite_app.storage(), "ictq_mail_sent") == 1
