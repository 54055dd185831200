from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pytest

from hub.context import Hub
from hub.services import live_seats
from tests.conftest import Account
from tests.factories import make_event, make_venue

EVENT_KEYS = {
    "id",
    "name",
    "description",
    "category",
    "keywords",
    "venue_id",
    "starts_at",
    "status",
    "max_tickets_per_user",
    "base_prices",
    "prices",
    "availability",
}


def _at(days: float) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).isoformat()


@pytest.fixture
async def venue(client: httpx.AsyncClient, admin: Account) -> dict[str, Any]:
    return await make_venue(client, admin)


async def _create(
    client: httpx.AsyncClient, admin: Account, venue_id: str, /, **fields: Any
) -> httpx.Response:
    body = {
        "name": f"Show {uuid.uuid4().hex[:6]}",
        "description": "An evening out",
        "category": "concert",
        "keywords": ["music"],
        "venue_id": venue_id,
        "starts_at": _at(30),
        "section_prices": {"Orchestra": "120.00", "Balcony": 45},
        **fields,
    }
    return await client.post("/api/v1/events", json=body, headers=admin.headers)


async def _listing(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/api/v1/events", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_create_returns_the_event(
    client: httpx.AsyncClient, admin: Account, venue: dict[str, Any]
) -> None:
    starts = dt.datetime(2031, 5, 1, 21, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    response = await _create(
        client,
        admin,
        venue["id"],
        name="Fado Night",
        keywords=["fado", "guitar"],
        starts_at=starts.isoformat(),
        section_prices={"Orchestra": 75.5},
        max_tickets_per_user=4,
    )
    assert response.status_code == 201, response.text
    event = response.json()
    assert set(event) == EVENT_KEYS
    assert event["name"] == "Fado Night"
    assert event["keywords"] == ["fado", "guitar"]
    assert event["venue_id"] == venue["id"]
    assert event["starts_at"] == "2031-05-01T19:30:00.000Z"  # stored and shown in UTC
    assert event["status"] == "scheduled"
    assert event["max_tickets_per_user"] == 4
    # Balcony was not priced: it takes the venue's base price.
    assert event["base_prices"] == {"Orchestra": 75.5, "Balcony": 40.0}
    assert event["prices"] == event["base_prices"]
    assert event["availability"] == {"total": 100, "available": 100, "held": 0, "sold": 0}
    assert '"Orchestra":75.50' in response.text

    fetched = await client.get(f"/api/v1/events/{event['id']}")
    assert fetched.status_code == 200 and fetched.json() == event
    default = await _create(client, admin, venue["id"])
    assert default.json()["max_tickets_per_user"] == 10


async def test_event_writes_check_the_caller_before_the_body(
    client: httpx.AsyncClient, user: Account, venue: dict[str, Any]
) -> None:
    invalid = {"name": 12, "bogus": True}
    anonymous = await client.post("/api/v1/events", json=invalid)
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    forbidden = await client.post("/api/v1/events", json=invalid, headers=user.headers)
    assert forbidden.status_code == 403
    assert forbidden.json()["code"] == "forbidden"
    some_id = uuid.uuid4()
    assert (await client.patch(f"/api/v1/events/{some_id}", json=invalid)).status_code == 401
    patched = await client.patch(f"/api/v1/events/{some_id}", json=invalid, headers=user.headers)
    assert patched.status_code == 403


async def test_invalid_events_are_422_naming_the_field(
    client: httpx.AsyncClient, admin: Account, venue: dict[str, Any]
) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"colour": "red"}, "colour"),
        ({"starts_at": "2031-01-01T20:00:00"}, "starts_at"),  # naive
        ({"starts_at": "next tuesday"}, "starts_at"),
        ({"starts_at": _at(-1)}, "starts_at"),  # past
        ({"section_prices": {"Orchestra": 10, "Gallery": 5}}, "section_prices.Gallery"),
        ({"section_prices": {"Orchestra": -1}}, "section_prices.Orchestra"),
        ({"section_prices": {"Orchestra": 10.001}}, "section_prices.Orchestra"),
        ({"venue_id": str(uuid.uuid4())}, "venue_id"),
        ({"venue_id": "nope"}, "venue_id"),
        ({"max_tickets_per_user": 0}, "max_tickets_per_user"),
        ({"name": ""}, "name"),
        ({"keywords": "music"}, "keywords"),
    ]
    for fields, field in cases:
        response = await _create(client, admin, venue["id"], **fields)
        assert response.status_code == 422, (fields, response.text)
        body = response.json()
        assert body["code"] == "validation_error"
        assert field in [e["field"] for e in body["errors"]], (field, body)


