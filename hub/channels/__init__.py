"""Live event channels over WebSocket: snapshot and conflated deltas with seq, per process.

``channels_part`` is the lifespan part: it starts the process's ``Channels`` hub (one
Redis pub/sub link, the tick and housekeeping) and the admin feed, and registers them in
``hub.parts`` as ``channels`` and ``admin_feed``. ``websocket_routes`` lists the endpoints.
See docs/channels.md for the protocol.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.routing import BaseRoute, WebSocketRoute

from hub.channels.admin import AdminFeed
from hub.channels.endpoints import AdminSocket, EventSocket
from hub.channels.fanout import Channels
from hub.context import Hub

__all__ = ["AdminFeed", "Channels", "channels_part", "websocket_routes"]


@asynccontextmanager
async def channels_part(hub: Hub) -> AsyncIterator[None]:
    channels = Channels(hub)
    feed = AdminFeed(hub, channels)
    hub.parts["channels"] = channels
    hub.parts["admin_feed"] = feed
    await channels.start()
    try:
        yield
    finally:
        await feed.stop()
        await channels.stop()


def websocket_routes() -> list[BaseRoute]:
    return [
        WebSocketRoute("/ws/events/{event_id}", EventSocket()),
        WebSocketRoute("/ws/admin", AdminSocket()),
    ]
