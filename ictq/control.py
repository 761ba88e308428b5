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

__all__ = ["ControlState", "laravel_pause", "laravel_restart", "laravel_resume", "pause", "read", "request_restart",
           "resume"]


def read(storage: Storage) -> ControlState:
    return ControlRepository(storage).state()


def request_restart(storage: Storage, now: float) -> str:
    stamp = f"{now:.6f}"
    ControlRepository(storage).set(RESTART, stamp, int(now))
    return stamp


def pause(storage: Storage, queue: str, now: float) -> None:
    ControlRepository(storage).set(PAUSE_PREFIX + queue, "1", int(now))


def resume(storage: Storage, queue: str) -> bool:
    return ControlRepository(storage).delete(PAUSE_PREFIX + queue)


# -- Laravel's signals (each raises an IctqError when the store cannot be reached) -----------------

def laravel_restart(store: CacheStore, now: float) -> int:
    """What ``php artisan queue:restart`` does: a new ``illuminate:queue:restart`` value."""
    stamp = laravel_cache.next_restart_stamp(store.get(laravel_cache.RESTART_KEY), now)
    store.forever(laravel_cache.RESTART_KEY, stamp)
    return stamp


def laravel_pause(store: CacheStore, connection: str, queue: str) -> None:
    """What Laravel 11's ``queue:pause CONNECTION:QUEUE`` does."""
    store.forever(laravel_cache.pause_key(connection, queue), True)


def laravel_resume(store: CacheStore, connection: str, queue: str) -> bool:
    """What Laravel 11's ``queue:continue CONNECTION:QUEUE`` does; whether it was paused."""
    key = laravel_cache.pause_key(connection, queue)
    was_paused = bool(store.get(key))
    store.forget(key)
    return was_paused
