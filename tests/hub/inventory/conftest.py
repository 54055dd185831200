"""An ``Inventory`` on the run's Redis and key prefix: these tests need no app and no
PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from hub.inventory import Inventory
from hub.store import Keys
from tests.servers import TestServers
from tests.waiting import eventually


@pytest.fixture(scope="session")
async def inventory(servers: TestServers, redis_prefix: str) -> AsyncIterator[Inventory]:
    client = aioredis.Redis.from_url(servers.redis_url)
    yield Inventory(client, Keys(redis_prefix))
    await client.aclose()


async def loaded(inventory: Inventory, n: int = 10, sold: tuple[int, ...] = ()) -> uuid.UUID:
    """A fresh event of ``n`` seats, loaded with ``sold`` sold."""
    event_id = uuid.uuid4()
    assert await inventory.load(event_id, n, list(sold), {})
    return event_id


async def wait_past(inventory: Inventory, expires_ms: int) -> None:
    """Wait until Redis's clock (the one the scripts read) is past ``expires_ms``."""

    async def past() -> bool:
        return await inventory.server_time_ms() > expires_ms

    assert await eventually(past, within=5.0)
