"""The baseline: a bare ``websockets.broadcast()`` server sending the same frames.

It subscribes the same Redis channel, keeps the same conflated mirror and tick, encodes
each tick's ``seats`` (and ``counts``) message once, and hands it to
``websockets.broadcast`` — the library's own non-blocking fan-out. No auth, no caps, no
slow-client handling: just the send path the hub is compared with.
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

from hub.channels.mirror import Applied, Mirror, counts_of
from hub.inventory import Inventory
from hub.store import Keys


async def main(redis_url: str, prefix: str, event_id: uuid.UUID, port: int, tick: float) -> None:
    client = aioredis.Redis.from_url(redis_url)
    inventory = Inventory(client, Keys(prefix))
    pubsub = client.pubsub()
    await pubsub.subscribe(inventory.channel(event_id))
    snap = await inventory.snapshot(event_id)
    assert snap is not None
    mirror = Mirror(*snap)
    conns: set[ServerConnection] = set()
    loop = asyncio.get_running_loop()

    def counts_map(seats: bytes | bytearray) -> dict[str, int]:
        total, available, held, sold = counts_of(seats)
        return {"total": total, "available": available, "held": held, "sold": sold}

    async def handler(ws: ServerConnection) -> None:
        seq, seats = mirror.flushed_state()
        snapshot = {"t": "snapshot", "seq": seq, "seats": seats, "prices": {}}
        await ws.send(msgpack.packb({**snapshot, "counts": counts_map(seats)}))
        conns.add(ws)
        try:
            await ws.wait_closed()
        finally:
            conns.discard(ws)

    def flush() -> None:
        tick_ = mirror.take_tick()
        if tick_ is None:
            return
        seats = {"t": "seats", "from": tick_.from_seq, "seq": tick_.seq, "changes": tick_.changes}
        counts = {"t": "counts", "seq": tick_.seq, **counts_map(mirror.seats)}
        websockets.broadcast(conns, msgpack.packb(seats))
        websockets.broadcast(conns, msgpack.packb(counts))

    async with serve(handler, "127.0.0.1", port, compression=None, max_queue=16):
        print("ready", flush=True)
        async for message in pubsub.listen():
            if message["type"] != "message":
                continue
            body: dict[str, Any] = msgpack.unpackb(message["data"])
            if body["t"] == "seats":
                if mirror.apply(body["seq"], body["changes"]) is Applied.APPLIED:
                    loop.call_later(tick, flush)


if __name__ == "__main__":
    cpus = os.environ.get("BARE_CPUS")
    if cpus:
        os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})
    import uvloop

    url, prefix, event, port_, tick_ms = sys.argv[1:6]
    uvloop.run(main(url, prefix, uuid.UUID(event), int(port_), int(tick_ms) / 1000))
