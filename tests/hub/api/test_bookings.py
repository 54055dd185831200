"""Bookings over HTTP: confirm, one-call booking, discount codes, payments, cancellation,
ownership and idempotency."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from hub.context import Hub
from tests.conftest import Account
from tests.factories import make_event
from tests.hub.api.booking_helpers import (
    API,
    ScriptedPayments,
    book,
    hold_ok,
    ids_in,
    seat_map,
    statuses,
)
from tests.waiting import eventually

BOOKING_KEYS = {
    "id",
    "reference",
    "event_id",
    "user_id",
    "status",
    "seats",
    "subtotal",
    "discount",
    "discount_rate",
    "discount_code",
    "total",
    "group_name",
    "created_at",
    "refund",
}


@pytest.fixture
def payments(hub: Hub) -> Iterator[ScriptedPayments]:
    previous = hub.payments
    provider = ScriptedPayments()
    hub.payments = provider
    yield provider
    hub.payments = previous


@pytest.fixture
async def event(client: httpx.AsyncClient, admin: Account) -> dict[str, Any]:
    return await make_event(client, admin, rows=2, seats_per_row=5, max_tickets_per_user=6)


async def _count_bookings(hub: Hub, event_id: str) -> int:
    return int(
        await hub.db.fetchval(
            "SELECT count(*) FROM bookings WHERE event_id = $1", uuid.UUID(event_id)
        )
    )


async def test_confirm_a_hold(
    client: httpx.AsyncClient,
    hub: Hub,
    user: Account,
    event: dict[str, Any],
    payments: ScriptedPayments,
) -> None:
    held = await hold_ok(client, user, event["id"], quantity=2, section="Balcony")
    response = await book(client, user, hold_id=held["hold_id"])
    assert response.status_code == 201, response.text
    booking = response.json()
    assert set(booking) == BOOKING_KEYS
    assert booking["status"] == "confirmed" and booking["user_id"] == user.id
    assert booking["reference"].startswith("EVT-")
    assert booking["seats"] == held["seats"]
    assert booking["subtotal"] == booking["total"] == 91.0 and booking["discount"] == 0
    assert booking["discount_rate"] == 0 and booking["discount_code"] is None
    after = statuses(await seat_map(client, event["id"]))
    assert all(after[s["id"]] == "sold" for s in held["seats"])
    gone = await client.get(f"{API}/holds/{held['hold_id']}", headers=user.headers)
    assert gone.status_code == 404
    again = await book(client, user, hold_id=held["hold_id"])
    assert again.status_code == 404
    assert payments.charges == 1
    rows = await hub.db.fetch(
        "SELECT kind, amount_cents FROM payments WHERE booking_id = $1", uuid.UUID(booking["id"])
    )
    assert [(r["kind"], r["amount_cents"]) for r in rows] == [("charge", 9100)]
    outcome = await hub.db.fetchval(
        "SELECT outcome FROM hold_log WHERE hold_id = $1", uuid.UUID(held["hold_id"])
    )
    assert outcome == "booked"


async def test_one_call_booking_by_seats_and_by_quantity(
    client: httpx.AsyncClient, user: Account, other_user: Account, event: dict[str, Any]
) -> None:
    ids = ids_in(await seat_map(client, event["id"]), "Orchestra")
    by_seats = await book(client, user, event_id=event["id"], seat_ids=ids[:2])
    assert by_seats.status_code == 201, by_seats.text
    assert [s["id"] for s in by_seats.json()["seats"]] == ids[:2]
    taken = await book(client, other_user, event_id=event["id"], seat_ids=ids[1:3])
    assert taken.status_code == 409 and taken.json()["seats"] == [ids[1]]
    assert statuses(await seat_map(client, event["id"]))[ids[2]] == "free"  # hold undone
    by_quantity = await book(client, other_user, event_id=event["id"], quantity=3)
    assert by_quantity.status_code == 201, by_quantity.text
    assert len(by_quantity.json()["seats"]) == 3


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"hold_id": "00000000-0000-0000-0000-000000000000", "quantity": 1},
        {"event_id": "00000000-0000-0000-0000-000000000000"},
        {"event_id": "00000000-0000-0000-0000-000000000000", "quantity": 1, "seat_ids": []},
        {"hold_id": "00000000-0000-0000-0000-000000000000", "extra": 1},
    ],
)
async def test_bad_booking_requests_are_422(
    client: httpx.AsyncClient, user: Account, body: dict[str, Any]
) -> None:
    assert (await book(client, user, **body)).status_code == 422


async def test_ownership_of_holds_and_bookings(
    client: httpx.AsyncClient,
    user: Account,
    other_user: Account,
    admin: Account,
    event: dict[str, Any],
) -> None:
    held = await hold_ok(client, user, event["id"], quantity=1)
    refused = await book(client, other_user, hold_id=held["hold_id"])
    assert refused.status_code == 404
    booking = (await book(client, user, hold_id=held["hold_id"])).json()
    url = f"{API}/bookings/{booking['id']}"
    assert (await client.get(url, headers=other_user.headers)).status_code == 404
    assert (await client.post(f"{url}/cancel", headers=other_user.headers)).status_code == 404
    assert (await client.get(url, headers=user.headers)).json() == booking
    assert (await client.get(url, headers=admin.headers)).json() == booking
    theirs = await client.get(f"{API}/bookings", headers=other_user.headers)
    assert theirs.json()["items"] == [] and theirs.json()["total"] == 0
    # A non-admin's user_id filter cannot reach someone else's bookings.
    sneaky = await client.get(
        f"{API}/bookings", params={"user_id": user.id}, headers=other_user.headers
    )
    assert sneaky.status_code == 403 and sneaky.json()["code"] == "forbidden"
    mine = await client.get(f"{API}/bookings", headers=user.headers)
    assert mine.json() == {"items": [booking], "page": 1, "size": 20, "total": 1}
    filtered = await client.get(
        f"{API}/bookings", params={"user_id": user.id}, headers=admin.headers
    )
    assert [b["id"] for b in filtered.json()["items"]] == [booking["id"]]
    too_big = await client.get(f"{API}/bookings", params={"size": 101}, headers=user.headers)
    assert too_big.status_code == 422


async def test_cancel_frees_seats_refunds_and_gives_back_the_limit(
    client: httpx.AsyncClient,
    hub: Hub,
    user: Account,
    other_user: Account,
    admin: Account,
    event: dict[str, Any],
    payments: ScriptedPayments,
) -> None:
    booking = (await book(client, user, event_id=event["id"], quantity=6)).json()
    assert (await book(client, user, event_id=event["id"], quantity=1)).status_code == 422
    response = await client.post(f"{API}/bookings/{booking['id']}/cancel", headers=user.headers)
    assert response.status_code == 200, response.text
    cancelled = response.json()
    assert cancelled["status"] == "cancelled" and cancelled["seats"] == booking["seats"]
    after = statuses(await seat_map(client, event["id"]))
    assert all(after[s["id"]] == "free" for s in booking["seats"])
    again = await client.post(f"{API}/bookings/{booking['id']}/cancel", headers=user.headers)
    assert again.status_code == 409
    # The refund is paid after the cancellation commits, by the leader.
    assert cancelled["refund"]["amount"] == booking["total"]

    async def refund_paid() -> bool:
        seen = await client.get(f"{API}/bookings/{booking['id']}", headers=user.headers)
        return bool(seen.json()["refund"]["status"] == "paid")

    assert await eventually(refund_paid)
    refunds = await hub.db.fetch(
        "SELECT amount_cents FROM payments WHERE booking_id = $1 AND kind = 'refund'",
        uuid.UUID(booking["id"]),
    )
    assert [r["amount_cents"] for r in refunds] == [int(booking["total"] * 100)]
    assert payments.refunds == 1
    # The seats can be sold again, and the user's limit is whole again.
    rebook = await book(
        client, other_user, event_id=event["id"], seat_ids=[s["id"] for s in booking["seats"]]
    )
    assert rebook.status_code == 201
    assert (await book(client, user, event_id=event["id"], quantity=4)).status_code == 201
    # An admin may cancel anyone's booking.
    by_admin = await client.post(
        f"{API}/bookings/{rebook.json()['id']}/cancel", headers=admin.headers
    )
    assert by_admin.status_code == 200


async def test_no_cancel_after_the_event_started(
    client: httpx.AsyncClient, hub: Hub, user: Account, event: dict[str, Any]
) -> None:
    booking = (await book(client, user, event_id=event["id"], quantity=1)).json()
    await hub.db.execute(
        "UPDATE events SET starts_at = now() - interval '1 hour' WHERE id = $1",
        uuid.UUID(event["id"]),
    )
    response = await client.post(f"{API}/bookings/{booking['id']}/cancel", headers=user.headers)
    assert response.status_code == 409
    started = await book(client, user, event_id=event["id"], quantity=1)
    assert started.status_code == 409


async def test_declined_payment_keeps_the_hold(
    client: httpx.AsyncClient,
    hub: Hub,
    user: Account,
    event: dict[str, Any],
    payments: ScriptedPayments,
) -> None:
    held = await hold_ok(client, user, event["id"], quantity=2)
    payments.decline = True
    response = await book(client, user, hold_id=held["hold_id"])
    assert response.status_code == 402 and response.json()["code"] == "payment_failed"
    assert await _count_bookings(hub, event["id"]) == 0
    still = await client.get(f"{API}/holds/{held['hold_id']}", headers=user.headers)
    assert still.status_code == 200
    now = statuses(await seat_map(client, event["id"]))
    assert all(now[s["id"]] == "held" for s in held["seats"])
    payments.decline = False
    assert (await book(client, user, hold_id=held["hold_id"])).status_code == 201


async def _add_code(hub: Hub, code: str, percent: int, max_uses: int, **extra: Any) -> None:
    await hub.db.execute(
        "INSERT INTO discount_codes (code, percent, max_uses, valid_from, valid_until, event_id) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        code,
        percent,
        max_uses,
        extra.get("valid_from"),
        extra.get("valid_until"),
        extra.get("event_id"),
    )


async def test_discount_codes(
    client: httpx.AsyncClient, hub: Hub, user: Account, event: dict[str, Any]
) -> None:
    code = f"SAVE{uuid.uuid4().hex[:6].upper()}"
    await _add_code(hub, code, 10, 1)
    held = await hold_ok(client, user, event["id"], quantity=2, section="Orchestra")
    response = await book(client, user, hold_id=held["hold_id"], discount_code=code.lower())
    assert response.status_code == 201, response.text
    booking = response.json()
    assert booking["subtotal"] == 240.0 and booking["discount"] == 24.0
    assert booking["total"] == 216.0 and booking["discount_rate"] == 0.1
    assert booking["discount_code"] == code
    held = await hold_ok(client, user, event["id"], quantity=1)
    for bad in (code, "NOSUCHCODE"):
        refused = await book(client, user, hold_id=held["hold_id"], discount_code=bad)
        assert refused.status_code == 422
        assert refused.json()["errors"][0]["field"] == "discount_code"
    expired = f"OLD{uuid.uuid4().hex[:6].upper()}"
    await _add_code(hub, expired, 5, 10, valid_until=dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    refused = await book(client, user, hold_id=held["hold_id"], discount_code=expired)
    assert refused.status_code == 422
    assert (await book(client, user, hold_id=held["hold_id"])).status_code == 201


async def test_idempotent_replay_and_changed_body(
    client: httpx.AsyncClient, hub: Hub, user: Account, other_user: Account, event: dict[str, Any]
) -> None:
    key = str(uuid.uuid4())
    first = await book(client, user, key, event_id=event["id"], quantity=2)
    assert first.status_code == 201
    second = await book(client, user, key, event_id=event["id"], quantity=2)
    assert second.status_code == 201 and second.json() == first.json()
    assert second.headers.get("idempotent-replayed") == "true"
    changed = await book(client, user, key, event_id=event["id"], quantity=3)
    assert changed.status_code == 422 and changed.json()["code"] == "idempotency_conflict"
    # Keys are scoped to the user: the same key is fresh for someone else.
    theirs = await book(client, other_user, key, event_id=event["id"], quantity=2)
    assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]
    assert await _count_bookings(hub, event["id"]) == 2


async def test_failed_attempt_gives_its_key_back(
    client: httpx.AsyncClient, user: Account, other_user: Account, event: dict[str, Any]
) -> None:
    seat = ids_in(await seat_map(client, event["id"]), "Orchestra")[0]
    theirs = await hold_ok(client, other_user, event["id"], seat_ids=[seat])
    key = str(uuid.uuid4())
    refused = await book(client, user, key, event_id=event["id"], seat_ids=[seat])
    assert refused.status_code == 409
    await client.delete(f"{API}/holds/{theirs['hold_id']}", headers=other_user.headers)
    retried = await book(client, user, key, event_id=event["id"], seat_ids=[seat])
    assert retried.status_code == 201


async def test_twenty_concurrent_replays_make_one_booking(
    client: httpx.AsyncClient,
    hub: Hub,
    user: Account,
    event: dict[str, Any],
    payments: ScriptedPayments,
) -> None:
    payments.delay = 0.05  # keep the first request in flight while the others arrive
    key = str(uuid.uuid4())
    responses = await asyncio.gather(
        *(book(client, user, key, event_id=event["id"], quantity=2) for _ in range(20))
    )
    codes = [r.status_code for r in responses]
    assert set(codes) <= {201, 409} and 201 in codes and 409 in codes, codes
    assert len({r.json()["id"] for r in responses if r.status_code == 201}) == 1
    assert await _count_bookings(hub, event["id"]) == 1
    late = await book(client, user, key, event_id=event["id"], quantity=2)
    assert late.status_code == 201 and late.json()["id"] == responses[codes.index(201)].json()["id"]
