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

from collections.abc import Callable
from dataclasses import dataclass

from ictq import laravel_cache
from ictq.config import Settings
from ictq.db import Storage
from ictq.db.control import PAUSE_PREFIX, RESTART, ControlRepository, ControlState
from ictq.errors import IctqError
from ictq.laravel_cache import CacheStore

__all__ = ["ControlState", "Signalled", "laravel_pause", "laravel_restart", "laravel_resume", "pause", "read",
           "request_restart", "resume", "signal_pause", "signal_restart", "signal_resume"]


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


# -- both at once: what `ictq restart/pause/resume` and the dashboard do -------------------------

@dataclass(frozen=True)
class Signalled:
    """What a signal reached: ictq's workers always; ``laravel`` names the Laravel app's cache
    store when one is beside ictq, and ``error`` says why it could not be told. ``changed``:
    for a resume, whether the queue was paused."""

    laravel: str | None = None
    error: str | None = None
    changed: bool = True


def signal_restart(settings: Settings, storage: Storage, now: float) -> Signalled:
    request_restart(storage, now)
    return _tell_laravel(settings, storage, lambda store: bool(laravel_restart(store, now)), True)


def signal_pause(settings: Settings, storage: Storage, queue: str, now: float) -> Signalled:
    pause(storage, queue, now)

    def tell(store: CacheStore) -> bool:
        laravel_pause(store, settings.queue_connection, queue)
        return True

    return _tell_laravel(settings, storage, tell, True)


def signal_resume(settings: Settings, storage: Storage, queue: str) -> Signalled:
    was_paused = resume(storage, queue)
    told = _tell_laravel(settings, storage, lambda store: laravel_resume(store, settings.queue_connection, queue),
                         was_paused)
    return Signalled(told.laravel, told.error, told.changed or was_paused)


def _tell_laravel(settings: Settings, storage: Storage, action: Callable[[CacheStore], bool],
                  changed: bool) -> Signalled:
    store = laravel_cache.open_store(settings, storage)
    if store is None:
        return Signalled(changed=changed)
    try:
        return Signalled(store.name, changed=action(store))
    except IctqError as exc:
        return Signalled(store.name, error=str(exc), changed=changed)
