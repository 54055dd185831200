"""A real uvicorn server around a hub app with tight channel settings, in this event loop."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from hub.context import Hub
from hub.inventory import HoldKind, HoldRequest
from hub.settings import Settings
from tests.live import WsServer, free_port, serve

__all__ = ["WsServer", "free_port", "serve"]


@pytest.fixture(scope="module")
async def ws(settings: Settings) -> AsyncIterator[WsServer]:
    tight = settings.replace(
        ws_tick_ms=50, ws_backlog_bytes=64 * 1024, ws_behind_seconds=2.0, ws_max_per_ip=10_000
    )
    async with serve(tight) as server:
        yield server


async def loaded_event(hub: Hub, n_seats: int = 100) -> uuid.UUID:
    """An event that lives only in Redis (the inventory scripts are its only writers)."""
    event_id = uuid.uuid4()
    assert await hub.inventory.load(event_id, n_seats, [], {})
    return event_id


async def hold(hub: Hub, event_id: uuid.UUID, *seats: int) -> tuple[uuid.UUID, int]:
    """Hold seats through the real script; returns the hold id and the seq after it."""
    hold_id = uuid.uuid4()
    placed = await hub.inventory.place_hold(
        event_id,
        HoldRequest(
            hold_id, uuid.uuid4(), HoldKind.SINGLE, seats, [100] * len(seats), 60_000, None
        ),
    )
    assert hasattr(placed, "seq"), placed
    return hold_id, placed.seq  # type: ignore[union-attr]
