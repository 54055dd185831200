"""In-process caches that load each key once, however many callers ask at the same time.

A surge asks for the same event or venue from hundreds of requests at once; a plain
"look, miss, load, store" cache lets every one of them miss and load (for a 20,000-seat
venue that is seconds of CPU wasted per burst). Here the first caller's load is shared
as a future by everyone who asks while it runs. Bounded, least recently used out; an
entry may have a maximum age; a failed load is not kept. A named cache counts its hits and
misses in ``evently_cache_lookups_total`` (the health report's hit ratio); a caller joining
a load in flight counts as a hit: it caused no load.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

import structlog

from hub import metrics
from hub.store import UNAVAILABLE, Store

log = structlog.get_logger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SharedLoads(Generic[K, V]):
    def __init__(self, capacity: int, max_age: float | None = None, name: str = "") -> None:
        self.capacity = capacity
        self.max_age = max_age
        # Counter children bound once: ``labels()`` locks on every call.
        self._hits = metrics.CACHE_LOOKUPS.labels(name, "hit") if name else None
        self._misses = metrics.CACHE_LOOKUPS.labels(name, "miss") if name else None
        self._entries: OrderedDict[K, tuple[float, asyncio.Future[V]]] = OrderedDict()

    async def get(self, key: K, load: Callable[[], Awaitable[V]], *, fresh: bool = False) -> V:
        """The value for ``key``, loading it with ``load`` unless a live entry exists.

        Raises:
            Whatever ``load`` raises (and the entry is dropped).
        """
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and not fresh and (self.max_age is None or entry[0] > now):
            self._entries.move_to_end(key)
            if self._hits is not None:
                self._hits.inc()
            if entry[1].done():  # the common case: loaded already, no future to wrap
                return entry[1].result()
            return await asyncio.shield(entry[1])
        if self._misses is not None:
            self._misses.inc()
        expires = now + self.max_age if self.max_age is not None else float("inf")
        future: asyncio.Future[V] = asyncio.ensure_future(load())
        self._entries[key] = (expires, future)
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
        future.add_done_callback(lambda done: self._drop_failed(key, done))
        return await asyncio.shield(future)

    def forget(self, key: K) -> None:
        self._entries.pop(key, None)

    def _drop_failed(self, key: K, done: asyncio.Future[V]) -> None:
        if done.cancelled() or done.exception() is not None:
            entry = self._entries.get(key)
            if entry is not None and entry[1] is done:
                del self._entries[key]


async def kept_in_redis(
    store: Store,
    name: str,
    seconds: int,
    compute: Callable[[], Awaitable[bytes]],
    *,
    fresh: bool = False,
    label: str,
) -> bytes:
    """The bytes kept in Redis under the global key ``name`` unless ``fresh`` or none are
    kept; else ``compute`` them and keep them ``seconds``. Lookups count in
    ``CACHE_LOOKUPS`` under ``label``. Redis being down costs the cache, never the answer."""
    key = store.keys.global_(name)
    if not fresh:
        try:
            kept = await store.client.get(key)
        except UNAVAILABLE as exc:
            log.warning("redis_cache_unavailable", key=name, error=repr(exc))
            kept = None
        if isinstance(kept, bytes):  # the client does not decode responses
            metrics.CACHE_LOOKUPS.labels(label, "hit").inc()
            return kept
        metrics.CACHE_LOOKUPS.labels(label, "miss").inc()
    body = await compute()
    try:
        await store.client.set(key, body, ex=seconds)
    except UNAVAILABLE as exc:
        log.warning("redis_cache_unavailable", key=name, error=repr(exc))
    return body