async def test_patch_changes_details_and_prices(
    client: httpx.AsyncClient, admin: Account, hub: Hub
) -> None:
    event = await make_event(client, admin)
    url = f"/api/v1/events/{event['id']}"
    response = await client.patch(
        url,
        json={
            "name": "Renamed",
            "keywords": ["new", "words"],
            "starts_at": "2032-02-02T20:00:00Z",
            "max_tickets_per_user": 2,
            "section_prices": {"Balcony": "50.25"},
        },
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["name"] == "Renamed"
    assert patched["keywords"] == ["new", "words"]
    assert patched["starts_at"] == "2032-02-02T20:00:00.000Z"
    assert patched["max_tickets_per_user"] == 2
    assert patched["base_prices"] == {"Orchestra": 120.0, "Balcony": 50.25}
    assert patched["prices"] == {"Orchestra": 120.0, "Balcony": 50.25}
    # What was not sent is unchanged.
    assert patched["description"] == event["description"]
    assert patched["category"] == event["category"]
    assert (await client.get(url)).json() == patched
    seats = (await client.get(f"{url}/seats")).json()["seats"]
    assert {s["price"] for s in seats if s["section"] == "Balcony"} == {50.25}
    history = await hub.db.fetch(
        "SELECT section, old_cents, new_cents FROM price_history WHERE event_id = $1",
        uuid.UUID(event["id"]),
    )
    assert [tuple(r) for r in history] == [("Balcony", 4550, 5025)]

    for body, field in [
        ({"venue_id": event["venue_id"]}, "venue_id"),
        ({"status": "cancelled"}, "status"),
        ({"name": None}, "body"),
        ({"section_prices": {"Gallery": 1}}, "section_prices.Gallery"),
        ({"starts_at": "2032-02-02T20:00:00"}, "starts_at"),
    ]:
        bad = await client.patch(url, json=body, headers=admin.headers)
        assert bad.status_code == 422, (body, bad.text)
        assert field in [e["field"] for e in bad.json()["errors"]], (field, bad.json())
    assert (await client.get(url)).json() == patched
    missing = await client.patch(
        f"/api/v1/events/{uuid.uuid4()}", json={"name": "x"}, headers=admin.headers
    )
    assert missing.status_code == 404


async def test_seat_map_shape_order_and_prices(client: httpx.AsyncClient, admin: Account) -> None:
    event = await make_event(client, admin, rows=3, seats_per_row=4, prices={"Orchestra": "99.99"})
    response = await client.get(f"/api/v1/events/{event['id']}/seats")
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body["seq"], int)  # the live inventory's sequence number
    seats = body["seats"]
    assert len(seats) == 24
    assert set(seats[0]) == {
        "id",
        "section",
        "row",
        "number",
        "x",
        "y",
        "accessible",
        "price",
        "status",
    }
    order = [(s["section"], s["row"], s["number"]) for s in seats]
    expected = [
        (section, row, number)
        for section in ("Orchestra", "Balcony")
        for row in ("A", "B", "C")
        for number in range(1, 5)
    ]
    assert order == expected
    assert {s["price"] for s in seats[:12]} == {99.99}
    assert {s["price"] for s in seats[12:]} == {40.0}  # the venue base price
    assert {s["status"] for s in seats} == {"free"}
    assert '"price":40.00' in response.text
    # Rows further back are further from the stage.
    assert seats[0]["y"] < seats[4]["y"] < seats[8]["y"] < seats[12]["y"]
    assert (await client.get(f"/api/v1/events/{uuid.uuid4()}/seats")).status_code == 404


