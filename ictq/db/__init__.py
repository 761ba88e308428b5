"""The database layer: the only code that names a SQL statement.

:class:`Storage` (one backend per dialect) holds the connection and the worker's hot path (push,
claim, ack, release, fail, leases); one repository per table holds the rest, each returning
records built next to its SQL: :mod:`ictq.db.jobs`, :mod:`ictq.db.failed_jobs`,
:mod:`ictq.db.mail_ledger` (and the workers, control and stats tables' own modules).
"""

from __future__ import annotations

from ictq.config import Settings
from ictq.db.base import Failure, NewJob, Reserved, Storage, WakeSignal
from ictq.errors import ConfigError


def open_storage(settings: Settings, worker: bool = False) -> Storage:
    """A storage for the configured ``DB_CONNECTION`` (connects lazily, on first use).

    ``worker``: the connection of a worker process (see ``DB_WORKER_SYNCHRONOUS_COMMIT``).
    """
    dialect = settings.db.dialect
    try:
        if dialect == "sqlite":
            from ictq.db.sqlite import SqliteStorage as cls
        elif dialect == "pgsql":
            from ictq.db.pgsql import PgsqlStorage as cls  # type: ignore[assignment]
        else:
            from ictq.db.mysql import MysqlStorage as cls  # type: ignore[assignment]
    except ImportError as exc:
        extra = "pgsql" if dialect == "pgsql" else "mysql"
        raise ConfigError(
            f"DB_CONNECTION={settings.db.connection} needs a driver: pip install 'ictq[{extra}]' ({exc})"
        ) from None
    cache = settings.laravel_cache.table if settings.laravel_cache else "cache"
    return cls(settings.db, settings.queue_table, settings.failed_table, worker=worker, cache_table=cache)


__all__ = ["Failure", "NewJob", "Reserved", "Storage", "WakeSignal", "open_storage"]
