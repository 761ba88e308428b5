"""Control flags shared by every worker through the database (table ``ictq_control``), and by
the PHP workers of a Laravel application beside ictq through its cache store.

``ictq restart`` stores a new restart stamp: each worker remembers the stamp it saw at start
and, once it sees another, finishes its current job and exits (Supervisor starts it again on
the new code). ``ictq pause QUEUE`` / ``ictq resume QUEUE`` add and remove ``pause:QUEUE``;
workers take no new jobs from a paused queue (see ``ictq.worker.control``). No cache server is
needed, and every host sharing the database obeys.

With a Laravel application (:mod:`ictq.laravel_cache`), each command also writes Laravel's own
signal (``illuminate:queue:restart``, Laravel 11's ``illuminate:queue:paused:...``) so that
``php artisan queue:work`` obeys it, and ictq workers obey Laravel's signals in turn.
"""

from __future__ import annotations

from ictq import laravel_cache
from ictq.db import Storage
from ictq.db.control import PAUSE_PREFIX, RESTART, ControlRepository, ControlState
from ictq.laravel_cache import CacheStore

__all__ = ["ControlState", "pause", "read", "request_restart", "resume"]


def read(storage: Storage) -> ControlState:
    return ControlRepository(storage).state()


def request_restart(storage: Storage, now: float, laravel: CacheStore | None = None) -> str:
    """A new restart stamp for ictq's workers and, with ``laravel``, for Laravel's (raises
    :class:`~ictq.laravel_cache.CacheUnreachable` after ictq's own stamp is stored)."""
    stamp = f"{now:.6f}"
    ControlRepository(storage).set(RESTART, stamp, int(now))
    if laravel is not None:
        current = laravel.get(laravel_cache.RESTART_KEY)
        laravel.forever(laravel_cache.RESTART_KEY, laravel_cache.next_restart_stamp(current, now))
    return stamp


def pause(storage: Storage, queue: str, now: float, laravel: CacheStore | None = None, connection: str = "database"
          ) -> None:
    ControlRepository(storage).set(PAUSE_PREFIX + queue, "1", int(now))
    if laravel is not None:
        laravel.forever(laravel_cache.pause_key(connection, queue), True)


def resume(storage: Storage, queue: str, laravel: CacheStore | None = None, connection: str = "database") -> bool:
    """Lift a pause; False when neither ictq nor Laravel had the queue paused."""
    was_paused = ControlRepository(storage).delete(PAUSE_PREFIX + queue)
    if laravel is not None:
        key = laravel_cache.pause_key(connection, queue)
        was_paused = bool(laravel.get(key)) or was_paused
        laravel.forget(key)
    return was_paused
