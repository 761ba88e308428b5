"""pgqueuer's consumer factory (``pgq run bench.peers.pgqueuer_app:main``).

pgqueuer 1.6's ``pgq run`` wants the factory to be an async context manager (its README's
plain ``async def main()`` is refused); otherwise this is the README's consumer.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from pgqueuer import PgQueuer
from pgqueuer.db import AsyncpgDriver
from pgqueuer.models import Job

from bench.record import record


@asynccontextmanager
async def main() -> AsyncIterator[PgQueuer]:
    connection = await asyncpg.connect(os.environ["BENCH_PG_DSN"])
    pgq = PgQueuer(AsyncpgDriver(connection))

    @pgq.entrypoint("bench.noop")
    async def noop(job: Job) -> None:
        data = json.loads(job.payload or b"{}")
        record(data["seq"], data["sent"])

    try:
        yield pgq
    finally:
        await connection.close()
