"""A real PgBouncer for the tests, started and stopped by the bench's own starter
(:func:`bench.pgbouncer.running`: its ini and userlist in a temporary directory, any free port,
every database of the test PostgreSQL server (``* =``), trusted logins, one pool mode; Debian's
``pgbouncer`` refuses to run as root, so it runs as ``postgres``; stopped by its PID, its
directory removed). A missing or failing ``pgbouncer`` fails the test with the reason; nothing
is skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest

from bench import pgbouncer as starter
from tests.support.databases import PG

INSTALL_HINT = "apt-get install pgbouncer (make test installs it: TEST_PACKAGES in the Makefile)"
free_port = starter.free_port


class PgBouncer(starter.PgBouncer):
    """One running pgbouncer in pool ``mode``, with what the tests ask of it."""

    def env(self) -> dict[str, str]:
        """The .env lines that send ictq through this pgbouncer."""
        return {"DB_HOST": "127.0.0.1", "DB_PORT": str(self.port), "DB_PGBOUNCER": self.mode}

    def show(self, what: str) -> list[dict[str, Any]]:
        """``SHOW <what>`` on the admin console, as dicts."""
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(host="127.0.0.1", port=self.port, user=PG["user"], dbname="pgbouncer",
                             autocommit=True, connect_timeout=5, prepare_threshold=None) as conn:
            return list(conn.cursor(row_factory=dict_row).execute(f"SHOW {what}").fetchall())


@contextmanager
def running_pgbouncer(mode: str, pool_size: int = 20) -> Iterator[PgBouncer]:
    """Start pgbouncer in pool ``mode`` in front of the test PostgreSQL; stop it by PID after."""
    if starter.binary() is None:
        pytest.fail(f"pgbouncer is not installed; install it with: {INSTALL_HINT}", pytrace=False)
    with ExitStack() as stack:
        try:
            bouncer = stack.enter_context(starter.running(mode, pool_size, (PG["host"], PG["port"], PG["user"]),
                                                          kind=PgBouncer))
        except starter.StartError as exc:
            pytest.fail(str(exc), pytrace=False)
        assert isinstance(bouncer, PgBouncer)
        yield bouncer
