"""Commands run at the same time: each failed job re-queued exactly once by concurrent
``ictq retry all``, and concurrent ``ictq migrate`` on a fresh database all succeed.

Real processes on the three databases, several rounds each: a race that a round misses is
caught by another, and none of the assertions depends on how the processes interleave.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from ictq import ops
from tests.support.app import App, count_rows, rows
from tests.support.databases import fresh_database

ROUNDS = 4
CONCURRENT = 3
FAILED_PER_ROUND = 300


def make_failed(app: App, count: int, round_no: int) -> set[str]:
    """``count`` jobs in failed_jobs (dispatched, claimed and failed as a worker would); their uuids."""
    client = app.client()
    client.dispatch_many("test.boom", [{"message": f"r{round_no}-{n}"} for n in range(count)])
    client.close()
    storage = app.storage()
    try:
        claimed = storage.claim("default", int(time.time()), 90, count)
        assert len(claimed) == count
        for job in claimed:
            assert storage.fail(job, "database", "RuntimeError: boom", job.payload, datetime.now(timezone.utc))
        return {json.loads(job.payload)["uuid"] for job in claimed}
    finally:
        storage.close()


def start(app: App, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "ictq", "--env-file", str(app.env_file), *args], cwd=app.root,
                            env=app.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(procs: list[subprocess.Popen[str]]) -> list[tuple[int, str, str]]:
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        results.append((proc.returncode, out, err))
    return results


def test_concurrent_retry_all_requeues_each_failed_job_exactly_once(app: App) -> None:
    storage = app.storage()
    for round_no in range(ROUNDS):
        uuids = make_failed(app, FAILED_PER_ROUND, round_no)
        results = finish([start(app, "retry", "all") for _ in range(CONCURRENT)])
        assert all(code == 0 and "Traceback" not in err for code, _, err in results), results
        moved = [int(m.group(1)) for _, out, _ in results if (m := re.search(r"re-queued (\d+) failed", out))]
        assert sum(moved) == FAILED_PER_ROUND, (round_no, moved)  # each says how many it moved itself
        queued = Counter(json.loads(payload)["uuid"] for (payload,) in rows(storage, "SELECT payload FROM jobs"))
        assert set(queued) == uuids and set(queued.values()) == {1}, (round_no, len(queued), sum(queued.values()))
        assert count_rows(storage, "failed_jobs") == 0
        ops.clear(storage, ["default"], include_reserved=True)
    storage.close()


def test_concurrent_migrate_on_a_fresh_database_all_succeed(dialect: str, tmp_path: Path) -> None:
    for round_no in range(ROUNDS):
        root = tmp_path / f"round-{round_no}"
        root.mkdir()
        with fresh_database(dialect, root) as database:
            app = App(root, dialect, database.env)
            results = finish([start(app, "migrate") for _ in range(CONCURRENT)])
            assert all(code == 0 and not err.strip() for code, _, err in results), (round_no, results)
            storage = app.storage()
            try:
                assert count_rows(storage, "jobs") == 0 and count_rows(storage, "failed_jobs") == 0
                client = app.client()
                client.dispatch("test.record", {"n": round_no})  # the tables (and PostgreSQL's trigger) work
                client.close()
                assert count_rows(storage, "jobs") == 1
            finally:
                storage.close()
