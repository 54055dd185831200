"""When a tick's seat changes go out: the leading edge, then at most one message per tick.

A 1 s tick makes the difference between "at once" and "at the end of the tick" far larger
than any scheduling noise of a loaded test machine.
"""

from __future__ import annotations

import asyncio
import time

from hub.settings import Settings
from loadtest.client import WatchClient
from tests.hub.channels.conftest import hold, loaded_event, serve

TICK = 1.0


async def test_first_change_after_a_quiet_tick_arrives_at_once_then_one_message_per_tick(
    settings: Settings,
) -> None:
    slow_tick = settings.replace(ws_tick_ms=int(TICK * 1000), ws_max_per_ip=10_000)
    async with serve(slow_tick) as server:
        event_id = await loaded_event(server.hub)
        client = await WatchClient.open(server.event_url(event_id))
        try:
            snapshot = await asyncio.wait_for(client.next_seat_message(), 5)
            started = time.monotonic()
            _, first_seq = await hold(server.hub, event_id, 1)
            first = await asyncio.wait_for(client.next_seat_message(), 5)
            first_after = time.monotonic() - started
            assert first["t"] == "seats", first
            assert (first["from"], first["seq"]) == (snapshot["seq"], first_seq)
            assert first_after < TICK / 2, f"the leading change took {first_after:.3f} s"

            # right behind it: held back to a tick after the first flush, then together
            await hold(server.hub, event_id, 2)
            _, third_seq = await hold(server.hub, event_id, 3)
            second = await asyncio.wait_for(client.next_seat_message(), 5)
            second_after = time.monotonic() - started
            assert (second["from"], second["seq"]) == (first_seq, third_seq)
            assert sorted(map(tuple, second["changes"])) == [(2, 1), (3, 1)]
            assert second_after >= TICK * 0.9, f"a second message after {second_after:.3f} s"

            # quiet for a tick: the next change leads again
            await asyncio.sleep(TICK * 1.1)
            again = time.monotonic()
            _, fourth_seq = await hold(server.hub, event_id, 4)
            third = await asyncio.wait_for(client.next_seat_message(), 5)
            assert (third["from"], third["seq"]) == (third_seq, fourth_seq)
            assert time.monotonic() - again < TICK / 2
            assert client.mirror.gaps == 0
        finally:
            await client.close()
