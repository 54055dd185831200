"""Hubs whose holds and offers last one second, for the service tests that watch them
expire. Session-wide: each is started once, whichever test module asks first."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from hub.app import create_app
from hub.settings import Settings
from tests.live import WsServer, serve


@pytest.fixture(scope="session")
async def short(settings: Settings) -> AsyncIterator[WsServer]:
    """A second hub on the same servers, served on a socket, whose holds last one second
    (three at most, with the one extension) and whose waitlist offers last one second."""
    quick = settings.replace(
        hold_ttl_seconds=1, hold_max_lifetime_seconds=3, offer_ttl_seconds=1, ws_tick_ms=20
    )
    async with serve(quick) as server:
        yield server


@pytest.fixture
async def quick(short: WsServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=short.base) as client:
        yield client


@pytest.fixture(scope="session")
async def short_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A second hub on the same servers whose holds last one second (no leader loops)."""
    app = create_app(settings.replace(hold_ttl_seconds=1), leader_loops=())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://short") as client:
            yield client
