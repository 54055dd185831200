"""Seat recommendations at the service: the live seat state after holds and sales, the user's
taste from past bookings (at any venue, rows ranked as the engine ranks them), accessibility,
and events that can no longer be booked."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from hub.context import Hub
from hub.services import events, live_seats, seat_recommendations
from hub.tokens import Principal, decode_token
from tests.conftest import Account, register
from tests.factories import make_event, make_venue
from tests.hub.api.booking_helpers import API, book, hold_ok, seat_map, statuses


def principal(hub: Hub, who: Account) -> Principal:
    return decode_token(hub.settings.secret_key, who.token)


async def recommend(
    hub: Hub, who: Account, event_id: str, quantity: int, **options: Any
) -> list[dict[str, Any]]:
    answer = await seat_recommendations.recommend_seats(
        hub, principal(hub, who), uuid.UUID(event_id), quantity, **options
    )
    found: list[dict[str, Any]] = answer["recommendations"]
    return found


def seat_ids(item: dict[str, Any]) -> list[str]:
    return [str(seat["id"]) for seat in item["seats"]]


def sections(item: dict[str, Any]) -> set[str]:
    return {seat["section"] for seat in item["seats"]}


async def test_never_a_held_or_sold_seat_as_seats_are_held_and_sold(
    client: httpx.AsyncClient, hub: Hub, admin: Account
) -> None:
    event = await make_event(client, admin, rows=2, seats_per_row=8)  # 32 seats
    buyers = [await register(client) for _ in range(4)]
    taken: set[str] = set()
    for turn in range(8):
        found = await recommend(hub, buyers[0], event["id"], 3)
        shown = statuses(await seat_map(client, event["id"]))
        offered = [seat for item in found for seat in seat_ids(item)]
        assert offered and len(offered) == len(set(offered))  # no two share a seat
        assert all(shown[seat] == "free" for seat in offered)
        assert not taken & set(offered)
        best = seat_ids(found[0])
        buyer = buyers[turn % len(buyers)]
        if turn % 2:  # sold ...
            response = await book(client, buyer, event_id=event["id"], seat_ids=best)
            assert response.status_code == 201, response.text
        else:  # ... or held
            await hold_ok(client, buyer, event["id"], seat_ids=best)
        taken |= set(best)
    # 24 of 32 seats are gone: what is left is still offered, and only that
    shown = statuses(await seat_map(client, event["id"]))
    left = {seat for seat, status in shown.items() if status == "free"}
    assert len(left) == 8 and not left & taken
    found = await recommend(hub, buyers[0], event["id"], 2)
    assert found and all(seat in left for item in found for seat in seat_ids(item))


async def test_similarity_follows_past_bookings_at_another_venue(
    client: httpx.AsyncClient, hub: Hub, admin: Account, user: Account, other_user: Account
) -> None:
    past = await make_event(client, admin, rows=4, seats_per_row=10)
    back_row = [
        s["id"] for s in await seat_map(client, past["id"])
        if s["section"] == "Balcony" and s["row"] == "D" and s["number"] in (5, 6)
    ]  # fmt: skip
    booked = await book(client, user, event_id=past["id"], seat_ids=back_row)
    assert booked.status_code == 201, booked.text
    event = await make_event(client, admin, rows=4, seats_per_row=10)  # a new venue

    newcomer = await recommend(hub, other_user, event["id"], 2)
    assert all(item["scores"]["similarity"] == 0.5 for item in newcomer)
    assert sections(newcomer[0]) == {"Orchestra"}  # closest to the stage

    regular = await recommend(hub, user, event["id"], 2)
    assert sections(regular[0]) == {"Balcony"}
    assert regular[0]["scores"]["similarity"] == 1.0  # same section name, row depth and price
    for item in regular:
        if sections(item) == {"Orchestra"}:
            assert item["scores"]["similarity"] < 0.5
    # an admin asking for the user gets the user's taste, not the admin's
    for_user = await recommend(hub, admin, event["id"], 2, user_id=uuid.UUID(user.id))
    assert [seat_ids(i) for i in for_user] == [seat_ids(i) for i in regular]


async def test_taste_ranks_rows_as_the_engine_does(
    client: httpx.AsyncClient, hub: Hub, admin: Account, user: Account
) -> None:
    event = await make_event(client, admin, rows=5, seats_per_row=6)
    seats = await seat_map(client, event["id"])
    wanted = [
        s for s in seats
        if (s["section"], s["row"], s["number"]) in
        {("Orchestra", "A", 1), ("Orchestra", "C", 2), ("Balcony", "E", 3)}
    ]  # fmt: skip
    response = await book(client, user, event_id=event["id"], seat_ids=[s["id"] for s in wanted])
    assert response.status_code == 201, response.text
    taste = await seat_recommendations.taste_for(hub, uuid.UUID(user.id))
    assert taste is not None
    assert taste.sections == pytest.approx({"Orchestra": 2 / 3, "Balcony": 1 / 3})
    loaded = await events.load_event(hub, uuid.UUID(event["id"]))
    layout = await live_seats.layout_of(hub, loaded.venue_id)
    ranks = [float(layout.table.row_rank()[layout.idx_of[uuid.UUID(s["id"])]]) for s in wanted]
    assert sorted(ranks) == [0.0, 0.5, 1.0]
    assert taste.row_rank == pytest.approx(sum(ranks) / 3)
    assert taste.price_cents == pytest.approx((12_000 * 2 + 4_550) / 3)
    # a cancelled booking no longer counts
    booking_id = response.json()["id"]
    cancel = await client.post(f"{API}/bookings/{booking_id}/cancel", headers=user.headers)
    assert cancel.status_code == 200, cancel.text
    assert await seat_recommendations.taste_for(hub, uuid.UUID(user.id)) is None


async def test_accessibility_required_keeps_a_companion_beside_an_accessible_seat(
    client: httpx.AsyncClient, hub: Hub, admin: Account, user: Account
) -> None:
    venue = await make_venue(
        client,
        admin,
        sections=[
            {"name": "Orchestra", "rows": 3, "seats_per_row": 8, "base_price": "100.00"},
            {"name": "Balcony", "rows": 3, "seats_per_row": 8, "base_price": "40.00",
             "accessible_seats": [{"row": "B", "number": 1}, {"row": "C", "number": 8}]},
        ],
    )  # fmt: skip
    event = await make_event(client, admin, venue_id=venue["id"])
    found = await recommend(hub, user, event["id"], 3, accessibility_required=True)
    assert len(found) == 2  # one block around each accessible seat
    for item in found:
        accessible = [seat for seat in item["seats"] if seat["accessible"]]
        assert len(accessible) == 1 and item["together"]
        assert {seat["row"] for seat in item["seats"]} == {accessible[0]["row"]}
    # the companions beside B1 are sold: only the block by C8 is left
    b_row = [s for s in await seat_map(client, event["id"])
             if s["section"] == "Balcony" and s["row"] == "B" and s["number"] == 2]  # fmt: skip
    sold = await book(client, admin, event_id=event["id"], seat_ids=[b_row[0]["id"]])
    assert sold.status_code == 201, sold.text
    (left,) = await recommend(hub, user, event["id"], 3, accessibility_required=True)
    assert {(s["row"], s["number"]) for s in left["seats"]} == {("C", 6), ("C", 7), ("C", 8)}


async def test_a_cancelled_event_has_nothing_to_recommend(
    client: httpx.AsyncClient, hub: Hub, admin: Account, user: Account
) -> None:
    event = await make_event(client, admin, rows=2, seats_per_row=4)
    assert await recommend(hub, user, event["id"], 2)
    cancel = await client.post(f"{API}/events/{event['id']}/cancel", headers=admin.headers)
    assert cancel.status_code == 200, cancel.text
    assert await recommend(hub, user, event["id"], 2) == []
