"""Expiry and reconciliation by the leader: an expired hold is swept within a second and
watchers see it; confirmations a dead process left behind are settled from PostgreSQL."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx

from engines.seats import SeatCode
from hub.context import Hub
from hub.services import expiry
from loadtest.client import WatchClient
from tests.conftest import Account
from tests.factories import make_event
from tests.hub.api.booking_helpers import (
    API,
    hold_ok,
    ids_in,
    iso_ms,
    seat_map,
    statuses,
    write_booking_behind,
)
from tests.live import WsServer


async def test_expired_hold_is_released_within_a_second_and_watchers_see_it(
    client: httpx.AsyncClient,
    quick: httpx.AsyncClient,
    short: WsServer,
    admin: Account,
    user: Account,
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=4)
    seats = await seat_map(client, event["id"])
    seat = ids_in(seats, "Orchestra")[1]
    index = [s["id"] for s in seats].index(seat)
    watcher = await WatchClient.open(short.event_url(event["id"]))
    try:
        await watcher.next_seat_message()
        assert watcher.mirror.seats[index] == SeatCode.FREE  # watched before
        held = await hold_ok(quick, user, event["id"], seat_ids=[seat])
        expires_ms = iso_ms(held["expires_at"])

        async def until(code: int) -> float:
            while watcher.mirror.seats[index] != code:
                await watcher.next_seat_message()
            return time.time() * 1000

        await asyncio.wait_for(until(1), 3)
        seen_free_ms = await asyncio.wait_for(until(0), 5)
        # Swept within a second of the expiry (the leader sweeps four times a second).
        assert seen_free_ms - expires_ms < 1000, seen_free_ms - expires_ms
        assert watcher.mirror.gaps == 0
    finally:
        await watcher.close()
    assert statuses(await seat_map(client, event["id"]))[seat] == "free"
    gone = await quick.get(f"{API}/holds/{held['hold_id']}", headers=user.headers)
    assert gone.status_code == 410


async def test_confirmations_left_behind_are_settled_from_postgresql(
    client: httpx.AsyncClient, hub: Hub, admin: Account, user: Account
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=4)
    event_id = uuid.UUID(event["id"])
    seats = await seat_map(client, event["id"])
    ids = ids_in(seats, "Orchestra")
    index = {s["id"]: i for i, s in enumerate(seats)}
    owner = uuid.UUID(user.id)

    # A process marks two holds confirming and dies: one before its transaction committed,
    # one after (the booking is in PostgreSQL, Redis never heard).
    lost = await hold_ok(client, user, event["id"], seat_ids=ids[:2])
    committed = await hold_ok(client, user, event["id"], seat_ids=ids[2:])
    for held in (lost, committed):
        started = await hub.inventory.begin_confirm(event_id, uuid.UUID(held["hold_id"]), owner)
        assert not isinstance(started, str)
    row = await write_booking_behind(hub, event_id, owner, uuid.UUID(committed["hold_id"]), ids[2:])
    # Not stuck yet: left alone.
    assert await expiry.reconcile_stuck(hub, [event_id]) == 0
    assert await expiry.reconcile_stuck(hub, [event_id], stuck_after_ms=0) == 2
    after = await seat_map(client, event["id"])
    assert [after[index[s]]["status"] for s in ids] == ["free", "free", "sold", "sold"]
    assert await hub.inventory.hold_ids(event_id) == []
    listed = await client.get(f"{API}/bookings", headers=user.headers)
    assert [b["id"] for b in listed.json()["items"]] == [str(row["id"])]
