"""procrastinate's app and no-op task (``procrastinate --app=bench.peers.procrastinate_app.app worker``)."""

from __future__ import annotations

import os

import procrastinate

from bench.record import record


def make_app(dsn: str) -> procrastinate.App:
    application = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=dsn))

    @application.task(name="bench.noop")
    def noop(seq: int, sent: int, pad: str = "") -> None:
        record(seq, sent)

    return application


app = make_app(os.environ.get("BENCH_PG_DSN", ""))
