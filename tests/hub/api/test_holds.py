"""Holds over HTTP: named and best-available seats, conflicts, limits, ownership."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import httpx
import pytest

from tests.conftest import Account, register
from tests.factories import make_event
from tests.hub.api.booking_helpers import API, hold, hold_ok, ids_in, seat_map, statuses


@pytest.fixture
async def event(client: httpx.AsyncClient, admin: Account) -> dict[str, Any]:
    return await make_event(client, admin, rows=2, seats_per_row=5, max_tickets_per_user=4)


async def test_hold_named_seats_quotes_prices_and_shows_held(
    client: httpx.AsyncClient, user: Account, event: dict[str, Any]
) -> None:
    seats = await seat_map(client, event["id"])
    wanted = ids_in(seats, "Orchestra")[:2]
    before = dt.datetime.now(dt.UTC)
    body = await hold_ok(client, user, event["id"], seat_ids=wanted)
    assert set(body) == {"hold_id", "event_id", "seats", "total", "expires_at"}
    assert body["event_id"] == event["id"]
    assert [s["id"] for s in body["seats"]] == wanted
    assert {s["price"] for s in body["seats"]} == {120.0}  # the Orchestra price
    assert set(body["seats"][0]) == {"id", "section", "row", "number", "price"}
    assert body["total"] == 240.0
    expires = dt.datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert dt.timedelta(seconds=590) < expires - before < dt.timedelta(seconds=610)
    after = statuses(await seat_map(client, event["id"]))
    assert [after[s] for s in wanted] == ["held", "held"]
    found = await client.get(f"{API}/events/{event['id']}")
    assert found.json()["availability"]["held"] == 2


async def test_taken_seats_are_named_and_nothing_is_held(
    client: httpx.AsyncClient, user: Account, other_user: Account, event: dict[str, Any]
) -> None:
    ids = ids_in(await seat_map(client, event["id"]), "Balcony")
    await hold_ok(client, user, event["id"], seat_ids=ids[:2])
    response = await hold(client, other_user, event["id"], seat_ids=[ids[2], ids[1], ids[0]])
    assert response.status_code == 409
    problem = response.json()
    assert problem["code"] == "seat_unavailable"
    assert sorted(problem["seats"]) == sorted(ids[:2])
    assert statuses(await seat_map(client, event["id"]))[ids[2]] == "free"  # all or nothing


async def test_best_available_in_a_section_then_sold_out(
    client: httpx.AsyncClient, user: Account, other_user: Account, event: dict[str, Any]
) -> None:
    body = await hold_ok(client, user, event["id"], quantity=3, section="Balcony")
    seats = body["seats"]
    assert {s["section"] for s in seats} == {"Balcony"}
    assert len({s["row"] for s in seats}) == 1
    numbers = sorted(s["number"] for s in seats)
    assert numbers == list(range(numbers[0], numbers[0] + 3))  # side by side
    await hold_ok(client, other_user, event["id"], quantity=4, section="Balcony")
    response = await hold(client, other_user, event["id"], quantity=4, section="Balcony")
    assert response.status_code == 409 and response.json()["code"] == "sold_out"


async def test_limit_counts_what_the_user_holds(
    client: httpx.AsyncClient, user: Account, event: dict[str, Any]
) -> None:
    response = await hold(client, user, event["id"], quantity=5)
    assert response.status_code == 422
    assert response.json()["code"] == "limit_exceeded" and response.json()["limit"] == 4
    await hold_ok(client, user, event["id"], quantity=3)
    response = await hold(client, user, event["id"], quantity=2)
    assert response.status_code == 422 and response.json()["limit"] == 4
    await hold_ok(client, user, event["id"], quantity=1)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"seat_ids": []},
        {"quantity": 0},
        {"quantity": 2, "seat_ids": ["00000000-0000-0000-0000-000000000000"]},
        {"seat_ids": ["00000000-0000-0000-0000-000000000000"]},
        {"quantity": 2, "section": "Nowhere"},
        {"quantity": 1, "colour": "red"},
    ],
)
async def test_bad_hold_requests_are_422(
    client: httpx.AsyncClient, user: Account, event: dict[str, Any], body: dict[str, Any]
) -> None:
    response = await hold(client, user, event["id"], **body)
    assert response.status_code == 422, response.text


async def test_repeated_seat_is_422(
    client: httpx.AsyncClient, user: Account, event: dict[str, Any]
) -> None:
    seat = ids_in(await seat_map(client, event["id"]), "Balcony")[0]
    response = await hold(client, user, event["id"], seat_ids=[seat, seat])
    assert response.status_code == 422


async def test_unknown_event_is_404_and_anonymous_is_401(
    client: httpx.AsyncClient, user: Account, event: dict[str, Any]
) -> None:
    missing = "00000000-0000-0000-0000-000000000000"
    assert (await hold(client, user, missing, quantity=1)).status_code == 404
    anonymous = await client.post(f"{API}/events/{event['id']}/holds", json={"quantity": 1})
    assert anonymous.status_code == 401


async def test_only_the_owner_reads_or_releases_a_hold(
    client: httpx.AsyncClient, user: Account, other_user: Account, event: dict[str, Any]
) -> None:
    body = await hold_ok(client, user, event["id"], quantity=2)
    url = f"{API}/holds/{body['hold_id']}"
    assert (await client.get(url, headers=other_user.headers)).status_code == 404
    assert (await client.delete(url, headers=other_user.headers)).status_code == 404
    mine = await client.get(url, headers=user.headers)
    assert mine.status_code == 200 and mine.json() == body
    assert (await client.delete(url, headers=user.headers)).status_code == 204
    free = statuses(await seat_map(client, event["id"]))
    assert all(free[s["id"]] == "free" for s in body["seats"])
    assert (await client.get(url, headers=user.headers)).status_code == 404
    # Released seats count no more against the limit.
    await hold_ok(client, user, event["id"], quantity=4)


async def test_concurrent_best_available_holds_all_succeed(
    client: httpx.AsyncClient, admin: Account
) -> None:
    # Choosers from the same picture would all pick the same best seats and most lose (503
    # busy after their retries); offered the best few candidates, each gets a free one.
    event = await make_event(client, admin, rows=3, seats_per_row=10)  # 60 seats
    buyers = [await register(client) for _ in range(25)]
    results = await asyncio.gather(*(hold(client, b, event["id"], quantity=2) for b in buyers))
    assert [r.status_code for r in results] == [201] * 25, [
        r.text for r in results if r.status_code != 201
    ]
    seats = [s["id"] for r in results for s in r.json()["seats"]]
    assert len(seats) == len(set(seats)) == 50
    assert list(statuses(await seat_map(client, event["id"])).values()).count("held") == 50
