"""Rate limits: counted per caller across processes, 429 with Retry-After, off when told."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from hub import ratelimit
from hub.app import create_app
from hub.context import Hub
from hub.errors import RateLimited
from hub.settings import Settings


async def test_window_counts_per_caller(hub: Hub) -> None:
    limit = ratelimit.Limit("test", 3, 60)
    for _ in range(3):
        await ratelimit.check(hub.store, limit, "alice", now=1_000_000.0)
    with pytest.raises(RateLimited) as refused:
        await ratelimit.check(hub.store, limit, "alice", now=1_000_010.0)
    assert refused.value.headers["Retry-After"] == "11"  # the window ends at 1_000_020
    await ratelimit.check(hub.store, limit, "bob", now=1_000_010.0)  # others unaffected
    await ratelimit.check(hub.store, limit, "alice", now=1_000_021.0)  # a new window


@pytest.fixture(scope="module")
async def limited(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.replace(rate_limits=True), leader_loops=())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://limited") as client:
            yield client


async def test_sign_in_attempts_are_limited_per_address(
    limited: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    body = {"email": "nobody@example.com", "password": "wrong password"}
    codes = [(await limited.post("/api/v1/auth/login", json=body)).status_code for _ in range(21)]
    assert codes[:20] == [401] * 20
    assert codes[20] == 429
    refused = await limited.post("/api/v1/auth/login", json=body)
    assert refused.json()["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
    # The test app (limits off) is not limited at all.
    assert (await client.post("/api/v1/auth/login", json=body)).status_code == 401
