"""Bulk group bookings over HTTP: the booking and its receipt, who may book for whom, the
size limit, sold out, busy, invalid codes holding nothing, strict bodies and idempotency."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from hub.context import Hub
from tests.conftest import Account
from tests.factories import make_event
from tests.hub.api.booking_helpers import API, seat_map, statuses

BULK = f"{API}/advanced/bookings/bulk"


async def bulk(
    client: httpx.AsyncClient, who: Account, key: str | None = None, **body: Any
) -> httpx.Response:
    headers = dict(who.headers)
    if key is not None:
        headers["Idempotency-Key"] = key
    body.setdefault("group_name", "Chess Club")
    return await client.post(BULK, json=body, headers=headers)


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


async def test_a_group_is_booked_in_adjacent_rows_with_its_rate_and_receipt(
    client: httpx.AsyncClient, admin: Account, user: Account
) -> None:
    # max 4 per user does not apply to a group; rows of 10 side by side, no aisle
    event = await make_event(client, admin, rows=5, seats_per_row=10, max_tickets_per_user=4)
    response = await bulk(
        client, user, event_id=event["id"], quantity=25, preferred_sections=["Balcony"]
    )
    assert response.status_code == 201, response.text
    booking = response.json()
    assert booking["status"] == "confirmed" and booking["user_id"] == user.id
    assert booking["group_name"] == "Chess Club" and booking["discount_rate"] == 0.1
    assert len(booking["seats"]) == 25
    assert {s["section"] for s in booking["seats"]} == {"Balcony"}
    assert sorted({s["row"] for s in booking["seats"]}) == ["A", "B", "C"]
    assert booking["subtotal"] == 25 * 45.5 and booking["total"] == 1023.75
    receipt = booking["receipt"]
    assert receipt["reference"] == booking["reference"]
    assert receipt["group_name"] == "Chess Club"
    assert [line["seat_id"] for line in receipt["lines"]] == [s["id"] for s in booking["seats"]]
    assert set(receipt["lines"][0]) == {"seat_id", "section", "row", "number", "price"}
    assert receipt["discounts"] == [
        {"name": "Group of 25 (10%)", "kind": "group", "rate": 0.1, "amount": 113.75}
    ]
    assert receipt["subtotal"] == 1137.5 and receipt["total"] == booking["total"]
    shown = statuses(await seat_map(client, event["id"]))
    assert sorted(shown[s["id"]] for s in booking["seats"]) == ["sold"] * 25


async def test_a_group_with_a_code(
    client: httpx.AsyncClient, hub: Hub, user: Account, admin: Account
) -> None:
    event = await make_event(client, admin)
    code = f"B{uuid.uuid4().hex[:8].upper()}"
    await hub.db.execute(
        "INSERT INTO discount_codes (code, percent, max_uses) VALUES ($1, 20, 5)", code
    )
    response = await bulk(client, user, event_id=event["id"], quantity=10, discount_code=code)
    assert response.status_code == 201, response.text
    booking = response.json()
    # 5 % group + 20 % code = 25 %, the default cap: 10 x 120.00 = 1200.00 - 300.00
    assert booking["discount_rate"] == 0.25 and booking["total"] == 900.0
    kinds = [(d["kind"], d["name"], d["amount"]) for d in booking["receipt"]["discounts"]]
    assert kinds == [("group", "Group of 10 (5%)", 60.0), ("code", code, 240.0)]


async def test_user_id_is_the_callers_unless_admin(
    client: httpx.AsyncClient, admin: Account, user: Account, other_user: Account
) -> None:
    event = await make_event(client, admin)
    foreign = await bulk(client, user, event_id=event["id"], quantity=2, user_id=other_user.id)
    _problem(foreign, 403, "forbidden")
    own = await bulk(client, user, event_id=event["id"], quantity=2, user_id=user.id)
    assert own.status_code == 201 and own.json()["user_id"] == user.id
    for_them = await bulk(client, admin, event_id=event["id"], quantity=2, user_id=other_user.id)
    assert for_them.status_code == 201 and for_them.json()["user_id"] == other_user.id
    theirs = await client.get(f"{API}/bookings", headers=other_user.headers)
    assert [b["id"] for b in theirs.json()["items"]] == [for_them.json()["id"]]


async def test_size_limits_and_sold_out(
    client: httpx.AsyncClient, admin: Account, user: Account
) -> None:
    event = await make_event(client, admin, rows=2, seats_per_row=5)  # 20 seats
    over = _problem(
        await bulk(client, user, event_id=event["id"], quantity=501), 422, "limit_exceeded"
    )
    assert over["limit"] == 500
    under = _problem(
        await bulk(client, user, event_id=event["id"], quantity=1), 422, "validation_error"
    )
    assert [e["field"] for e in under["errors"]] == ["quantity"]
    _problem(await bulk(client, user, event_id=event["id"], quantity=21), 409, "sold_out")
    _problem(
        await bulk(client, user, event_id=event["id"], quantity=11, preferred_sections=["Balcony"]),
        409,
        "sold_out",
    )
    assert set(statuses(await seat_map(client, event["id"])).values()) == {"free"}
    _problem(await bulk(client, user, event_id=str(uuid.uuid4()), quantity=2), 404, "not_found")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"quantity": 2, "seat_ids": []}, "seat_ids"),
        ({"quantity": "2"}, "quantity"),
        ({"quantity": 2, "group_name": ""}, "group_name"),
        ({"quantity": 2, "preferred_sections": ["Pit"]}, "preferred_sections"),
        ({"quantity": 2, "discount_code": "NOPE-NOT-A-CODE"}, "discount_code"),
    ],
)
async def test_bad_bodies_hold_nothing(
    client: httpx.AsyncClient, admin: Account, user: Account, body: dict[str, Any], field: str
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=4)
    refused = _problem(
        await bulk(client, user, event_id=event["id"], **body), 422, "validation_error"
    )
    assert [e["field"] for e in refused["errors"]] == [field]
    assert set(statuses(await seat_map(client, event["id"])).values()) == {"free"}


async def test_idempotent_replay(client: httpx.AsyncClient, admin: Account, user: Account) -> None:
    event = await make_event(client, admin)
    key = f"group-{uuid.uuid4()}"
    first = await bulk(client, user, key, event_id=event["id"], quantity=12)
    again = await bulk(client, user, key, event_id=event["id"], quantity=12)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json() and "receipt" in again.json()
    other = await bulk(client, user, key, event_id=event["id"], quantity=13)
    _problem(other, 422, "idempotency_conflict")
    listed = await client.get(f"{API}/bookings", headers=user.headers)
    assert [b["id"] for b in listed.json()["items"]] == [first.json()["id"]]
    shown = statuses(await seat_map(client, event["id"]))
    assert sum(1 for s in shown.values() if s == "sold") == 12


async def test_busy_when_the_assignment_lock_stays_taken(
    client: httpx.AsyncClient, hub: Hub, admin: Account, user: Account
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=4)
    async with hub.inventory.assignment_lock(uuid.UUID(event["id"])):
        busy = await bulk(client, user, event_id=event["id"], quantity=2)
    _problem(busy, 503, "busy")
    assert int(busy.headers["Retry-After"]) >= 1
    assert set(statuses(await seat_map(client, event["id"])).values()) == {"free"}
