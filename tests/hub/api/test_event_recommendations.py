"""``POST /advanced/events/recommendations``: the answer's shape, who may ask for whom, the
limit, strict bodies, and a booking made through the API shaping the next answer."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import Account
from tests.factories import make_event

PATH = "/api/v1/advanced/events/recommendations"


async def _recommend(client: httpx.AsyncClient, who: Account, **body: Any) -> httpx.Response:
    return await client.post(PATH, json=body, headers=who.headers)


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


async def test_the_caller_gets_scored_explained_upcoming_events(
    client: httpx.AsyncClient, admin: Account, user: Account
) -> None:
    await make_event(client, admin)  # at least one event open
    response = await _recommend(client, user)
    assert response.status_code == 200, response.text
    items = response.json()["recommendations"]
    assert 1 <= len(items) <= 10
    for item in items:
        assert set(item) == {"event_id", "score", "method", "reasons"}
        uuid.UUID(item["event_id"])
        assert 0 <= item["score"] <= 1
        assert item["method"] == "popular"  # no bookings yet
        assert item["reasons"] and all(isinstance(reason, str) for reason in item["reasons"])
    assert len({item["event_id"] for item in items}) == len(items)
    limited = await _recommend(client, user, limit=1, user_id=user.id)
    assert limited.status_code == 200 and len(limited.json()["recommendations"]) == 1


async def test_a_booking_through_the_api_leaves_the_next_answer(
    client: httpx.AsyncClient, admin: Account, user: Account
) -> None:
    await make_event(client, admin)
    before = (await _recommend(client, user, limit=50)).json()["recommendations"]
    booked = None
    for item in before:  # the first that still has a seat for us
        response = await client.post(
            "/api/v1/bookings",
            json={"event_id": item["event_id"], "quantity": 1},
            headers=user.headers,
        )
        if response.status_code == 201:
            booked = item["event_id"]
            break
    assert booked is not None
    after = (await _recommend(client, user, limit=50)).json()["recommendations"]
    assert booked not in {item["event_id"] for item in after}


async def test_only_an_admin_may_ask_for_someone_else(
    client: httpx.AsyncClient, admin: Account, user: Account, other_user: Account
) -> None:
    _problem(await _recommend(client, user, user_id=other_user.id), 403, "forbidden")
    assert (await _recommend(client, admin, user_id=other_user.id)).status_code == 200
    _problem(await _recommend(client, admin, user_id=str(uuid.uuid4())), 404, "not_found")
    anonymous = await client.post(PATH, json={})
    _problem(anonymous, 401, "unauthorized")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"limit": 51}, "limit"),
        ({"limit": 0}, "limit"),
        ({"limit": "5"}, "limit"),
        ({"user_id": "not-a-uuid"}, "user_id"),
        ({"category": "jazz"}, "category"),
    ],
)
async def test_bad_bodies_are_422_naming_the_field(
    client: httpx.AsyncClient, user: Account, body: dict[str, Any], field: str
) -> None:
    problem = _problem(await _recommend(client, user, **body), 422, "validation_error")
    assert field in {error["field"] for error in problem["errors"]}
