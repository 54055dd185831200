"""The admin channel: non-admins are refused with 4403, admins get the metrics stream."""

from __future__ import annotations

import asyncio

import pytest
from websockets.exceptions import ConnectionClosed

from loadtest.client import WatchClient
from tests.hub.channels.conftest import WsServer

pytestmark = pytest.mark.parametrize("subprotocol", ["msgpack", "json"])


async def test_the_admin_channel_refuses_non_admins_with_4403(
    ws: WsServer, subprotocol: str, client: object, user: object
) -> None:
    for hello in ({"t": "hello"}, {"t": "hello", "token": user.token}):  # type: ignore[attr-defined]
        conn = await WatchClient.open(ws.url("/ws/admin"), subprotocol=subprotocol)
        await conn.send(hello)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(conn.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_the_admin_channel_streams_metrics(
    ws: WsServer, subprotocol: str, admin: object
) -> None:
    conn = await WatchClient.open(ws.url("/ws/admin"), subprotocol=subprotocol)
    try:
        await conn.send({"t": "hello", "token": admin.token})  # type: ignore[attr-defined]
        message = await asyncio.wait_for(conn.recv(), 5)
        assert message["t"] == "metrics"
        for key in ("connections", "deliveries_per_s", "holds_per_s", "bookings_per_s"):
            assert key in message
        assert message["redis"]["ok"] and message["postgres"]["ok"]
    finally:
        await conn.close()
