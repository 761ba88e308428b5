"""The queue signals of the Laravel application beside ictq, in its cache store.

``php artisan queue:restart`` stores the time under ``illuminate:queue:restart`` and every PHP
worker exits once the value differs from the one it saw at start; Laravel 11's
``queue:pause CONNECTION:QUEUE`` stores ``true`` under ``illuminate:queue:paused:CONNECTION:QUEUE``.
The store is the one the shared ``.env`` configures (:class:`ictq.config.LaravelCacheSettings`),
written the way Laravel writes it:

* **file**: ``storage/framework/cache/data/<2>/<2>/<sha1(key)>``: a ten-digit expiry
  (``9999999999`` for ever) then the PHP-serialized value; no prefix.
* **database**: the ``cache`` table: key ``<prefix><key>``, PHP-serialized value, expiry in
  ten years for ever.
* **redis**: ``<REDIS_PREFIX><prefix>:<key>`` in ``REDIS_CACHE_DB``; numbers stored as they
  are, other values PHP-serialized.

So ``ictq restart`` and ``ictq pause`` reach PHP workers, and ictq workers obey
``php artisan queue:restart`` and ``queue:pause``. Only scalar values are read and written.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Protocol

from ictq.config import LaravelCacheSettings, Settings
from ictq.db import Storage
from ictq.db.laravel_cache import CacheTableRepository
from ictq.errors import CacheUnreachable, ConfigError

RESTART_KEY = "illuminate:queue:restart"
FOREVER_FILE = 9999999999  # FileStore's expiry for ever
FOREVER_SECONDS = 315360000  # DatabaseStore::forever: ten years
_SCALAR = re.compile(r'\A(?:N;|b:([01]);|i:(-?\d+);|d:([^;]+);|s:(\d+):"(.*)";)\Z', re.S)


def pause_key(connection: str, queue: str) -> str:
    """Laravel 11's pause flag of a queue (``QueueManager::pause``)."""
    return f"illuminate:queue:paused:{connection}:{queue}"


def php_serialize(value: bool | int | str) -> str:
    """PHP's ``serialize()`` of a scalar."""
    if isinstance(value, bool):
        return f"b:{int(value)};"
    if isinstance(value, int):
        return f"i:{value};"
    return f's:{len(value.encode())}:"{value}";'


def php_unserialize(text: str) -> bool | int | float | str | None:
    """PHP's ``unserialize()`` of a scalar; a plain number (Redis) as it is; None otherwise."""
    text = text.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    found = _SCALAR.match(text)
    if not found:
        with contextlib.suppress(ValueError):
            return float(text)
        return None
    boolean, integer, double, length, string = found.groups()
    if boolean is not None:
        return boolean == "1"
    if integer is not None:
        return int(integer)
    if double is not None:
        with contextlib.suppress(ValueError):
            return float(double)
        return None
    if string is None:  # N;
        return None
    return string if len(string.encode()) == int(length) else None


class CacheStore(Protocol):
    name: str

    def get(self, key: str) -> Any: ...

    def forever(self, key: str, value: bool | int | str) -> None: ...

    def forget(self, key: str) -> None: ...


class FileStore:
    name = "file"

    def __init__(self, directory: Path, clock: Any = time.time) -> None:
        self.directory, self.clock = directory, clock

    def path(self, key: str) -> Path:
        digest = hashlib.sha1(key.encode()).hexdigest()  # Laravel's file names, not security
        return self.directory / digest[:2] / digest[2:4] / digest

    def get(self, key: str) -> Any:
        try:
            text = self.path(key).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CacheUnreachable(f"Laravel's file cache {self.directory}: {exc.strerror}") from None
        if len(text) < 10 or not text[:10].isdigit() or self.clock() >= int(text[:10]):
            return None
        return php_unserialize(text[10:])

    def forever(self, key: str, value: bool | int | str) -> None:
        path = self.path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".ictq-")
            try:
                os.write(fd, f"{FOREVER_FILE}{php_serialize(value)}".encode())
                os.fchmod(fd, 0o664)
            finally:
                os.close(fd)
            os.replace(temp, path)  # readers see the old value or the new one, never half of one
        except OSError as exc:
            raise CacheUnreachable(f"Laravel's file cache {self.directory}: {exc.strerror}") from None

    def forget(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(key).unlink()


class DatabaseStore:
    name = "database"

    def __init__(self, storage: Storage, prefix: str, clock: Any = time.time) -> None:
        self.table, self.prefix, self.clock = CacheTableRepository(storage), prefix, clock

    def get(self, key: str) -> Any:
        found = self.table.get(self.prefix + key)
        if found is None or self.clock() >= found[1]:
            return None
        return php_unserialize(found[0])

    def forever(self, key: str, value: bool | int | str) -> None:
        self.table.put(self.prefix + key, php_serialize(value), int(self.clock()) + FOREVER_SECONDS)

    def forget(self, key: str) -> None:
        self.table.forget(self.prefix + key)


class RedisStore:
    name = "redis"

    def __init__(self, cache: LaravelCacheSettings) -> None:
        try:
            import redis
        except ImportError:
            raise ConfigError("CACHE_DRIVER=redis needs the Redis client: pip install 'ictq[redis]'") from None
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self.client = redis.Redis(host=cache.redis_host, port=cache.redis_port, db=cache.redis_db,
                                  username=cache.redis_username or None, password=cache.redis_password or None,
                                  socket_timeout=5, socket_connect_timeout=5, decode_responses=True)
        self.where = f"redis://{cache.redis_host}:{cache.redis_port}/{cache.redis_db}"
        self.prefix = cache.redis_prefix + (f"{cache.prefix}:" if cache.prefix else "")

    def _call(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self.client, method)(*args)
        except self._errors as exc:
            raise CacheUnreachable(f"Laravel's redis cache {self.where}: {type(exc).__name__}") from None

    def get(self, key: str) -> Any:
        value = self._call("get", self.prefix + key)
        return None if value is None else php_unserialize(value)

    def forever(self, key: str, value: bool | int | str) -> None:
        stored = str(value) if isinstance(value, int) and not isinstance(value, bool) else php_serialize(value)
        self._call("set", self.prefix + key, stored)

    def forget(self, key: str) -> None:
        self._call("delete", self.prefix + key)


def open_store(settings: Settings, storage: Storage) -> CacheStore | None:
    """The Laravel app's cache store, or None when ictq does not share a Laravel app's signals
    (``ICTQ_LARAVEL_SIGNALS``) or the store is one ictq cannot reach (see :func:`unreachable`)."""
    cache = settings.laravel_cache
    if cache is None or not cache.reachable:
        return None
    if cache.store == "file":
        return FileStore(cache.directory)
    if cache.store == "database":
        return DatabaseStore(storage, cache.prefix)
    return RedisStore(cache)


def unreachable(settings: Settings) -> str | None:
    """The name of a configured Laravel cache store ictq cannot reach (memcached, array...)."""
    cache = settings.laravel_cache
    return cache.store if cache is not None and not cache.reachable else None


def next_restart_stamp(current: Any, now: float) -> int:
    """The value ``queue:restart`` would store now, made to differ from the current one (two
    restarts in one second must both be seen)."""
    stamp = int(now)
    if isinstance(current, int) and not isinstance(current, bool):
        return max(stamp, current + 1)
    return stamp
