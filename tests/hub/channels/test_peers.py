"""Clients that stop reading while megabytes are queued for them: the others do not wait,
and the stalled ones are dropped."""

from __future__ import annotations

import asyncio
import time

from hub import metrics
from loadtest.client import WatchClient
from tests.hub.channels.conftest import WsServer, hold, loaded_event

N_SEATS = 20_000  # a 20 KB msgpack / ~40 KB JSON snapshot


async def test_stalled_clients_do_not_delay_others_and_are_dropped(ws: WsServer) -> None:
    event_id = await loaded_event(ws.hub, N_SEATS)
    fast = await WatchClient.open(ws.event_url(event_id), subprotocol="msgpack")
    await fast.next_seat_message()
    # Stalled clients: they never read (max_queue=1 stops reading from the socket, so the
    # kernel buffers fill up and the server's transport buffers grow) but keep asking for
    # snapshots, tens of megabytes of them: loopback sockets can absorb ~10 MB in kernel
    # buffers before the server's own buffer grows at all.
    slow = [
        await WatchClient.open(ws.event_url(event_id), subprotocol="json", max_queue=1)
        for _ in range(3)
    ]
    for client in slow:
        for _ in range(600):
            await client.send({"t": "resync"})
    dropped_before = metrics.total(metrics.WS_DROPPED, action="closed")
    channel = ws.hub.channels.events[event_id]
    worst = 0.0
    seat = 0
    # Filling ~30 MB of buffers takes the hub a few seconds on a loaded machine before the
    # ``ws_behind_seconds`` clock even starts: the loop ends as soon as they are dropped
    # (50 seats a round, each round 50 ms or more: the 20,000 seats outlast the deadline).
    deadline = time.monotonic() + ws.settings.ws_behind_seconds + 12
    while time.monotonic() < deadline and len(channel.peers) > 1:
        started = time.monotonic()
        _, seq = await hold(ws.hub, event_id, *range(seat, seat + 50))
        seat += 50
        await asyncio.wait_for(fast.until_seq(seq), 5)
        worst = max(worst, time.monotonic() - started)
        await asyncio.sleep(0.05)
    assert fast.mirror.gaps == 0
    assert worst < 1.0, f"the fast client waited {worst:.2f}s for a change"
    assert list(channel.peers) != [] and len(channel.peers) == 1, "stalled clients still there"
    assert metrics.total(metrics.WS_DROPPED, action="closed") - dropped_before == 3
    live = await ws.hub.inventory.snapshot(event_id)
    assert live is not None and bytes(fast.mirror.seats) == live[1]
    await fast.close()
    for client in slow:
        client.ws.transport.abort()
