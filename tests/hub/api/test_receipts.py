"""Receipts over HTTP: a bulk booking's receipt read again later, an ordinary booking's
(no group), and only for the owner or an admin."""

from __future__ import annotations

import uuid

import httpx

from hub.context import Hub
from tests.conftest import Account
from tests.factories import make_event
from tests.hub.api.booking_helpers import API, book
from tests.hub.api.test_bulk import bulk


async def test_a_bulk_bookings_receipt_is_the_one_it_was_booked_with(
    client: httpx.AsyncClient, admin: Account, user: Account
) -> None:
    event = await make_event(client, admin)
    booked = await bulk(client, user, event_id=event["id"], quantity=20)
    assert booked.status_code == 201, booked.text
    booking = booked.json()
    receipt = await client.get(f"{API}/bookings/{booking['id']}/receipt", headers=user.headers)
    assert receipt.status_code == 200, receipt.text
    assert receipt.json() == booking["receipt"]
    assert receipt.json()["discounts"][0]["name"] == "Group of 20 (10%)"
    # still the same after the booking is cancelled
    await client.post(f"{API}/bookings/{booking['id']}/cancel", headers=user.headers)
    later = await client.get(f"{API}/bookings/{booking['id']}/receipt", headers=admin.headers)
    assert later.status_code == 200 and later.json() == booking["receipt"]


async def test_an_ordinary_bookings_receipt(
    client: httpx.AsyncClient, hub: Hub, admin: Account, user: Account
) -> None:
    event = await make_event(client, admin)
    code = f"R{uuid.uuid4().hex[:8].upper()}"
    await hub.db.execute(
        "INSERT INTO discount_codes (code, percent, max_uses) VALUES ($1, 7.5, 5)", code
    )
    plain = await book(client, user, event_id=event["id"], quantity=2)
    coded = await book(client, user, event_id=event["id"], quantity=3, discount_code=code)
    assert plain.status_code == coded.status_code == 201
    first = (
        await client.get(f"{API}/bookings/{plain.json()['id']}/receipt", headers=user.headers)
    ).json()
    assert first["group_name"] is None and first["discounts"] == []
    assert first["reference"] == plain.json()["reference"]
    assert first["subtotal"] == first["total"] == 240.0 and len(first["lines"]) == 2
    second = (
        await client.get(f"{API}/bookings/{coded.json()['id']}/receipt", headers=user.headers)
    ).json()
    # 3 x 120.00 = 360.00; 7.5 % = 27.00
    assert second["discounts"] == [{"name": code, "kind": "code", "rate": 0.075, "amount": 27.0}]
    assert second["total"] == 333.0 == coded.json()["total"]


async def test_someone_elses_receipt_is_not_found(
    client: httpx.AsyncClient, admin: Account, user: Account, other_user: Account
) -> None:
    event = await make_event(client, admin)
    booked = await book(client, user, event_id=event["id"], quantity=1)
    path = f"{API}/bookings/{booked.json()['id']}/receipt"
    assert (await client.get(path, headers=other_user.headers)).status_code == 404
    assert (await client.get(path)).status_code == 401
    assert (await client.get(path, headers=admin.headers)).status_code == 200
    unknown = await client.get(f"{API}/bookings/{uuid.uuid4()}/receipt", headers=user.headers)
    assert unknown.status_code == 404
