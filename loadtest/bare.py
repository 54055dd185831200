"""The baseline: a bare ``websockets.broadcast()`` server sending the same frames.

It subscribes the same Redis channel, keeps the same conflated mirror and the same flush
rule (leading edge, then at most one flush per tick counted from the previous flush's
start), encodes each tick's ``seats`` (and ``counts``) message once, and hands it to
``websockets.broadcast`` — the library's own non-blocking fan-out. No auth, no caps, no
slow-client handling: just the send path the hub is compared with.

Its input is the hub's own pub/sub link (``hub.channels.subscriber``: a raw asyncio stream
and the hiredis parser), so the two servers pay the same, small price per published change.
It used redis-py's ``PubSub.listen()`` before: that loop fell behind under load, the bare
server conflated into fewer, larger ticks, and the comparison measured its input, not its
send path.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from typing import Any

import msgpack
import redis.asyncio as aioredis
import websockets
from websockets.asyncio.server import ServerConnection, serve

from engines.seats import count_seats
from hub.channels.mirror import Applied, Mirror
from hub.channels.subscriber import Subscriber
from hub.inventory import Inventory
from hub.store import Keys


async def main(redis_url: str, prefix: str, event_id: uuid.UUID, port: int, tick: float) -> None:
    client = aioredis.Redis.from_url(redis_url)
    inventory = Inventory(client, Keys(prefix))
    channel = inventory.channel(event_id)
    conns: set[ServerConnection] = set()
    loop = asyncio.get_running_loop()
    mirror: Mirror | None = None
    early: list[dict[str, Any]] = []  # published between subscribing and the snapshot
    last_flush = float("-inf")
    flush_handle: asyncio.Handle | None = None

    async def handler(ws: ServerConnection) -> None:
        assert mirror is not None
        seq, seats = mirror.flushed_state()
        snapshot = {"t": "snapshot", "seq": seq, "seats": seats, "prices": {}}
        await ws.send(msgpack.packb({**snapshot, "counts": count_seats(seats)}))
        conns.add(ws)
        try:
            await ws.wait_closed()
        finally:
            conns.discard(ws)

    def flush() -> None:
        nonlocal flush_handle, last_flush
        flush_handle = None
        assert mirror is not None
        tick_ = mirror.take_tick()
        if tick_ is None:
            return
        last_flush = loop.time()
        seats = {"t": "seats", "from": tick_.from_seq, "seq": tick_.seq, "changes": tick_.changes}
        counts = {"t": "counts", "seq": tick_.seq, **count_seats(mirror.seats)}
        websockets.broadcast(conns, msgpack.packb(seats))
        websockets.broadcast(conns, msgpack.packb(counts))

    def apply(body: dict[str, Any]) -> None:
        nonlocal flush_handle
        assert mirror is not None
        outcome = mirror.apply(body["seq"], body["changes"])
        if outcome is Applied.GAP:
            raise RuntimeError(f"bare server: a gap at seq {mirror.seq}, got {body['seq']}")
        if outcome is Applied.APPLIED and flush_handle is None:
            due = last_flush + tick
            if due <= loop.time():
                flush_handle = loop.call_soon(flush)
            else:
                flush_handle = loop.call_at(due, flush)

    def on_message(name: bytes, data: bytes) -> None:
        body: dict[str, Any] = msgpack.unpackb(data)
        if body.get("t") != "seats":
            return
        if mirror is None:
            early.append(body)
        else:
            apply(body)

    def on_link(up: bool) -> None:
        if not up:
            print("bare server: pub/sub link lost", file=sys.stderr, flush=True)

    subscriber = Subscriber(redis_url, f"{prefix}bare:control", on_message, on_link)
    await subscriber.start()
    await subscriber.subscribe(channel)
    snap = await inventory.snapshot(event_id)
    assert snap is not None
    mirror = Mirror(*snap)
    for body in early:
        apply(body)
    async with serve(handler, "127.0.0.1", port, compression=None, max_queue=16):
        print("ready", flush=True)
        await asyncio.Event().wait()  # until terminated


if __name__ == "__main__":
    cpus = os.environ.get("BARE_CPUS")
    if cpus:
        os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})
    import uvloop

    url, prefix, event, port_, tick_ms = sys.argv[1:6]
    uvloop.run(main(url, prefix, uuid.UUID(event), int(port_), int(tick_ms) / 1000))
