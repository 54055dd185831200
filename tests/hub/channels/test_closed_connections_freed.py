"""A closed event socket is freed by reference counting alone, without the cyclic
collector: the hub freezes the collector's view of a crowd (``fanout._tune_gc``), so a
connection that waits for a full collection stays for as long as the crowd lasts (issue 18
item 7: ~7 KB kept for each of 1,000 dead watchers, a step each time a batch died)."""

from __future__ import annotations

import asyncio
import gc

from hub.channels.peers import DirectProtocol
from hub.settings import Settings
from loadtest.client import WatchClient
from tests.hub.channels.conftest import loaded_event
from tests.hub.channels.test_ws_faults import _serve
from tests.waiting import eventually


def _alive() -> int:
    return sum(1 for o in gc.get_objects() if isinstance(o, DirectProtocol))


async def test_closed_connections_do_not_wait_for_the_cyclic_collector(
    settings: Settings,
) -> None:
    async with _serve(settings.replace(ws_max_per_ip=10_000)) as (hub, port):
        event_id = await loaded_event(hub, 100)
        gc.collect()
        gc.disable()
        try:
            before = _alive()
            clients = [
                await WatchClient.open(f"ws://127.0.0.1:{port}/ws/events/{event_id}")
                for _ in range(6)
            ]
            for client in clients:
                await client.next_seat_message()
            assert _alive() == before + 6
            for client in clients[:3]:
                await client.close()  # a close handshake
            clients[3].ws.transport.abort()  # gone without one
            # Only the two still open are left, with no collection run.
            assert await eventually(lambda: _alive() == before + 2, within=10), _alive()
            for client in clients[4:]:
                await client.close()
            assert await eventually(lambda: _alive() == before, within=10), _alive()
        finally:
            gc.enable()
        await asyncio.sleep(0)
