"""`StoreCache`: the task cache kept in a run store, so cached results outlive the process.

Values are encoded as results are (JSON, or cloudpickle signed with this installation's key).
An entry that cannot be trusted (changed, or signed with another key) is not used: the call
runs again and its result replaces the entry; a warning says so.
"""

from __future__ import annotations

import logging
import os

from reflow.store.base import SQLStore
from reflow.store.results import ResultCodec, UntrustedResultError
from reflow.task.cache import CacheEntry

logger = logging.getLogger("reflow.store")


class StoreCache:
    """A `CacheStore` (see `reflow.task.cache`) over a SQLite or PostgreSQL run store."""

    def __init__(self, store: SQLStore, codec: ResultCodec) -> None:
        self.store = store
        self.codec = codec

    def get(self, key: str) -> CacheEntry | None:
        found = self.store.cache_get(key)
        if found is None:
            return None
        name, created, expires, encoded = found
        try:
            value = self.codec.decode(encoded)
        except UntrustedResultError as exc:
            logger.warning(
                "reflow: the cached result of task %s in %r is not used: %s; the task runs "
                "again and its result replaces it", name, self.store, exc,
            )  # fmt: skip
            return None
        return CacheEntry(value, created, expires, name)

    def put(self, key: str, entry: CacheEntry) -> None:
        try:
            encoded = self.codec.encode(entry.value)
        except Exception as exc:
            logger.warning(
                "reflow: a result of task %s cannot be cached in %r (%s: %s); it is not "
                "cached", entry.task_name or "?", self.store, type(exc).__name__, exc,
            )  # fmt: skip
            return
        self.store.cache_put(key, entry.task_name, entry.created_at, entry.expires_at, encoded)

    def clear(self, task_name: str | None = None) -> int:
        """Forget the entries (of one task, or all); returns how many there were."""
        return self.store.cache_clear(task_name)

    def __len__(self) -> int:
        return self.store.cache_size()

    def __repr__(self) -> str:
        return f"StoreCache({self.store!r})"


def default_cache() -> StoreCache | None:
    """The cache of the default store (`REFLOW_STORE`, else `$REFLOW_HOME/reflow.db`), or
    None when `REFLOW_STORE=memory`."""
    if os.environ.get("REFLOW_STORE") == "memory":
        return None
    from reflow.store.persistence import persistence

    kept = persistence(True, None)
    if kept is None:
        return None
    if kept.cache is None:
        kept.cache = StoreCache(kept.store, kept.codec)
    return kept.cache
