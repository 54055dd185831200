"""A real uvicorn server around a hub app with tight channel settings, in this event loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn

from hub.app import create_app
from hub.cli import uvicorn_options
from hub.context import Hub
from hub.inventory import HoldKind
from hub.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_config(app: Any, port: int) -> uvicorn.Config:
    options = uvicorn_options("127.0.0.1", port, 1)
    for key in ("workers", "factory"):
        options.pop(key)
    options["lifespan"] = "off"  # the fixture runs the app's lifespan itself
    return uvicorn.Config(app, **options)


@dataclass
class WsServer:
    hub: Hub
    settings: Settings
    port: int

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def event_url(self, event_id: uuid.UUID) -> str:
        return self.url(f"/ws/events/{event_id}")


@contextlib.asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[WsServer]:
    """An app with its lifespan, served by uvicorn on a free port of 127.0.0.1."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        port = free_port()
        server = uvicorn.Server(server_config(app, port))
        task = asyncio.get_running_loop().create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        try:
            yield WsServer(app.state.hub, settings, port)
        finally:
            server.should_exit = True
            await task


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
        event_id, hold_id, uuid.uuid4(), HoldKind.SINGLE, seats, [100] * len(seats), 60_000, None
    )
    assert hasattr(placed, "seq"), placed
    return hold_id, placed.seq  # type: ignore[union-attr]
