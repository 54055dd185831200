from __future__ import annotations

import itertools
import time
import uuid
from typing import Any

import httpx

from tests.conftest import Account
from tests.factories import make_event, make_venue


def _venue(**fields: Any) -> dict[str, Any]:
    return {"name": f"Hall {uuid.uuid4().hex[:6]}", "city": "Porto", **fields}


async def test_create_from_sections_with_accessible_seats(
    client: httpx.AsyncClient, admin: Account
) -> None:
    sections = [
        {
            "name": "Stalls",
            "rows": 4,
            "seats_per_row": 30,
            "base_price": 55.5,
            "accessible_seats": [{"row": "A", "number": 1}, {"row": "A", "number": 30}],
        },
        {"name": "Circle", "rows": 2, "seats_per_row": 10},
    ]
    venue = await make_venue(client, admin, sections=sections)
    assert venue["capacity"] == 140
    assert venue["sections"] == [
        {"name": "Stalls", "rows": 4, "seats": 120, "base_price": 55.5, "accessible": 2},
        {"name": "Circle", "rows": 2, "seats": 20, "base_price": None, "accessible": 0},
    ]
    # Money keeps its two places on the wire.
    raw = (await client.get(f"/api/v1/venues/{venue['id']}")).text
    assert '"base_price":55.50' in raw

    event = await make_event(client, admin, venue_id=venue["id"], prices={"Circle": "20.00"})
    seats = (await client.get(f"/api/v1/events/{event['id']}/seats")).json()["seats"]
    assert len(seats) == 140
    accessible = [(s["section"], s["row"], s["number"]) for s in seats if s["accessible"]]
    assert accessible == [("Stalls", "A", 1), ("Stalls", "A", 30)]
    # Aisles: 30 seats with an aisle every 14 means two gaps wider than the seat pitch.
    row_a = [s["x"] for s in seats if s["section"] == "Stalls" and s["row"] == "A"]
    gaps = sorted({round(b - a, 2) for a, b in itertools.pairwise(row_a)})
    assert gaps == [0.5, 1.2]
    # Sections are stacked away from the stage: every Circle seat is behind the Stalls.
    stalls_y = max(s["y"] for s in seats if s["section"] == "Stalls")
    assert min(s["y"] for s in seats if s["section"] == "Circle") > stalls_y


async def test_explicit_seat_list(client: httpx.AsyncClient, admin: Account) -> None:
    seats = [
        {"section": "Ring", "row": "1", "number": 1, "x": 3.0, "y": 4.0, "accessible": True},
        {"section": "Box", "row": "B", "number": 7, "x": -6.0, "y": 8.0, "accessible": False},
        {"section": "Ring", "row": "1", "number": 2, "x": 5.0, "y": 12.0, "accessible": False},
    ]
    response = await client.post("/api/v1/venues", json=_venue(seats=seats), headers=admin.headers)
    assert response.status_code == 201, response.text
    venue = response.json()
    assert venue["capacity"] == 3
    assert venue["sections"] == [
        {"name": "Ring", "rows": 1, "seats": 2, "base_price": None, "accessible": 1},
        {"name": "Box", "rows": 1, "seats": 1, "base_price": None, "accessible": 0},
    ]
    # No base prices: an event must price every section itself.
    starts = "2031-01-01T20:00:00Z"
    body = {
        "name": "Circus",
        "category": "family",
        "venue_id": venue["id"],
        "starts_at": starts,
        "section_prices": {"Ring": 10},
    }
    missing = await client.post("/api/v1/events", json=body, headers=admin.headers)
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "section_prices"
    body["section_prices"] = {"Ring": 10, "Box": "99.90"}
    created = await client.post("/api/v1/events", json=body, headers=admin.headers)
    assert created.status_code == 201, created.text
    listed = (await client.get(f"/api/v1/events/{created.json()['id']}/seats")).json()["seats"]
    # Seat order groups sections by first appearance, keeping the given order inside each.
    assert [(s["section"], s["number"], s["price"]) for s in listed] == [
        ("Ring", 1, 10.0),
        ("Ring", 2, 10.0),
        ("Box", 7, 99.9),
    ]


async def test_duplicate_seats_and_sections_name_the_field(
    client: httpx.AsyncClient, admin: Account
) -> None:
    seat = {"section": "S", "row": "A", "number": 1, "x": 0, "y": 5}
    dup_seats = await client.post(
        "/api/v1/venues", json=_venue(seats=[seat, dict(seat, x=1)]), headers=admin.headers
    )
    assert dup_seats.status_code == 422
    assert dup_seats.json()["errors"][0]["field"] == "seats.1"

    section = {"name": "S", "rows": 1, "seats_per_row": 1}
    dup_sections = await client.post(
        "/api/v1/venues", json=_venue(sections=[section, section]), headers=admin.headers
    )
    assert dup_sections.status_code == 422
    assert dup_sections.json()["errors"][0]["field"] == "sections.1.name"


