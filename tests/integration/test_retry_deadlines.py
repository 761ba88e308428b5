"""``ictq retry`` of jobs with a ``retryUntil`` deadline, on the three databases: every failed
job either goes back runnable (a deadline ahead, or none) exactly once, or is refused and stays
in failed_jobs; nothing is lost."""

from __future__ import annotations

import json
import uuid
from contextlib import closing
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ictq import ops
from tests.support.app import App, rows
from tests.support.failed import Failure, add_failures

NOW = 1_800_000_000

failures = st.lists(st.fixed_dictionaries({
    "job": st.sampled_from(["mail.welcome", "Illuminate\\Queue\\CallQueuedHandler@call"]),
    "retryUntil": st.one_of(st.none(), st.integers(min_value=0, max_value=2 * NOW)),
    "createdAt": st.one_of(st.none(), st.integers(min_value=0, max_value=2 * NOW)),
}), min_size=1, max_size=6)


@given(failures, st.one_of(st.none(), st.integers(min_value=0, max_value=10**6)))
def test_retried_jobs_are_runnable_on_arrival_or_refused_and_kept(app: App, shapes: list[dict[str, Any]],
                                                                  deadline: int | None) -> None:
    with closing(app.storage()) as storage:
        storage.connection.cursor().execute("DELETE FROM jobs")
        storage.connection.cursor().execute("DELETE FROM failed_jobs")
        payloads = [json.dumps({"uuid": str(uuid.uuid4()), "displayName": "x", "data": {}, **shape})
                    for shape in shapes]
        add_failures(storage, [Failure(text) for text in payloads])
        batch = [row for group in ops.failed_all(storage) for row in group]
        done = ops.retry(storage, batch, NOW, deadline)
        again = ops.retry(storage, batch, NOW, deadline)  # a second retry of the same rows moves nothing

        assert len(done.moved) + len(done.refused) == len(payloads) and again.moved == []
        queued = [json.loads(str(r[0])) for r in rows(storage, "SELECT payload FROM jobs")]
        kept = [json.loads(str(r[0])) for r in rows(storage, "SELECT payload FROM failed_jobs")]
        assert sorted(p["uuid"] for p in queued + kept) == sorted(json.loads(p)["uuid"] for p in payloads)
        assert len(queued) == len(done.moved) and len(kept) == len(done.refused)
        for job in queued:
            assert job["retryUntil"] is None or job["retryUntil"] >= NOW
        for job in kept:
            assert job["retryUntil"] is not None and deadline is None
