"""The waitlist: freed seats offered to its head (on a cancellation, on an expiry), an
offer that lapses passes on, places are distinct and gap-free, and the offered user hears of
the offer live while no one else does."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from hub.context import Hub
from loadtest.client import WatchClient
from tests.conftest import Account, register
from tests.factories import make_event
from tests.hub.api.booking_helpers import (
    API,
    book,
    hold_ok,
    join_waitlist,
    seat_map,
    statuses,
    waitlist_of,
)
from tests.live import WsServer
from tests.waiting import eventually


async def test_waitlist_offer_on_cancellation_then_booked(
    client: httpx.AsyncClient, admin: Account, user: Account, other_user: Account
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=1)  # 2 seats
    booked = await book(client, user, event_id=event["id"], quantity=2)
    assert booked.status_code == 201, booked.text
    joined = await join_waitlist(client, other_user, event["id"], 2)
    assert joined == {"position": 1, "quantity": 2, "status": "waiting"}
    assert (await waitlist_of(client, other_user, event["id"]))["offer"] is None

    cancel = await client.post(f"{API}/bookings/{booked.json()['id']}/cancel", headers=user.headers)
    assert cancel.status_code == 200
    state = await waitlist_of(client, other_user, event["id"])
    assert state["status"] == "offered" and state["offer"] is not None
    offered = {s["id"] for s in state["offer"]["seats"]}
    assert offered == {s["id"] for s in booked.json()["seats"]}
    # The offered seats are held for the offered user, not free for anyone.
    assert {statuses(await seat_map(client, event["id"]))[s] for s in offered} == {"held"}
    taken = await book(client, other_user, hold_id=state["offer"]["hold_id"])
    assert taken.status_code == 201, taken.text
    assert (await waitlist_of(client, other_user, event["id"]))["status"] == "booked"


async def test_waitlist_offer_on_expiry(
    client: httpx.AsyncClient,
    quick: httpx.AsyncClient,
    admin: Account,
    user: Account,
    other_user: Account,
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=1)
    await hold_ok(quick, user, event["id"], quantity=2)  # lasts one second
    await join_waitlist(client, other_user, event["id"], 1)

    async def offered() -> bool:
        return (await waitlist_of(client, other_user, event["id"]))["status"] == "offered"

    assert await eventually(offered, within=3)


async def test_lapsed_offer_passes_on_and_the_user_may_rejoin(
    client: httpx.AsyncClient, quick: httpx.AsyncClient, admin: Account, user: Account
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=1)
    first, second = await register(client), await register(client)
    booked = await book(client, user, event_id=event["id"], quantity=2)
    assert booked.status_code == 201
    assert (await join_waitlist(client, first, event["id"], 2))["position"] == 1
    assert (await join_waitlist(client, second, event["id"], 2))["position"] == 2
    # Cancelled through the one-second-offer hub: the offer to `first` lapses at once.
    cancel = await quick.post(f"{API}/bookings/{booked.json()['id']}/cancel", headers=user.headers)
    assert cancel.status_code == 200
    assert (await waitlist_of(client, first, event["id"]))["status"] == "offered"

    async def passed_on() -> bool:
        return (await waitlist_of(client, second, event["id"]))["status"] == "offered"

    assert await eventually(passed_on, within=4)
    assert (await waitlist_of(client, first, event["id"]))["status"] == "lapsed"
    rejoined = await join_waitlist(client, first, event["id"], 1)
    assert rejoined["status"] == "waiting" and rejoined["position"] == 2  # behind `second`


async def test_leave_and_rejoin(client: httpx.AsyncClient, admin: Account, user: Account) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=1)
    await book(client, await register(client), event_id=event["id"], quantity=2)
    await join_waitlist(client, user, event["id"], 1)
    twice = await client.post(
        f"{API}/events/{event['id']}/waitlist", json={"quantity": 1}, headers=user.headers
    )
    assert twice.status_code == 409
    left = await client.delete(f"{API}/events/{event['id']}/waitlist", headers=user.headers)
    assert left.status_code == 204
    gone = await client.get(f"{API}/events/{event['id']}/waitlist", headers=user.headers)
    assert gone.status_code == 404
    assert (await join_waitlist(client, user, event["id"], 1))["status"] == "waiting"
    too_many = await client.post(
        f"{API}/events/{event['id']}/waitlist", json={"quantity": 0}, headers=user.headers
    )
    assert too_many.status_code == 422


async def test_fifty_concurrent_joins_get_distinct_gap_free_positions(
    client: httpx.AsyncClient, hub: Hub, admin: Account
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=1)
    await book(client, await register(client), event_id=event["id"], quantity=2)
    users = [await register(client) for _ in range(50)]
    joined = await asyncio.gather(*(join_waitlist(client, u, event["id"], 1) for u in users))
    assert sorted(j["position"] for j in joined) == list(range(1, 51))
    stored = await hub.db.fetch(
        "SELECT position FROM waitlist WHERE event_id = $1 ORDER BY position",
        uuid.UUID(event["id"]),
    )
    assert [r["position"] for r in stored] == list(range(1, 51))


async def test_offer_reaches_the_offered_user_live_and_no_one_else(
    client: httpx.AsyncClient,
    short: WsServer,
    admin: Account,
    user: Account,
    other_user: Account,
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=1)
    booked = await book(client, user, event_id=event["id"], quantity=2)
    assert booked.status_code == 201
    await join_waitlist(client, other_user, event["id"], 2)
    mine = await WatchClient.open(short.event_url(event["id"]))
    anyone = await WatchClient.open(short.event_url(event["id"]))
    try:
        await mine.send({"t": "hello", "token": other_user.token})
        await mine.next_seat_message()
        await anyone.next_seat_message()
        await asyncio.sleep(0.2)  # the hello is processed before the offer is made
        cancel = await client.post(
            f"{API}/bookings/{booked.json()['id']}/cancel", headers=user.headers
        )
        assert cancel.status_code == 200

        async def offer_for(watcher: WatchClient) -> dict[str, Any]:
            while True:
                message = await watcher.recv()
                if message.get("t") == "offer":
                    return message

        offer = await asyncio.wait_for(offer_for(mine), 3)
        state = await waitlist_of(client, other_user, event["id"])
        assert offer["hold_id"] == state["offer"]["hold_id"]
        assert {s["id"] for s in offer["seats"]} == {s["id"] for s in booked.json()["seats"]}
        assert "user_id" not in offer
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(offer_for(anyone), 0.5)
    finally:
        await mine.close()
        await anyone.close()