async def test_bad_venues_are_422(client: httpx.AsyncClient, admin: Account) -> None:
    one = {"name": "S", "rows": 1, "seats_per_row": 1}
    cases: list[tuple[dict[str, Any], str]] = [
        (_venue(), "sections"),
        (
            _venue(
                sections=[one], seats=[{"section": "S", "row": "A", "number": 1, "x": 0, "y": 1}]
            ),
            "sections",
        ),
        (_venue(sections=[dict(one, rows=201)]), "sections.0.rows"),
        (_venue(sections=[dict(one, seats_per_row=501)]), "sections.0.seats_per_row"),
        (_venue(sections=[dict(one, name=f"S{i}") for i in range(51)]), "sections"),
        (_venue(sections=[dict(one, rows=200, seats_per_row=500)]), "sections"),
        (_venue(sections=[dict(one, base_price=-1)]), "sections.0.base_price"),
        (_venue(sections=[dict(one, base_price="1.234")]), "sections.0.base_price"),
        (
            _venue(sections=[dict(one, accessible_seats=[{"row": "B", "number": 1}])]),
            "sections.0.accessible_seats.0",
        ),
        (_venue(sections=[dict(one, colour="red")]), "sections.0.colour"),
        (_venue(sections=[one], extra=True), "extra"),
        (_venue(seats=[]), "seats"),
    ]
    for body, field in cases:
        response = await client.post("/api/v1/venues", json=body, headers=admin.headers)
        assert response.status_code == 422, (body, response.text)
        fields = [e["field"] for e in response.json()["errors"]]
        assert field in fields, (field, fields)


async def test_venue_writes_need_an_admin_before_validation(
    client: httpx.AsyncClient, user: Account
) -> None:
    anonymous = await client.post("/api/v1/venues", json={"nonsense": True})
    assert anonymous.status_code == 401
    forbidden = await client.post("/api/v1/venues", json={"nonsense": True}, headers=user.headers)
    assert forbidden.status_code == 403
    assert forbidden.json()["code"] == "forbidden"


async def test_get_and_list_venues(client: httpx.AsyncClient, admin: Account) -> None:
    created = [await make_venue(client, admin) for _ in range(3)]
    first = (await client.get("/api/v1/venues?size=1")).json()
    total = first["total"]
    assert total >= 3
    # Oldest first: the three just made are the last three.
    ids: list[str] = []
    for page in (total - 2, total - 1, total):
        listed = (await client.get("/api/v1/venues", params={"size": 1, "page": page})).json()
        ids.extend(v["id"] for v in listed["items"])
    assert ids == [v["id"] for v in created]

    paged = (await client.get(f"/api/v1/venues?size=1&page={total}")).json()
    assert paged["page"] == total and paged["size"] == 1 and paged["total"] == total
    assert len(paged["items"]) == 1
    beyond = (await client.get(f"/api/v1/venues?size=1&page={total + 1}")).json()
    assert beyond["items"] == [] and beyond["total"] == total

    one = await client.get(f"/api/v1/venues/{created[0]['id']}")
    assert one.status_code == 200 and one.json() == created[0]
    assert (await client.get(f"/api/v1/venues/{uuid.uuid4()}")).status_code == 404
    assert (await client.get("/api/v1/venues/not-a-uuid")).status_code == 404
    assert (await client.get("/api/v1/venues?size=101")).status_code == 422
    assert (await client.get("/api/v1/venues?page=0")).status_code == 422


async def test_twenty_thousand_seat_venue(client: httpx.AsyncClient, admin: Account) -> None:
    sections = [
        {"name": "Floor", "rows": 40, "seats_per_row": 250, "base_price": "80.00"},
        {"name": "Tier", "rows": 50, "seats_per_row": 200, "base_price": "30.00"},
    ]
    started = time.perf_counter()
    venue = await make_venue(client, admin, sections=sections)
    created_in = time.perf_counter() - started
    assert venue["capacity"] == 20_000
    assert created_in < 2.0, f"creating 20,000 seats took {created_in:.2f}s"

    event = await make_event(client, admin, venue_id=venue["id"], prices={"Tier": "35.00"})
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        response = await client.get(f"/api/v1/events/{event['id']}/seats")
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200
    seats = response.json()["seats"]
    assert len(seats) == 20_000
    assert seats[0]["section"] == "Floor" and seats[0]["price"] == 80.0
    assert seats[-1]["section"] == "Tier" and seats[-1]["price"] == 35.0
    assert len({s["id"] for s in seats}) == 20_000
    assert min(timings) < 0.5, f"listing 20,000 seats took {timings}"
    listed_ms = [round(t * 1000) for t in timings]
    print(f"\n20k venue insert {created_in * 1000:.0f} ms; seats listing {listed_ms} ms")
