"""Waiting-room use cases against real Redis and PostgreSQL: fairness of the places drawn
at opening, first come first served after it, a restart that keeps every place, sessions
that run out unused, and the sell-out."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import numpy as np

from hub.app import create_app
from hub.context import Hub
from hub.db import Database
from hub.services import admission, bookings, cancellation, holds, waiting_room
from hub.services.bookings import BookingRequest
from hub.settings import Settings
from tests.conftest import Account, register
from tests.factories import make_event
from tests.live import free_port
from tests.waiting import eventually

# A rate so small that the leader admits nobody while a test looks at the queue.
TRICKLE = 1e-6


def _in(seconds: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)


def _spearman(a: list[int], b: list[int]) -> float:
    ra = np.argsort(np.argsort(a)).astype(float)
    rb = np.argsort(np.argsort(b)).astype(float)
    return float(np.corrcoef(ra, rb)[0, 1])


async def _positions(hub: Hub, event_id: uuid.UUID, users: list[uuid.UUID]) -> list[int]:
    room = await waiting_room.read_room(hub, event_id)
    assert room is not None
    places = await waiting_room.places_of(hub, room, users)
    return [places[u]["position"] for u in users]


async def test_early_crowd_is_shuffled_at_opening_and_later_arrivals_queue_in_order(
    hub: Hub, client: httpx.AsyncClient, admin: Account
) -> None:
    event_id = uuid.UUID((await make_event(client, admin))["id"])
    await waiting_room.configure(hub, event_id, _in(600), TRICKLE, None)
    early = [uuid.uuid4() for _ in range(1200)]  # over the places script's 1,000 a step
    for user in early:
        place, created = await waiting_room.join(hub, user, event_id)
        assert created and place["position"] is None and place["status"] == "waiting"
    await waiting_room.configure(hub, event_id, _in(-0.001), TRICKLE, None)  # opens now
    late = [uuid.uuid4() for _ in range(40)]
    for user in late:
        place, _ = await waiting_room.join(hub, user, event_id)
        assert place["position"] is not None

    early_positions = await _positions(hub, event_id, early)
    assert sorted(early_positions) == list(range(1, len(early) + 1))
    # Join order tells nothing about the place: under a uniform shuffle rho has a standard
    # deviation of 1/sqrt(n-1) = 0.03 here; 0.12 is four of them.
    rho = _spearman(list(range(len(early))), early_positions)
    assert abs(rho) < 0.12, rho
    # The draw is not a near-identity either: most people moved far.
    moved = np.abs(np.array(early_positions) - np.arange(1, len(early) + 1))
    assert np.median(moved) > len(early) / 10
    late_positions = await _positions(hub, event_id, late)
    assert late_positions == list(range(len(early) + 1, len(early) + len(late) + 1))
    room = await waiting_room.read_room(hub, event_id)
    assert room is not None
    stranger = uuid.uuid4()
    mixed = await waiting_room.places_of(hub, room, [late[-1], stranger, early[0]])
    assert set(mixed) == {late[-1], early[0]}  # who never joined is left out
    one = await waiting_room.place(hub, late[0], event_id)
    assert one["ahead"] == len(early) and one["eta_seconds"] is not None


async def test_a_restarted_hub_keeps_every_place(
    hub: Hub, settings: Settings, client: httpx.AsyncClient, admin: Account
) -> None:
    event_id = uuid.UUID((await make_event(client, admin))["id"])
    await waiting_room.configure(hub, event_id, _in(-1), TRICKLE, None)
    users = [uuid.uuid4() for _ in range(20)]
    before = {}
    for user in users:
        place, _ = await waiting_room.join(hub, user, event_id)
        before[user] = (place["queue_id"], place["position"])
    fresh = create_app(settings, leader_loops=[])
    async with fresh.router.lifespan_context(fresh):
        other: Hub = fresh.state.hub
        for user in users:
            place = await waiting_room.place(other, user, event_id)
            assert (place["queue_id"], place["position"]) == before[user]
        assert await eventually(lambda: other.rooms.check(event_id) is True)


async def test_an_unused_session_expires_and_rejoining_goes_to_the_back(
    hub: Hub, client: httpx.AsyncClient, admin: Account
) -> None:
    event_id = uuid.UUID((await make_event(client, admin))["id"])
    await waiting_room.configure(hub, event_id, _in(600), 50.0, 1)  # 1 s sessions
    first, second = uuid.uuid4(), uuid.uuid4()
    await waiting_room.join(hub, first, event_id)
    await waiting_room.join(hub, second, event_id)
    await waiting_room.configure(hub, event_id, _in(-0.001), 50.0, 1)

    async def has(status: str) -> bool:
        return bool((await waiting_room.place(hub, first, event_id))["status"] == status)

    assert await eventually(lambda: has("admitted"), within=10)
    assert await eventually(lambda: has("expired"), within=10)
    view = await waiting_room.get_room(hub, event_id)
    assert view["admitted"] == 2
    # Back in the queue, behind anyone waiting; a new place, a new queue id.
    old = await waiting_room.place(hub, first, event_id)
    again, created = await waiting_room.join(hub, first, event_id)
    assert created and again["queue_id"] != old["queue_id"]
    assert again["status"] in ("waiting", "admitted")  # the leader may let it in again at once


async def test_the_controller_step_admits_at_a_fixed_rate_in_queue_order(
    hub: Hub, client: httpx.AsyncClient, admin: Account
) -> None:
    """One step driven by hand: with the room scheduled the leader leaves it alone, and the
    step is given a dt of its own."""
    event_id = uuid.UUID((await make_event(client, admin))["id"])
    await waiting_room.configure(hub, event_id, _in(-1), 4.0, None)
    users = [uuid.uuid4() for _ in range(10)]
    for user in users:
        await waiting_room.join(hub, user, event_id)
    config = admission.controller_config(hub)
    control = admission._Control(admission.initial_state(config))
    control.last = time.monotonic() - 0.5  # half a second at 4/s: two admissions
    admitted = await admission.step(hub, event_id, control, None, config)
    statuses = [(await waiting_room.place(hub, u, event_id))["status"] for u in users]
    # The leader may have stepped too: whoever was admitted is a prefix of the queue.
    assert admitted >= 1
    count = statuses.count("admitted")
    assert statuses[:count] == ["admitted"] * count and "admitted" not in statuses[count:]


async def test_sold_out_tells_everyone_waiting(
    hub: Hub, client: httpx.AsyncClient, admin: Account
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=2)  # 4 seats
    event_id = uuid.UUID(event["id"])
    buyer = await register(client)
    buyer_id = uuid.UUID(buyer.id)
    await waiting_room.configure(hub, event_id, _in(600), TRICKLE, None)
    waiters = [uuid.uuid4() for _ in range(3)]
    await waiting_room.join(hub, buyer_id, event_id)
    for user in waiters:
        await waiting_room.join(hub, user, event_id)
    room = await waiting_room.read_room(hub, event_id)
    assert room is not None
    assert await waiting_room.admit(hub, room, [buyer_id]) == 1
    token = (await waiting_room.place(hub, buyer_id, event_id))["token"]
    booked = await bookings.create_booking(
        hub, buyer_id, BookingRequest(event_id=event_id, quantity=4, admission_token=token)
    )
    assert isinstance(booked, dict) and len(booked["seats"]) == 4
    await waiting_room.configure(hub, event_id, _in(-0.001), TRICKLE, None)

    async def all_sold_out() -> bool:
        places = [await waiting_room.place(hub, u, event_id) for u in waiters]
        return all(p["status"] == "sold_out" for p in places)

    assert await eventually(all_sold_out, within=10)
    assert (await waiting_room.get_room(hub, event_id))["waiting"] == 0
    late, _ = await waiting_room.join(hub, uuid.uuid4(), event_id)
    assert late["status"] == "sold_out"


async def test_a_nudge_names_the_admitted_or_asks_for_a_whole_round(hub: Hub) -> None:
    """Every process hears the leader's nudge: with the users it admitted (their connections
    get ``admitted`` at once), or with nobody named (a sell-out: everyone's place changed)."""
    heard: list[tuple[uuid.UUID, list[uuid.UUID] | None]] = []
    event_id, users = uuid.uuid4(), [uuid.uuid4(), uuid.uuid4()]

    def on_tick(ticked: uuid.UUID, named: list[uuid.UUID] | None) -> None:
        if ticked == event_id:  # the leader may be nudging for other tests' rooms meanwhile
            heard.append((ticked, named))

    kept = hub.room_feed.on_tick
    hub.room_feed.on_tick = on_tick
    try:
        await waiting_room.nudge(hub, event_id, users)
        await waiting_room.nudge(hub, event_id)
        many = [uuid.uuid4() for _ in range(waiting_room.NUDGE_MAX_USERS + 1)]
        await waiting_room.nudge(hub, event_id, many)  # too many to name: a whole round
        assert await eventually(lambda: len(heard) == 3)
        assert heard == [(event_id, users), (event_id, None), (event_id, None)]
    finally:
        hub.room_feed.on_tick = kept


async def test_no_one_is_admitted_beyond_the_free_seats(
    hub: Hub, client: httpx.AsyncClient, admin: Account
) -> None:
    """Letting buyers in while every seat is held would only meet conflicts: admissions
    stop at the free seats (less one for each admitted buyer who holds nothing yet), the
    others keep their places, and go in when held seats come back."""
    event_id, buyer, hold_id = await _one_buyer_holding_two(hub, client, admin)
    statuses = await _open_to_waiters(hub, event_id)
    assert await eventually(lambda: _admitted(statuses, 2), within=10)
    await asyncio.sleep(3 * admission.TICK_SECONDS)  # nothing more: the free seats are spoken for
    now = await statuses()
    assert sorted(now) == ["admitted"] * 2 + ["waiting"] * 4, now  # (the places were drawn)

    # 4 seats free, 3 admitted buyers holding nothing (the first one let go): one more.
    await holds.release_hold(hub, buyer, hold_id)
    assert await eventually(lambda: _admitted(statuses, 3), within=10)
    await asyncio.sleep(3 * admission.TICK_SECONDS)
    assert (await statuses()).count("admitted") == 3


async def test_a_buyer_who_booked_and_cancelled_does_not_hold_back_the_queue(
    hub: Hub, client: httpx.AsyncClient, admin: Account
) -> None:
    """An admitted buyer who booked and then cancelled owns nothing, but their session was
    used: the seats they gave back go to the queue at once, not when their session ends."""
    event_id, buyer, hold_id = await _one_buyer_holding_two(hub, client, admin)
    booked = await bookings.confirm_hold(hub, buyer, hold_id)
    await cancellation.cancel_booking(hub, buyer, False, uuid.UUID(str(booked["id"])))
    statuses = await _open_to_waiters(hub, event_id)
    # 4 seats free and nobody idle: four go in (three if the buyer counted as idle).
    assert await eventually(lambda: _admitted(statuses, 4), within=10)
    await asyncio.sleep(3 * admission.TICK_SECONDS)
    assert (await statuses()).count("admitted") == 4


async def _one_buyer_holding_two(
    hub: Hub, client: httpx.AsyncClient, admin: Account
) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """A 4-seat event whose room has not opened, and one buyer let in early who holds 2 of
    its seats: ``(event id, buyer, hold id)``."""
    event = await make_event(client, admin, rows=1, seats_per_row=2)  # 4 seats
    event_id = uuid.UUID(event["id"])
    buyer = uuid.UUID((await register(client)).id)
    await waiting_room.configure(hub, event_id, _in(600), TRICKLE, None)
    await waiting_room.join(hub, buyer, event_id)
    room = await waiting_room.read_room(hub, event_id)
    assert room is not None and await waiting_room.admit(hub, room, [buyer]) == 1
    token = (await waiting_room.place(hub, buyer, event_id))["token"]
    held = await holds.place_hold(hub, buyer, event_id, quantity=2, admission_token=token)
    return event_id, buyer, uuid.UUID(str(held["hold_id"]))


async def _open_to_waiters(
    hub: Hub, event_id: uuid.UUID, count: int = 6
) -> Callable[[], Awaitable[list[str]]]:
    """``count`` waiters join and the room opens (100 a second); returns a reader of their
    statuses."""
    waiters = [uuid.uuid4() for _ in range(count)]
    for user in waiters:
        await waiting_room.join(hub, user, event_id)
    await waiting_room.configure(hub, event_id, _in(-0.001), 100.0, None)

    async def statuses() -> list[str]:
        return [(await waiting_room.place(hub, u, event_id))["status"] for u in waiters]

    return statuses


async def _admitted(statuses: Any, count: int) -> bool:
    return (await statuses()).count("admitted") == count


async def test_the_controller_reads_whole_hold_requests(
    hub: Hub, client: httpx.AsyncClient, admin: Account
) -> None:
    """The p99 the controller steers by is of hold requests as answered (the hold route's
    request histogram), so a hold over HTTP is in its next reading and nothing else is."""
    event = await make_event(client, admin, rows=1, seats_per_row=2)
    buyer = await register(client)
    holds_path = f"/api/v1/events/{event['id']}/holds"
    first = await client.post(holds_path, json={"quantity": 1}, headers=buyer.headers)
    assert first.status_code == 201, first.text
    p99 = admission.HoldP99(hub, window_s=3600)
    assert p99.read() is None  # one reading: nothing to compare yet
    await client.get(f"/api/v1/events/{event['id']}", headers=buyer.headers)
    assert p99.read() is None  # no hold in between
    held = await client.post(holds_path, json={"quantity": 1}, headers=buyer.headers)
    assert held.status_code == 201, held.text
    seen = p99.read()
    assert seen is not None and 0 < seen <= 10.0


async def test_who_booked_is_not_asked_of_a_database_that_is_not_there(hub: Hub) -> None:
    """The admission step asks PostgreSQL who booked; while it cannot, only the seats the
    admitted buyers own count (as before), and the step goes on within its second."""
    pool = await asyncpg.create_pool(
        f"postgresql://postgres@127.0.0.1:{free_port()}/nothing", min_size=0
    )
    kept = hub.db
    hub.db = Database(pool)
    try:
        started = time.monotonic()
        assert await admission._booked(hub, uuid.uuid4(), [str(uuid.uuid4())]) == set()
        assert time.monotonic() - started < admission.BOOKINGS_READ_SECONDS + 0.5
    finally:
        hub.db = kept
        await pool.close()
