"""Parked event connections (``EventSocket`` over uvicorn's protocol): once watching, a
connection has no task of its own, yet still answers every message, and its end gives back
everything it held."""

from __future__ import annotations

import asyncio
import json

from websockets.asyncio.client import ClientConnection, connect

from hub import metrics
from tests.hub.channels.conftest import WsServer, loaded_event
from tests.waiting import eventually

SOCKETS = 40


def _app_tasks() -> int:
    """Tasks running an ASGI app for a WebSocket connection (uvicorn's ``run_asgi``)."""
    count = 0
    for task in asyncio.all_tasks():
        coro = task.get_coro()
        if "run_asgi" in getattr(coro, "__qualname__", ""):
            count += 1
    return count


async def _recv(ws: ClientConnection) -> dict[str, object]:
    return dict(json.loads(await asyncio.wait_for(ws.recv(), 10)))


async def test_watchers_hold_no_task_and_still_answer(ws: WsServer) -> None:
    event_id = await loaded_event(ws.hub)
    gauge = metrics.WS_CONNECTIONS.labels("events")
    connections_before = gauge._value.get()
    tasks_before = _app_tasks()
    clients = [
        await connect(ws.event_url(event_id), subprotocols=["evently.v1.json"], ping_interval=None)  # type: ignore[list-item]
        for _ in range(SOCKETS)
    ]
    try:
        for client in clients:
            assert (await _recv(client))["t"] == "snapshot"
            await client.send(json.dumps({"t": "hello"}))
            await client.send(json.dumps({"t": "ping"}))
            assert (await _recv(client))["t"] == "pong"
        assert gauge._value.get() == connections_before + SOCKETS
        assert len(ws.hub.channels.events[event_id].peers) == SOCKETS
        # Every connection is watching and has answered; none keeps an app task.
        assert _app_tasks() - tasks_before < SOCKETS // 4

        # Parked again after each message: later ones are still handled, in order.
        for client in clients[:5]:
            await client.send(json.dumps({"t": "resync"}))
            await client.send("not json")
            await client.send(json.dumps({"t": "ping"}))
        for client in clients[:5]:
            assert (await _recv(client))["t"] == "snapshot"
            assert (await _recv(client))["t"] == "error"
            assert (await _recv(client))["t"] == "pong"
    finally:
        await asyncio.gather(*(c.close() for c in clients))

    # Their end gives back the channel, the gauge and the per-address places.
    assert await eventually(lambda: event_id not in ws.hub.channels.events, within=10)
    assert await eventually(lambda: gauge._value.get() == connections_before, within=10)
    assert _app_tasks() - tasks_before < SOCKETS // 4


async def test_a_parked_watcher_closed_by_the_hub_is_ended(ws: WsServer) -> None:
    """A close from the hub side (here a message over the size limit, 1009) wakes the
    parked connection, which then stops watching."""
    event_id = await loaded_event(ws.hub)
    client = await connect(ws.event_url(event_id), subprotocols=["evently.v1.json"], max_size=None)  # type: ignore[list-item]
    try:
        assert (await _recv(client))["t"] == "snapshot"
        assert len(ws.hub.channels.events[event_id].peers) == 1
        await client.send("x" * (65 * 1024))
        await asyncio.wait_for(client.wait_closed(), 10)
        assert client.close_code == 1009
    finally:
        await client.close()
    assert await eventually(lambda: event_id not in ws.hub.channels.events, within=10)
