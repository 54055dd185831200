"""Whose bookings a caller may list: their own; another user's only as an admin (403
``forbidden`` otherwise, never a silent swap for the caller's own list)."""

from __future__ import annotations

import httpx

from tests.conftest import Account
from tests.factories import make_event
from tests.hub.api.booking_helpers import API, book, hold_ok


async def _booked(client: httpx.AsyncClient, admin: Account, who: Account) -> str:
    event = await make_event(client, admin)
    held = await hold_ok(client, who, event["id"], quantity=1)
    booked = await book(client, who, hold_id=held["hold_id"])
    assert booked.status_code == 201, booked.text
    booking_id: str = booked.json()["id"]
    return booking_id


def _ids(response: httpx.Response) -> set[str]:
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["items"]}


async def test_a_user_may_not_list_someone_elses_bookings(
    client: httpx.AsyncClient, admin: Account, user: Account, other_user: Account
) -> None:
    await _booked(client, admin, user)
    await _booked(client, admin, other_user)
    response = await client.get(
        f"{API}/bookings", params={"user_id": user.id}, headers=other_user.headers
    )
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "forbidden"


async def test_a_user_may_name_themselves(
    client: httpx.AsyncClient, admin: Account, user: Account, other_user: Account
) -> None:
    mine = await _booked(client, admin, user)
    await _booked(client, admin, other_user)
    named = await client.get(f"{API}/bookings", params={"user_id": user.id}, headers=user.headers)
    unnamed = await client.get(f"{API}/bookings", headers=user.headers)
    assert _ids(named) == _ids(unnamed) == {mine}


async def test_an_admin_lists_anyones_bookings(
    client: httpx.AsyncClient, admin: Account, user: Account, other_user: Account
) -> None:
    theirs = await _booked(client, admin, user)
    await _booked(client, admin, other_user)
    listed = await client.get(f"{API}/bookings", params={"user_id": user.id}, headers=admin.headers)
    assert _ids(listed) == {theirs}
