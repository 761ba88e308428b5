"""The Laravel application's cache table (Laravel's database cache store), where Laravel keeps
its queue signals. :class:`CacheTableRepository` is the only caller of the ``cache_*`` statements."""

from __future__ import annotations

from ictq.db.base import Storage


class CacheTableRepository:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def get(self, key: str) -> tuple[str, int] | None:
        """``(value, expiration)`` of a cache entry, or None."""
        rows = self.storage.fetch("cache_get", {"key": key})
        if not rows:
            return None
        value, expiration = rows[0]
        return (value.decode() if isinstance(value, (bytes, bytearray)) else str(value)), int(expiration)

    def put(self, key: str, value: str, expiration: int) -> None:
        self.storage.run("cache_put", {"key": key, "value": value, "expiration": expiration})

    def forget(self, key: str) -> bool:
        return self.storage.run("cache_forget", {"key": key}) > 0
