"""Seat recommendations over HTTP: the answer's shape, who may ask for whom, unknown events,
bad bodies, filters, and an empty list when nothing fits."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.conftest import Account
from tests.factories import make_event
from tests.hub.api.booking_helpers import API, seat_map

RECO = f"{API}/advanced/seats/recommendations"


async def recommend(client: httpx.AsyncClient, who: Account | None, **body: Any) -> httpx.Response:
    headers = who.headers if who is not None else {}
    return await client.post(RECO, json=body, headers=headers)


async def recommendations(
    client: httpx.AsyncClient, who: Account, **body: Any
) -> list[dict[str, Any]]:
    response = await recommend(client, who, **body)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["recommendations"]
    return found


@pytest.fixture
async def event(client: httpx.AsyncClient, admin: Account) -> dict[str, Any]:
    return await make_event(client, admin, rows=4, seats_per_row=10)  # 120.00 / 45.50


async def test_the_answer_has_the_contract_shape_and_keeps_every_rule(
    client: httpx.AsyncClient, user: Account, event: dict[str, Any]
) -> None:
    found = await recommendations(client, user, event_id=event["id"], quantity=3)
    assert 1 <= len(found) <= 5
    by_id = {s["id"]: s for s in await seat_map(client, event["id"])}
    seen: set[str] = set()
    for item in found:
        assert set(item) == {"seats", "total_price", "together", "score", "scores"}
        assert set(item["scores"]) == {"similarity", "value", "location", "group"}
        assert len(item["seats"]) == 3 and item["together"] is True
        for seat in item["seats"]:
            assert set(seat) == {"id", "section", "row", "number", "price", "accessible"}
            shown = by_id[seat["id"]]
            assert shown["status"] == "free"
            assert (seat["section"], seat["row"], seat["number"], seat["price"]) == (
                shown["section"], shown["row"], shown["number"], shown["price"],
            )  # fmt: skip
            assert seat["accessible"] is False
        total = sum(Decimal(str(s["price"])) for s in item["seats"])
        assert Decimal(str(item["total_price"])) == total
        for score in (item["score"], *item["scores"].values()):
            assert 0.0 <= score <= 1.0
        assert item["scores"]["similarity"] == 0.5  # no bookings yet: neutral
        ids = {s["id"] for s in item["seats"]}
        assert not seen & ids
        seen |= ids
    scores = [item["score"] for item in found]
    assert scores == sorted(scores, reverse=True)
    # the front section's middle block first: nothing else is as close to the stage
    assert {s["section"] for s in found[0]["seats"]} == {"Orchestra"}
    assert {s["row"] for s in found[0]["seats"]} == {"A"}


async def test_signed_in_only(client: httpx.AsyncClient, event: dict[str, Any]) -> None:
    response = await recommend(client, None, event_id=event["id"], quantity=2)
    assert response.status_code == 401 and response.json()["code"] == "unauthorized"


async def test_another_users_recommendations_are_forbidden_unless_admin(
    client: httpx.AsyncClient,
    user: Account,
    other_user: Account,
    admin: Account,
    event: dict[str, Any],
) -> None:
    response = await recommend(
        client, user, event_id=event["id"], quantity=2, user_id=other_user.id
    )
    assert response.status_code == 403 and response.json()["code"] == "forbidden"
    mine = await recommend(client, user, event_id=event["id"], quantity=2, user_id=user.id)
    assert mine.status_code == 200
    theirs = await recommend(client, admin, event_id=event["id"], quantity=2, user_id=other_user.id)
    assert theirs.status_code == 200 and theirs.json()["recommendations"]


async def test_an_unknown_event_is_not_found(client: httpx.AsyncClient, user: Account) -> None:
    response = await recommend(client, user, event_id=str(uuid.uuid4()), quantity=2)
    assert response.status_code == 404 and response.json()["code"] == "not_found"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"quantity": 0}, "quantity"),
        ({"quantity": 101}, "quantity"),
        ({"quantity": "2"}, "quantity"),
        ({"quantity": 2, "max_price": -1}, "max_price"),
        ({"quantity": 2, "max_price": 10.001}, "max_price"),
        ({"quantity": 2, "preferred_sections": "Balcony"}, "preferred_sections"),
        ({"quantity": 2, "preferred_sections": ["Pit"]}, "preferred_sections"),
        ({"quantity": 2, "accessibility_required": "yes"}, "accessibility_required"),
        ({"quantity": 2, "user_id": "me"}, "user_id"),
        ({"quantity": 2, "colour": "red"}, "colour"),
        ({}, "quantity"),
    ],
)
async def test_bad_bodies_are_422_naming_the_field(
    client: httpx.AsyncClient,
    user: Account,
    event: dict[str, Any],
    body: dict[str, Any],
    field: str,
) -> None:
    response = await recommend(client, user, event_id=event["id"], **body)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert field in {error["field"] for error in problem["errors"]}


async def test_budget_and_preferred_sections(
    client: httpx.AsyncClient, user: Account, event: dict[str, Any]
) -> None:
    cheap = await recommendations(client, user, event_id=event["id"], quantity=2, max_price=50)
    assert cheap and all(s["section"] == "Balcony" for item in cheap for s in item["seats"])
    assert all(s["price"] <= 50 for item in cheap for s in item["seats"])
    preferred = await recommendations(
        client, user, event_id=event["id"], quantity=2, preferred_sections=["Balcony"]
    )
    sections = [{s["section"] for s in item["seats"]} for item in preferred]
    assert sections[0] == {"Balcony"}  # Orchestra is closer, but Balcony was asked for
    # Balcony blocks all come before any Orchestra block
    assert sections == sorted(sections, key=lambda names: names != {"Balcony"})


async def test_nothing_fits_is_an_empty_list(
    client: httpx.AsyncClient, user: Account, event: dict[str, Any]
) -> None:
    for body in (
        {"quantity": 2, "max_price": 45},  # under every price
        {"quantity": 2, "accessibility_required": True},  # no accessible seat at this venue
    ):
        assert await recommendations(client, user, event_id=event["id"], **body) == []
