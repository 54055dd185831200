"""Personal waiting-room messages on the event channel, over a real server: ``queue`` at
least every 2 s while waiting, ``admitted`` with a token that holds, ``sold_out`` to
everyone still waiting."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from typing import Any

import httpx
import pytest

from hub.services import bookings, waiting_room
from hub.services.bookings import BookingRequest
from loadtest.client import WatchClient
from tests.conftest import Account, register
from tests.factories import make_event
from tests.hub.channels.conftest import WsServer


def _at(seconds: float) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)).isoformat()


@pytest.fixture
async def http(ws: WsServer) -> Any:
    async with httpx.AsyncClient(base_url=ws.base) as client:
        yield client


@pytest.fixture
async def boss(http: httpx.AsyncClient, admin_credentials: tuple[str, str]) -> Account:
    email, password = admin_credentials
    login = await http.post("/api/v1/auth/login", json={"email": email, "password": password})
    body = login.json()
    return Account(body["user"]["id"], email, password, body["access_token"])


async def _next(client: WatchClient, kind: str, within: float = 10.0) -> dict[str, Any]:
    """The next message of ``kind`` (seat traffic in between is skipped)."""

    async def wait() -> dict[str, Any]:
        while True:
            message = await client.recv()
            if message["t"] == kind:
                return message

    return await asyncio.wait_for(wait(), within)


@pytest.mark.parametrize("subprotocol", ["msgpack", "json"])
async def test_a_waiter_gets_queue_updates_then_admitted(
    ws: WsServer, http: httpx.AsyncClient, boss: Account, subprotocol: str
) -> None:
    event = await make_event(http, boss)
    room = f"/api/v1/events/{event['id']}/waiting-room"
    await http.put(room, json={"opens_at": _at(600)}, headers=boss.headers)
    buyer = await register(http)
    queue = f"/api/v1/events/{event['id']}/queue"
    assert (await http.post(queue, headers=buyer.headers)).status_code == 201

    client = await WatchClient.open(ws.event_url(event["id"]), subprotocol=subprotocol)
    try:
        await client.send({"t": "hello", "token": buyer.token})
        loop = asyncio.get_running_loop()
        first = await _next(client, "queue")
        assert first == {
            "t": "queue",
            "status": "waiting",
            "position": None,
            "ahead": None,
            "eta_seconds": None,
        }
        # Unchanged, it still comes again within 2 s, each time.
        last = loop.time()
        for _ in range(2):
            again = await _next(client, "queue", within=2.5)
            now = loop.time()
            assert now - last <= 2.0 and again["status"] == "waiting"
            last = now

        await http.put(
            room, json={"opens_at": _at(-0.001), "admit_per_second": 100}, headers=boss.headers
        )
        admitted = await _next(client, "admitted")
        assert set(admitted) == {"t", "token", "expires_at"}
        held = await http.post(
            f"/api/v1/events/{event['id']}/holds",
            json={"quantity": 1},
            headers={**buyer.headers, "X-Admission-Token": admitted["token"]},
        )
        assert held.status_code == 201, held.text
    finally:
        await client.close()


async def test_everyone_waiting_hears_sold_out(
    ws: WsServer, http: httpx.AsyncClient, boss: Account
) -> None:
    event = await make_event(http, boss, rows=1, seats_per_row=2)  # 4 seats
    event_id = uuid.UUID(event["id"])
    room = f"/api/v1/events/{event['id']}/waiting-room"
    await http.put(room, json={"opens_at": _at(600)}, headers=boss.headers)
    waiters = [await register(http) for _ in range(2)]
    clients = []
    try:
        for waiter in waiters:
            joined = await http.post(f"/api/v1/events/{event['id']}/queue", headers=waiter.headers)
            assert joined.status_code == 201
            client = await WatchClient.open(ws.event_url(event_id))
            await client.send({"t": "hello", "token": waiter.token})
            await _next(client, "queue")
            clients.append(client)
        buyer = uuid.UUID(boss.id)
        await waiting_room.join(ws.hub, buyer, event_id)
        stored = await waiting_room.read_room(ws.hub, event_id)
        assert stored is not None and await waiting_room.admit(ws.hub, stored, [buyer]) == 1
        token = (await waiting_room.place(ws.hub, buyer, event_id))["token"]
        await bookings.create_booking(
            ws.hub, buyer, BookingRequest(event_id=event_id, quantity=4, admission_token=token)
        )
        await http.put(room, json={"opens_at": _at(-0.001)}, headers=boss.headers)
        for client in clients:
            assert await _next(client, "sold_out") == {"t": "sold_out"}
    finally:
        for client in clients:
            await client.close()


async def _drain(client: WatchClient, seconds: float) -> list[dict[str, Any]]:
    """Every message that arrives within ``seconds``."""
    got: list[dict[str, Any]] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while True:
                got.append(await client.recv())
    return got


async def test_a_waiter_gets_no_seat_stream_until_admitted_then_a_snapshot_first(
    ws: WsServer, http: httpx.AsyncClient, boss: Account
) -> None:
    """The queue view shows no seat map: a waiting user's connection is sent no seat
    changes (an anonymous watcher's is); once admitted it gets a fresh snapshot before
    ``admitted``, then the seat stream again."""
    event = await make_event(http, boss, rows=1, seats_per_row=5)
    event_id = uuid.UUID(event["id"])
    room = f"/api/v1/events/{event['id']}/waiting-room"
    await http.put(room, json={"opens_at": _at(600)}, headers=boss.headers)
    waiter = await register(http)
    queue = f"/api/v1/events/{event['id']}/queue"
    assert (await http.post(queue, headers=waiter.headers)).status_code == 201
    # The admin shops meanwhile, admitted by hand.
    await waiting_room.join(ws.hub, uuid.UUID(boss.id), event_id)
    stored = await waiting_room.read_room(ws.hub, event_id)
    assert stored is not None and await waiting_room.admit(ws.hub, stored, [uuid.UUID(boss.id)])
    token = (await waiting_room.place(ws.hub, uuid.UUID(boss.id), event_id))["token"]
    shopper = {**boss.headers, "X-Admission-Token": token}
    holds = f"/api/v1/events/{event['id']}/holds"

    waiting = await WatchClient.open(ws.event_url(event_id))
    watcher = await WatchClient.open(ws.event_url(event_id))
    try:
        await waiting.send({"t": "hello", "token": waiter.token})
        await _next(waiting, "queue")
        await _next(watcher, "snapshot")
        held = await http.post(holds, json={"quantity": 2}, headers=shopper)
        assert held.status_code == 201, held.text
        assert (await _next(watcher, "seats"))["changes"]
        heard = await _drain(waiting, 1.5)
        assert {m["t"] for m in heard} == {"queue"}, heard

        await http.put(
            room, json={"opens_at": _at(-0.001), "admit_per_second": 100}, headers=boss.headers
        )
        before: list[dict[str, Any]] = []
        while not before or before[-1]["t"] != "admitted":
            before.append(await asyncio.wait_for(waiting.recv(), 10))
        snapshots = [m for m in before if m["t"] == "snapshot"]
        assert len(snapshots) == 1, before
        assert list(snapshots[0]["seats"]).count(1) == 2  # the admin's two held seats

        again = await http.post(holds, json={"quantity": 1}, headers=shopper)
        assert again.status_code == 201, again.text
        assert (await _next(waiting, "seats"))["seq"] > snapshots[0]["seq"]
    finally:
        await waiting.close()
        await watcher.close()
