"""Cancelling an event: every booking refunded, every seat freed, holders and the waitlist
told, and no hold taken afterwards."""

from __future__ import annotations

import uuid

import httpx

from hub.context import Hub
from tests.conftest import Account, register
from tests.factories import make_event
from tests.hub.api.booking_helpers import API, book, hold_ok, join_waitlist, seat_map, waitlist_of
from tests.waiting import eventually


async def test_event_cancellation_refunds_everything_and_frees_every_seat(
    client: httpx.AsyncClient, hub: Hub, admin: Account, user: Account, other_user: Account
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=3)  # 6 seats
    holder, waiter = await register(client), await register(client)
    first = await book(client, user, event_id=event["id"], quantity=2)
    second = await book(client, other_user, event_id=event["id"], quantity=1)
    assert first.status_code == second.status_code == 201
    held = await hold_ok(client, holder, event["id"], quantity=3)
    await join_waitlist(client, waiter, event["id"], 1)

    url = f"{API}/events/{event['id']}/cancel"
    assert (await client.post(url, headers=user.headers)).status_code == 403
    cancelled = await client.post(url, headers=admin.headers)
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["status"] == "cancelled"
    assert body["availability"]["sold"] == 0 and body["availability"]["held"] == 0
    assert {s["status"] for s in await seat_map(client, event["id"])} == {"free"}

    for who, booking in ((user, first), (other_user, second)):
        got = (
            await client.get(f"{API}/bookings/{booking.json()['id']}", headers=who.headers)
        ).json()
        assert got["status"] == "cancelled"
        assert got["refund"]["amount"] == booking.json()["total"]

    # Refunds are paid by the leader after the cancellation committed.
    async def all_paid() -> bool:
        states = [
            (await client.get(f"{API}/bookings/{b.json()['id']}", headers=w.headers)).json()
            for w, b in ((user, first), (other_user, second))
        ]
        return all(s["refund"]["status"] == "paid" for s in states)

    assert await eventually(all_paid)
    refunds = await hub.db.fetch(
        """SELECT p.amount_cents, b.total_cents
             FROM payments p JOIN bookings b ON b.id = p.booking_id
            WHERE b.event_id = $1 AND p.kind = 'refund'""",
        uuid.UUID(event["id"]),
    )
    assert len(refunds) == 2 and all(r["amount_cents"] == r["total_cents"] for r in refunds)
    lost = await client.get(f"{API}/holds/{held['hold_id']}", headers=holder.headers)
    assert lost.status_code in (404, 410)
    assert (await waitlist_of(client, waiter, event["id"]))["status"] == "closed"
    told = await hub.db.fetch(
        "SELECT user_id FROM outbox WHERE kind = 'event_cancelled' AND payload->>'event_id' = $1",
        event["id"],
    )
    assert {str(r["user_id"]) for r in told} == {user.id, other_user.id, holder.id, waiter.id}
    assert (await client.post(url, headers=admin.headers)).status_code == 409
    after = await client.post(
        f"{API}/events/{event['id']}/holds", json={"quantity": 1}, headers=user.headers
    )
    assert after.status_code == 409
