"""The event channel endpoint: its protocol over a real server, in both subprotocols."""

from __future__ import annotations

import asyncio

import msgpack
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from engines.seats import SeatCode
from hub.inventory import Released, ReleaseMode
from hub.settings import Settings
from loadtest.client import WatchClient
from tests.hub.channels.conftest import WsServer, hold, loaded_event, serve

FREE, HELD, SOLD = SeatCode.FREE, SeatCode.HELD, SeatCode.SOLD

pytestmark = pytest.mark.parametrize("subprotocol", ["msgpack", "json"])


async def test_snapshot_then_deltas_keep_seq_continuous(ws: WsServer, subprotocol: str) -> None:
    event_id = await loaded_event(ws.hub)
    client = await WatchClient.open(ws.event_url(event_id), subprotocol=subprotocol)
    try:
        assert client.ws.subprotocol == f"evently.v1.{subprotocol}"
        first = await client.next_seat_message()
        assert first["t"] == "snapshot"
        assert len(client.mirror.seats) == 100 and set(client.mirror.seats) == {FREE}
        assert first["counts"] == {"total": 100, "available": 100, "held": 0, "sold": 0}
        last = 0
        for seat in range(5):
            _, last = await hold(ws.hub, event_id, seat)
            await asyncio.sleep(0.06)  # one tick apart: separate messages
        await asyncio.wait_for(client.until_seq(last), 5)
        assert client.mirror.gaps == 0 and client.mirror.deltas >= 2
        assert list(client.mirror.seats[:6]) == [HELD] * 5 + [FREE]
        live = await ws.hub.inventory.snapshot(event_id)
        assert live is not None and bytes(client.mirror.seats) == live[1]
        counts = await asyncio.wait_for(client.recv(), 5)  # sent right behind its seats
        assert counts["t"] == "counts" and counts["held"] == 5 and counts["seq"] == last
    finally:
        await client.close()


async def test_changes_inside_one_tick_arrive_as_the_last_state(
    settings: Settings, subprotocol: str
) -> None:
    # A 1 s tick: the changes made right after the leading message all fall in the next
    # tick however loaded the machine is (a 50 ms tick let them straddle a boundary).
    slow_tick = settings.replace(ws_tick_ms=1000, ws_max_per_ip=10_000)
    async with serve(slow_tick) as server:
        event_id = await loaded_event(server.hub)
        client = await WatchClient.open(server.event_url(event_id), subprotocol=subprotocol)
        try:
            await client.next_seat_message()
            # the first change after a quiet tick goes out alone, at once (the leading edge)
            _, lead = await hold(server.hub, event_id, 9)
            leading = await asyncio.wait_for(client.next_seat_message(), 5)
            assert leading["t"] == "seats" and leading["seq"] == lead
            assert [tuple(c) for c in leading["changes"]] == [(9, HELD)]
            # the changes right behind it wait for the end of that tick and go out together
            hold_id, _ = await hold(server.hub, event_id, 7)
            released = await server.hub.inventory.release(event_id, hold_id, mode=ReleaseMode.FORCE)
            _, last = await hold(server.hub, event_id, 7, 8)  # seat 7: held, free, held again
            message = await asyncio.wait_for(client.next_seat_message(), 5)
            assert message["t"] == "seats"
            assert message["from"] == lead and message["seq"] == last
            assert last == lead + 4 and isinstance(released, Released)
            assert sorted(map(tuple, message["changes"])) == [(7, HELD), (8, HELD)]
        finally:
            await client.close()


async def test_a_gap_makes_the_client_resync_to_the_right_state(
    ws: WsServer, subprotocol: str
) -> None:
    event_id = await loaded_event(ws.hub)
    client = await WatchClient.open(ws.event_url(event_id), subprotocol=subprotocol)
    try:
        await client.next_seat_message()
        await hold(ws.hub, event_id, 1)
        lost = await asyncio.wait_for(client.recv(), 5)  # received but never applied
        assert lost["t"] == "seats"
        _, last = await hold(ws.hub, event_id, 2)
        await asyncio.wait_for(client.until_seq(last), 5)
        assert client.mirror.gaps == 1 and client.mirror.snapshots == 2
        live = await ws.hub.inventory.snapshot(event_id)
        assert live is not None and bytes(client.mirror.seats) == live[1]
        assert list(client.mirror.seats[:4]) == [FREE, HELD, HELD, FREE]
    finally:
        await client.close()


async def test_ping_unknown_and_invalid_messages(ws: WsServer, subprotocol: str) -> None:
    event_id = await loaded_event(ws.hub)
    client = await WatchClient.open(ws.event_url(event_id), subprotocol=subprotocol)
    try:
        await client.next_seat_message()
        await client.send({"t": "ping"})
        assert (await asyncio.wait_for(client.recv(), 5))["t"] == "pong"
        await client.send({"t": "dance"})
        error = await asyncio.wait_for(client.recv(), 5)
        assert error["t"] == "error" and error["code"] == "unknown_message"
        await client.ws.send(b"\xc1" if subprotocol == "msgpack" else "{nope")
        error = await asyncio.wait_for(client.recv(), 5)
        assert error["t"] == "error" and error["code"] == "bad_message"
        await client.send({"t": "hello", "token": "not-a-token"})
        error = await asyncio.wait_for(client.recv(), 5)
        assert error["t"] == "error" and error["code"] == "unauthorized"
    finally:
        await client.close()


async def test_a_message_over_64_kib_closes_with_1009(ws: WsServer, subprotocol: str) -> None:
    event_id = await loaded_event(ws.hub)
    client = await WatchClient.open(ws.event_url(event_id), subprotocol=subprotocol)
    await client.next_seat_message()
    big = {"t": "hello", "reco": {"pad": "x" * (64 * 1024 + 1)}}
    await client.ws.send(msgpack.packb(big))
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(client.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_a_foreign_origin_is_refused_and_the_own_origin_allowed(
    ws: WsServer, subprotocol: str
) -> None:
    event_id = await loaded_event(ws.hub)
    with pytest.raises(InvalidStatus) as refused:
        await WatchClient.open(
            ws.event_url(event_id), subprotocol=subprotocol, origin="https://evil.example"
        )
    assert refused.value.response.status_code == 403
    own = await WatchClient.open(
        ws.event_url(event_id), subprotocol=subprotocol, origin=f"http://127.0.0.1:{ws.port}"
    )
    assert (await own.next_seat_message())["t"] == "snapshot"
    await own.close()
