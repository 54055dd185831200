"""Redis: the client and the key scheme.

Every key and channel starts with the configured prefix (a test run uses its own). Every
key of one event carries the hash tag ``{event_id}`` so multi-key scripts stay atomic on
Redis Cluster.
"""

from __future__ import annotations

import time
import uuid

import redis.asyncio as aioredis
from redis.asyncio.connection import BlockingConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# Errors that mean "Redis is not reachable".
UNAVAILABLE: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, OSError)


class Keys:
    """Names of keys and channels."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def event(self, event_id: uuid.UUID | str, suffix: str) -> str:
        return f"{self.prefix}ev:{{{event_id}}}:{suffix}"

    def event_channel(self, event_id: uuid.UUID | str) -> str:
        return self.event(event_id, "ch")

    def global_(self, suffix: str) -> str:
        return f"{self.prefix}{suffix}"


class Store:
    """The Redis client (a bounded, blocking pool) and the key scheme."""

    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    @classmethod
    def connect(cls, url: str, *, prefix: str, max_connections: int = 512) -> Store:
        # A blocking pool makes a surge wait for a connection instead of failing:
        # redis-py's default pool raises beyond its size.
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=5,
            socket_connect_timeout=2,
            socket_timeout=10,
            health_check_interval=15,
            retry_on_timeout=False,
        )
        return cls(aioredis.Redis(connection_pool=pool), Keys(prefix))

    async def close(self) -> None:
        await self.client.aclose()
        await self.client.connection_pool.disconnect()

    async def ping(self) -> float:
        """Round-trip time of PING in milliseconds."""
        started = time.perf_counter()
        await self.client.ping()
        return (time.perf_counter() - started) * 1000