async def _sell_all(hub: Hub, event: dict[str, Any], user: Account) -> None:
    event_id = uuid.UUID(event["id"])
    async with hub.db.transaction() as con:
        booking = await con.fetchval(
            "INSERT INTO bookings (reference, event_id, user_id, subtotal_cents, total_cents) "
            "VALUES ($1, $2, $3, 0, 0) RETURNING id",
            uuid.uuid4().hex[:10],
            event_id,
            uuid.UUID(user.id),
        )
        await con.execute(
            "INSERT INTO tickets (booking_id, event_id, seat_id, price_cents) "
            "SELECT $1, $2, id, 0 FROM seats WHERE venue_id = $3",
            booking,
            event_id,
            uuid.UUID(event["venue_id"]),
        )
    # Sold behind the live inventory's back: rebuild it from PostgreSQL, as an operator would.
    await live_seats.rebuild(hub, event_id)


async def test_sold_seats_show_in_seat_map_and_availability(
    client: httpx.AsyncClient, admin: Account, user: Account, hub: Hub
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=2)
    await _sell_all(hub, event, user)
    seats = (await client.get(f"/api/v1/events/{event['id']}/seats")).json()["seats"]
    assert [s["status"] for s in seats] == ["sold"] * 4
    fetched = (await client.get(f"/api/v1/events/{event['id']}")).json()
    assert fetched["availability"] == {"total": 4, "available": 0, "held": 0, "sold": 4}


async def test_filters(
    client: httpx.AsyncClient, admin: Account, user: Account, hub: Hub, venue: dict[str, Any]
) -> None:
    tag = uuid.uuid4().hex[:8]
    category = f"cat-{tag}"

    async def create(**fields: Any) -> dict[str, Any]:
        response = await _create(client, admin, venue["id"], category=category, **fields)
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    jazz = await create(
        name=f"Jazz {tag} Night",
        starts_at="2031-03-10T20:00:00Z",
        section_prices={"Orchestra": 30, "Balcony": 10},
    )
    opera = await create(
        name="Opera Gala",
        description=f"Arias by candlelight ({tag.upper()})",
        starts_at="2031-03-20T20:00:00Z",
        section_prices={"Orchestra": 200, "Balcony": 150},
    )
    rock = await create(
        name="Rock Block",
        keywords=["Guitars", f"kw{tag}"],
        starts_at="2031-04-01T20:00:00Z",
        section_prices={"Orchestra": 80, "Balcony": 60},
    )

    async def names(**params: Any) -> list[str]:
        listing = await _listing(client, category=category, **params)
        return [e["name"] for e in listing["items"]]

    # Upcoming first, soonest first.
    assert await names() == [jazz["name"], opera["name"], rock["name"]]
    # Category: case-insensitive; another category matches none of them.
    assert len((await _listing(client, category=category.upper()))["items"]) == 3
    assert (await _listing(client, category=f"other-{tag}"))["total"] == 0
    # Search: name, description, keywords, case-insensitively.
    assert await _names_for(client, search=f"JAZZ {tag}") == [jazz["name"]]
    assert await _names_for(client, search=tag.upper()) == [
        jazz["name"],
        opera["name"],
        rock["name"],
    ]
    assert await _names_for(client, search=f"KW{tag}") == [rock["name"]]
    assert await _names_for(client, search=f"absent {tag}") == []
    assert await names(search="candlelight") == [opera["name"]]
    # Dates: a plain date covers its whole day; datetimes need a timezone.
    assert await names(date_from="2031-03-20") == [opera["name"], rock["name"]]
    assert await names(date_to="2031-03-20") == [jazz["name"], opera["name"]]
    assert await names(date_from="2031-03-11T00:00:00Z", date_to="2031-03-31T00:00:00Z") == [
        opera["name"]
    ]
    assert await names(date_from="2031-05-01") == []
    naive = await client.get("/api/v1/events", params={"date_from": "2031-03-11T00:00:00"})
    assert naive.status_code == 422
    # Prices: an event matches when any section's current price is in range.
    assert await names(min_price=150) == [opera["name"]]
    assert await names(max_price="10.00") == [jazz["name"]]
    assert await names(min_price=55, max_price=70) == [rock["name"]]
    assert await names(min_price=90, max_price=100) == []
    # Price filters follow the current price after a change.
    await client.patch(
        f"/api/v1/events/{rock['id']}",
        json={"section_prices": {"Orchestra": 95}},
        headers=admin.headers,
    )
    assert await names(min_price=90, max_price=100) == [rock["name"]]
    # Availability: a sold-out event drops out of available_only.
    assert await names(available_only="true") == [jazz["name"], opera["name"], rock["name"]]
    await _sell_all(hub, {**opera, "venue_id": venue["id"]}, user)
    assert await names(available_only="true") == [jazz["name"], rock["name"]]
    listing = await _listing(client, category=category, available_only="true", size=1, page=2)
    assert listing["total"] == 2 and [e["name"] for e in listing["items"]] == [rock["name"]]
    assert await names(available_only="false") == [jazz["name"], opera["name"], rock["name"]]


