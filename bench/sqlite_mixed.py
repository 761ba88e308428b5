"""How Laravel 8's database queue fares on SQLite beside other writers (docs/laravel.md).

``python -m bench.sqlite_mixed [--jobs N] [--runs N]``: for each journal mode (Laravel's
rollback journal ``delete``, and ``wal``) and each neighbour (none; an ictq dispatcher; a PHP
dispatcher), two real ``php artisan queue:work`` processes drain N PHP jobs from the test
suite's Laravel application while the neighbour writes; reported: PHP jobs left reserved after
they ran (their delete failed: they run again after retry_after) and ``database is locked``
errors in Laravel's log. Needs PHP and Laravel (``make test`` installs them).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import threading
import time
from contextlib import closing
from pathlib import Path

import tests.support.jobs  # noqa: F401 - the test jobs the ictq dispatcher queues
from tests.support.app import count_rows, wait_for
from tests.support.laravel_app import PHP, laravel_app

NEIGHBOURS = ("none", "ictq-dispatch", "php-dispatch")


def run(mode: str, neighbour: str, jobs: int) -> tuple[int, int]:
    """``(left reserved, lock errors)`` of one drain."""
    with tempfile.TemporaryDirectory() as folder, \
            laravel_app("sqlite", Path(folder) / "app", DB_JOURNAL_MODE=mode.upper()) as app:
        app.php("app:dispatch", "ok", f"--count={jobs}", "--queue=php")
        stop = threading.Event()

        def ictq_dispatch() -> None:
            client = app.client()
            while not stop.is_set():
                client.dispatch("test.record", {"n": 1}, queue="elsewhere")
                time.sleep(0.005)
            client.close()

        def php_dispatch() -> None:
            while not stop.is_set():
                subprocess.run([PHP, "artisan", "app:dispatch", "ok", "--queue=elsewhere"], cwd=app.root,
                               env=app.env(), capture_output=True, check=False)

        writer = {"ictq-dispatch": ictq_dispatch, "php-dispatch": php_dispatch}.get(neighbour)
        thread = threading.Thread(target=writer, daemon=True) if writer else None
        if thread:
            thread.start()
        workers = [app.php_worker("--queue=php", "--sleep=1", "--tries=1") for _ in range(2)]
        with closing(app.storage()) as storage:
            wait_for(lambda: count_rows(storage, "jobs", "queue = 'php' AND reserved_at IS NULL") == 0, 600)
            wait_for(lambda: len(app.php_ran()) + count_rows(storage, "jobs", "queue = 'php'") >= jobs, 600)
            stop.set()
            for worker in workers:
                app.stop(worker)
            left = count_rows(storage, "jobs", "queue = 'php'")
        if thread:
            thread.join()
        return left, app.laravel_log().count("database is locked")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"| journal | neighbour | PHP jobs left reserved per {args.jobs} (median, max) | lock errors (median) |")
    print("|---|---|---|---|")
    for mode in ("delete", "wal"):
        for neighbour in NEIGHBOURS:
            results = [run(mode, neighbour, args.jobs) for _ in range(args.runs)]
            left = [r[0] for r in results]
            errors = [r[1] for r in results]
            print(f"| {mode} | {neighbour} | {statistics.median(left):g} ({max(left)}) | "
                  f"{statistics.median(errors):g} |", flush=True)


if __name__ == "__main__":
    main()
