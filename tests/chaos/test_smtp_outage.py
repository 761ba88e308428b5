"""The SMTP server down for a minute during a burst of 500 mails: none lost, none failed, each
delivered once after it is back (the built-in notification policy rides the outage out)."""

from __future__ import annotations

import os
import time
from collections import Counter

import pytest

import ictq.mail
from tests.chaos.support import CANARY, Supervisor, leaks, report
from tests.support.app import App, count_rows, wait_for
from tests.support.smtp import (  # noqa: F401 - fixtures
    SmtpServer,
    smtp_servers_fixture,
    start_server,
    use_server,
)

pytestmark = pytest.mark.slow
MAILS = 500
OUTAGE = float(os.environ.get("ICTQ_CHAOS_SMTP_OUTAGE", "60"))


def test_smtp_down_for_a_minute_during_a_burst(sqlite_chaos_app: App, smtp_servers: list[SmtpServer]) -> None:
    app = sqlite_chaos_app
    server = start_server(smtp_servers, "plain", users={"ict": CANARY})
    # MAIL_BACKOFF empty: the notifications' own policy (5 tries; 10, 60, 300, 900 s apart).
    use_server(app, server, MAIL_USERNAME="ict", MAIL_PASSWORD=CANARY, MAIL_BACKOFF="")
    supervisor = Supervisor(app, 4, ("--sleep", "0.2"))
    supervisor.start()
    client = app.client()
    began = time.monotonic()
    try:
        first = MAILS // 5
        for i in range(first):
            ictq.mail.notify("password_reset", f"user{i}@example.test", {"token": f"tok{i}"}, client=client)
        server.wait_for(first // 2, timeout=60)
        server.stop()  # mid-burst: the rest of the burst is queued while the server is down
        down_at = time.monotonic()
        for i in range(first, MAILS):
            ictq.mail.notify("password_reset", f"user{i}@example.test", {"token": f"tok{i}"}, client=client)
        before = len(server.received)
        time.sleep(max(0.0, OUTAGE - (time.monotonic() - down_at)))
        server.start()
        up_at = time.monotonic()
        server.wait_for(MAILS, timeout=OUTAGE + 120)
        all_at = time.monotonic()
        storage = app.storage()
        wait_for(lambda: count_rows(storage, "jobs") == 0, timeout=60, what="every job deleted")
        time.sleep(1)  # a mail sent twice would arrive now
    finally:
        supervisor.stop()
    per_recipient = Counter(rcpt for item in server.received for rcpt in item.rcpt_tos)
    released = app.log_text().count(" released ")
    report("smtp-outage", mails=MAILS, delivered_before_outage=before, outage_seconds=f"{up_at - down_at:.1f}",
           delivered_all_after_recovery=f"{all_at - up_at:.1f}s", releases=released,
           total_seconds=f"{all_at - began:.1f}", received=len(server.received))
    assert per_recipient == Counter({f"user{i}@example.test": 1 for i in range(MAILS)})
    assert count_rows(app.storage(), "failed_jobs") == 0
    assert released >= MAILS - before - 10  # the rest waited out the outage
    assert all(item.login == "ict" for item in server.received)
    assert supervisor.exits == [] and set(supervisor.final_codes) == {0}
    assert leaks(app, [supervisor.output()]) == []
