"""Discount codes over HTTP: admins create, list (with use counts) and disable them; a code
is never used more often than its limit, even by bookings racing for it, and a cancelled
booking gives its use back."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import httpx

from tests.conftest import Account, register
from tests.factories import make_event
from tests.hub.api.booking_helpers import API, book, seat_map, statuses


def _name() -> str:
    return f"T{uuid.uuid4().hex[:10].upper()}"


async def _create(client: httpx.AsyncClient, admin: Account, **body: Any) -> httpx.Response:
    return await client.post(f"{API}/discount-codes", json=body, headers=admin.headers)


async def _listed(client: httpx.AsyncClient, admin: Account, code: str) -> dict[str, Any]:
    response = await client.get(f"{API}/discount-codes", headers=admin.headers)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = [c for c in response.json()["items"] if c["code"] == code]
    assert len(found) == 1
    return found[0]


def _fields(response: httpx.Response) -> set[str]:
    return {e["field"] for e in response.json()["errors"]}


async def test_create_list_and_disable(
    client: httpx.AsyncClient, admin: Account, user: Account
) -> None:
    event = await make_event(client, admin)
    code = _name()
    until = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    created = await _create(
        client,
        admin,
        code=code,
        percent=12.5,
        max_uses=5,
        valid_until=until.isoformat(),
        event_id=event["id"],
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["code"] == code and body["percent"] == 12.5 and body["max_uses"] == 5
    assert body["uses"] == 0 and body["active"] is True and body["event_id"] == event["id"]
    assert body["valid_from"] is None and body["valid_until"].endswith("Z")
    assert (await _listed(client, admin, code))["uses"] == 0

    again = await _create(client, admin, code=code.lower(), percent=5, max_uses=1)
    assert again.status_code == 409 and again.json()["code"] == "conflict"

    booked = await book(client, user, event_id=event["id"], quantity=2, discount_code=code.lower())
    assert booked.status_code == 201, booked.text
    assert booked.json()["discount_rate"] == 0.125 and booked.json()["discount_code"] == code
    assert (await _listed(client, admin, code))["uses"] == 1

    gone = await client.delete(f"{API}/discount-codes/{code.lower()}", headers=admin.headers)
    assert gone.status_code == 204
    listed = await _listed(client, admin, code)
    assert listed["active"] is False and listed["uses"] == 1
    refused = await book(client, user, event_id=event["id"], quantity=1, discount_code=code)
    assert refused.status_code == 422 and _fields(refused) == {"discount_code"}
    missing = await client.delete(f"{API}/discount-codes/{_name()}", headers=admin.headers)
    assert missing.status_code == 404


async def test_only_admins_manage_codes(
    client: httpx.AsyncClient, admin: Account, user: Account
) -> None:
    assert (await _create(client, user, code=_name(), percent=5, max_uses=1)).status_code == 403
    listed = await client.get(f"{API}/discount-codes", headers=user.headers)
    assert listed.status_code == 403
    gone = await client.delete(f"{API}/discount-codes/BULK10", headers=user.headers)
    assert gone.status_code == 403
    assert (await client.get(f"{API}/discount-codes")).status_code == 401


async def test_bad_codes_are_refused_naming_the_field(
    client: httpx.AsyncClient, admin: Account
) -> None:
    now = dt.datetime.now(dt.UTC)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"percent": 0, "max_uses": 1}, "percent"),
        ({"percent": 100.5, "max_uses": 1}, "percent"),
        ({"percent": 10.125, "max_uses": 1}, "percent"),
        ({"percent": 10, "max_uses": 0}, "max_uses"),
        ({"percent": 10, "max_uses": "3"}, "max_uses"),
        ({"percent": 10, "max_uses": 1, "event_id": str(uuid.uuid4())}, "event_id"),
        ({"percent": 10, "max_uses": 1, "colour": "red"}, "colour"),
        ({"percent": 10, "max_uses": 1, "valid_from": "2030-01-01T00:00:00"}, "valid_from"),
        (
            {
                "percent": 10,
                "max_uses": 1,
                "valid_from": (now + dt.timedelta(days=2)).isoformat(),
                "valid_until": (now + dt.timedelta(days=1)).isoformat(),
            },
            "valid_until",
        ),
    ]
    for body, field in cases:
        response = await _create(client, admin, code=_name(), **body)
        assert response.status_code == 422, (body, response.text)
        assert _fields(response) == {field}, (body, response.text)
    spaced = await _create(client, admin, code="TWO WORDS", percent=10, max_uses=1)
    assert spaced.status_code == 422 and _fields(spaced) == {"code"}


async def test_codes_out_of_their_window_or_scope_are_refused(
    client: httpx.AsyncClient, admin: Account, user: Account
) -> None:
    event = await make_event(client, admin)
    other = await make_event(client, admin)
    now = dt.datetime.now(dt.UTC)
    later = _name()
    scoped = _name()
    await _create(
        client, admin, code=later, percent=10, max_uses=5,
        valid_from=(now + dt.timedelta(days=1)).isoformat(),
    )  # fmt: skip
    await _create(client, admin, code=scoped, percent=10, max_uses=5, event_id=other["id"])
    for code in (later, scoped, "NO-SUCH-CODE"):
        refused = await book(client, user, event_id=event["id"], quantity=1, discount_code=code)
        assert refused.status_code == 422 and _fields(refused) == {"discount_code"}, code
    assert set(statuses(await seat_map(client, event["id"])).values()) == {"free"}


async def test_a_code_limited_to_3_is_used_exactly_3_times_by_10_racing_bookings(
    client: httpx.AsyncClient, admin: Account
) -> None:
    event = await make_event(client, admin)
    code = _name()
    assert (await _create(client, admin, code=code, percent=10, max_uses=3)).status_code == 201
    buyers = [await register(client) for _ in range(10)]
    answers = await asyncio.gather(
        *(
            book(client, buyer, event_id=event["id"], quantity=2, discount_code=code)
            for buyer in buyers
        )
    )
    won = [a for a in answers if a.status_code == 201]
    refused = [a for a in answers if a.status_code != 201]
    assert len(won) == 3, [a.text for a in answers]
    assert all(a.json()["discount_code"] == code for a in won)
    assert all(a.status_code == 422 and _fields(a) == {"discount_code"} for a in refused)
    assert (await _listed(client, admin, code))["uses"] == 3
    shown = statuses(await seat_map(client, event["id"]))
    assert sum(1 for s in shown.values() if s == "sold") == 6  # refused ones hold nothing
    assert "held" not in shown.values()


async def test_a_cancelled_booking_gives_its_use_back(
    client: httpx.AsyncClient, admin: Account, user: Account
) -> None:
    event = await make_event(client, admin)
    code = _name()
    await _create(client, admin, code=code, percent=10, max_uses=1)
    first = await book(client, user, event_id=event["id"], quantity=1, discount_code=code)
    assert first.status_code == 201, first.text
    used_up = await book(client, user, event_id=event["id"], quantity=1, discount_code=code)
    assert used_up.status_code == 422 and _fields(used_up) == {"discount_code"}
    cancelled = await client.post(
        f"{API}/bookings/{first.json()['id']}/cancel", headers=user.headers
    )
    assert cancelled.status_code == 200, cancelled.text
    assert (await _listed(client, admin, code))["uses"] == 0
    again = await book(client, user, event_id=event["id"], quantity=1, discount_code=code)
    assert again.status_code == 201, again.text
    assert (await _listed(client, admin, code))["uses"] == 1