async def _names_for(client: httpx.AsyncClient, **params: Any) -> list[str]:
    return [e["name"] for e in (await _listing(client, size=100, **params))["items"]]


async def test_pagination_and_ordering(
    client: httpx.AsyncClient, admin: Account, hub: Hub, venue: dict[str, Any]
) -> None:
    category = f"page-{uuid.uuid4().hex[:8]}"
    made = []
    for days in (20, 5, 12, 40, 30):
        response = await _create(client, admin, venue["id"], category=category, starts_at=_at(days))
        made.append(response.json())
    # One event moves into the past; one is cancelled. Both are still listed.
    past = made[3]
    await client.patch(
        f"/api/v1/events/{past['id']}", json={"starts_at": _at(-2)}, headers=admin.headers
    )
    await hub.db.execute(
        "UPDATE events SET status = 'cancelled' WHERE id = $1", uuid.UUID(made[4]["id"])
    )
    expected = [made[1]["id"], made[2]["id"], made[0]["id"], made[4]["id"], past["id"]]

    pages = [await _listing(client, category=category, size=2, page=p) for p in (1, 2, 3, 4)]
    assert [p["total"] for p in pages] == [5, 5, 5, 5]
    assert [len(p["items"]) for p in pages] == [2, 2, 1, 0]
    assert [p["page"] for p in pages] == [1, 2, 3, 4] and {p["size"] for p in pages} == {2}
    assert [e["id"] for p in pages for e in p["items"]] == expected
    statuses = {e["id"]: e["status"] for p in pages for e in p["items"]}
    assert statuses[made[4]["id"]] == "cancelled" and statuses[made[0]["id"]] == "scheduled"

    default = await _listing(client)
    assert default["size"] == 20 and default["page"] == 1
    for params in (
        {"size": 101},
        {"size": 0},
        {"page": 0},
        {"size": "ten"},
        {"min_price": -1},
        {"date_from": "2031-13-45"},
        {"available_only": "maybe"},
    ):
        bad = await client.get("/api/v1/events", params=params)
        assert bad.status_code == 422, params
        assert bad.json()["code"] == "validation_error"
    assert (await client.get("/api/v1/events", params={"size": 100})).status_code == 200
