"""A cancellation whose Redis step never happened (Redis cut off, the process killed after
the commit) is finished by the leader: its seats turn free once the row is due, a seat
resold meanwhile is never freed, and the seq guard refuses to free anything on a stale read.
"""

from __future__ import annotations

import uuid

import httpx

from engines.seats import SeatCode
from hub.context import Hub
from hub.services import releases
from tests.conftest import Account
from tests.factories import make_event
from tests.hub.api.booking_helpers import API, book, hold_ok, seat_map, statuses


async def _booked(client: httpx.AsyncClient, who: Account, event_id: str, n: int) -> dict:
    held = await hold_ok(client, who, event_id, quantity=n)
    booked = await book(client, who, hold_id=held["hold_id"])
    assert booked.status_code == 201, booked.text
    return booked.json()


async def _cancel_without_redis(hub: Hub, booking_id: str, due_in_s: float = 0) -> None:
    """The cancellation's transaction as the service commits it, its Redis step lost."""
    async with hub.db.transaction() as con:
        row = await con.fetchrow(
            """UPDATE bookings SET status = 'cancelled' WHERE id = $1
               RETURNING event_id, user_id""",
            uuid.UUID(booking_id),
        )
        idxs = await con.fetch(
            """UPDATE tickets t SET active = false FROM seats s
                WHERE t.booking_id = $1 AND s.id = t.seat_id RETURNING s.idx""",
            uuid.UUID(booking_id),
        )
        await con.execute(
            """INSERT INTO pending_seat_frees (event_id, seats, owner_id, due_at)
               VALUES ($1, $2::integer[], $3, now() + make_interval(secs => $4))""",
            row["event_id"],
            [r[0] for r in idxs],
            row["user_id"],
            due_in_s,
        )


async def _pending(hub: Hub, event_id: str) -> int:
    async with hub.db.connection() as con:
        return int(
            await con.fetchval(
                "SELECT count(*) FROM pending_seat_frees WHERE event_id = $1", uuid.UUID(event_id)
            )
        )


async def test_the_leader_frees_what_a_cancellation_left_sold(
    hub: Hub, client: httpx.AsyncClient, admin: Account, user: Account
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=3)
    booking = await _booked(client, user, event["id"], 2)
    mine = {seat["id"] for seat in booking["seats"]}
    await _cancel_without_redis(hub, booking["id"], due_in_s=3600)
    # Not due yet: the cancelling request could still be freeing them itself.
    await releases.finish_pending_frees(hub)
    shown = statuses(await seat_map(client, event["id"]))
    assert {shown[s] for s in mine} == {"sold"}
    async with hub.db.connection() as con:
        await con.execute(
            "UPDATE pending_seat_frees SET due_at = now() WHERE event_id = $1",
            uuid.UUID(event["id"]),
        )
    await releases.finish_pending_frees(hub)  # (or the session's leader, every 5 s)
    shown = statuses(await seat_map(client, event["id"]))
    assert {shown[s] for s in mine} == {"free"}
    assert await _pending(hub, event["id"]) == 0
    # The owner's count went down with them: they can take the whole row again.
    again = await _booked(client, user, event["id"], 3)
    assert len(again["seats"]) == 3


async def test_a_seat_resold_meanwhile_is_never_freed(
    hub: Hub, client: httpx.AsyncClient, admin: Account, user: Account, other_user: Account
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=2)
    booking = await _booked(client, user, event["id"], 1)
    seat = booking["seats"][0]
    # The cancellation's Redis step did happen, but its row was left behind; the seat was
    # then bought by someone else.
    response = await client.post(f"{API}/bookings/{booking['id']}/cancel", headers=user.headers)
    assert response.status_code == 200, response.text
    resold = await _booked(client, other_user, event["id"], 2)
    assert seat["id"] in {s["id"] for s in resold["seats"]}
    async with hub.db.connection() as con:
        await con.execute(
            """INSERT INTO pending_seat_frees (event_id, seats, owner_id, due_at)
               SELECT b.event_id, ARRAY[s.idx], b.user_id, now()
                 FROM bookings b, seats s WHERE b.id = $1 AND s.id = $2""",
            uuid.UUID(booking["id"]),
            uuid.UUID(seat["id"]),
        )
    await releases.finish_pending_frees(hub)
    assert statuses(await seat_map(client, event["id"]))[seat["id"]] == "sold"
    assert await _pending(hub, event["id"]) == 0


async def test_a_stale_read_frees_nothing(
    hub: Hub, client: httpx.AsyncClient, admin: Account, user: Account
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=2)
    booking = await _booked(client, user, event["id"], 1)
    event_id = uuid.UUID(event["id"])
    snapshot = await hub.inventory.snapshot(event_id)
    assert snapshot is not None
    seq, codes = snapshot
    sold = [i for i, code in enumerate(codes) if code == SeatCode.SOLD]
    await hold_ok(client, user, event["id"], quantity=1)  # the seq moves
    assert await hub.inventory.free_unsold(event_id, seq, sold, user_id=None) is None
    assert statuses(await seat_map(client, event["id"]))[booking["seats"][0]["id"]] == "sold"
