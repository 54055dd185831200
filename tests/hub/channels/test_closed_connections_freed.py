"""A closed event socket is freed by reference counting alone, without the cyclic
collector: the hub freezes the collector's view of a crowd (``fanout._tune_gc``), so a
connection that waits for a full collection stays for as long as the crowd lasts (issue 18
item 7: ~7 KB kept for each of 1,000 dead watchers, a step each time a batch died)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import uuid
import weakref
from collections.abc import AsyncIterator

import pytest
from websockets.server import ServerProtocol

from hub.channels import fanout
from hub.channels.peers import DirectProtocol
from hub.settings import Settings
from loadtest.client import WatchClient
from tests.hub.channels.conftest import loaded_event
from tests.hub.channels.test_ws_faults import _serve
from tests.waiting import eventually


def _alive() -> tuple[int, int]:
    """Connections alive: uvicorn's protocols, and the sans-I/O connections they drive."""
    objects = gc.get_objects()
    return (
        sum(1 for o in objects if isinstance(o, DirectProtocol)),
        sum(1 for o in objects if isinstance(o, ServerProtocol)),
    )


def _plus(counts: tuple[int, int], n: int) -> tuple[int, int]:
    return counts[0] + n, counts[1] + n


@contextlib.asynccontextmanager
async def _collector_off(settings: Settings) -> AsyncIterator[tuple[int, uuid.UUID]]:
    """A hub serving an event of 100 seats (its port and the event), with the cyclic
    collector off for the block: whatever is freed, reference counting freed."""
    async with _serve(settings.replace(ws_max_per_ip=10_000)) as (hub, port):
        event_id = await loaded_event(hub, 100)
        gc.collect()
        gc.disable()
        try:
            yield port, event_id
        finally:
            gc.enable()


async def test_closed_connections_do_not_wait_for_the_cyclic_collector(
    settings: Settings,
) -> None:
    async with _collector_off(settings) as (port, event_id):
        before = _alive()
        clients = [
            await WatchClient.open(f"ws://127.0.0.1:{port}/ws/events/{event_id}") for _ in range(6)
        ]
        for client in clients:
            await client.next_seat_message()
        assert _alive() == _plus(before, 6)
        for client in clients[:3]:
            await client.close()  # a close handshake
        clients[3].ws.transport.abort()  # gone without one
        # Only the two still open are left, with no collection run.
        assert await eventually(lambda: _alive() == _plus(before, 2), within=10), _alive()
        for client in clients[4:]:
            await client.close()
        assert await eventually(lambda: _alive() == before, within=10), _alive()
        await asyncio.sleep(0)


async def test_a_connection_closed_for_a_missed_pong_does_not_wait_for_the_collector(
    settings: Settings,
) -> None:
    """The hub fails a client that stops answering pings (stalled or vanished): the
    sans-I/O protocol's parser then waits, for good, for an end of stream that never comes,
    and its suspended generator points back at the protocol."""
    async with _collector_off(settings) as (port, event_id):
        before = _alive()
        client = await WatchClient.open(
            f"ws://127.0.0.1:{port}/ws/events/{event_id}", ping_interval=None
        )
        try:
            await client.next_seat_message()
            assert _alive() == _plus(before, 1)
            client.ws.transport.pause_reading()  # no pong from now on
            assert await eventually(lambda: _alive() == before, within=10), _alive()
        finally:
            client.ws.transport.abort()
            await asyncio.sleep(0)


class _Node:
    """A cycle of one: garbage only the collector can free."""

    def __init__(self) -> None:
        self.me = self


async def test_a_freeze_takes_no_garbage_with_it(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``gc.freeze`` moves every tracked object out of the collector's reach, garbage not
    yet collected too (each upgraded connection leaves its HTTP protocol in a cycle): the
    hub collects first, so what was garbage at a freeze is not kept for as long as the
    crowd lasts."""
    async with _serve(settings) as (hub, _):
        monkeypatch.setattr(fanout, "FREEZE_ABOVE_WATCHERS", 0)  # freeze for no crowd
        gc.disable()
        try:
            garbage = weakref.ref(_Node())
            assert garbage() is not None
            hub.channels._frozen_at = float("-inf")
            hub.channels._tune_gc()
            assert hub.channels._frozen_at > float("-inf"), "no freeze"
            assert garbage() is None, "garbage frozen"
        finally:
            gc.unfreeze()
            gc.enable()
            hub.channels._frozen_at_watchers = 0
