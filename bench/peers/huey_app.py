"""huey's SqliteHuey (defaults) and no-op task (``huey_consumer bench.peers.huey_app.huey``)."""

from __future__ import annotations

import os
from typing import Any

from huey import SqliteHuey

from bench.record import record


def make_huey(filename: str) -> tuple[SqliteHuey, Any]:
    instance = SqliteHuey("bench", filename=filename)

    @instance.task(name="bench.noop")  # type: ignore[untyped-decorator]
    def noop(seq: int, sent: int, pad: str = "") -> None:
        record(seq, sent)

    return instance, noop


huey, noop = make_huey(os.environ.get("BENCH_HUEY_DB", "huey.db"))
