"""Confirming a hold: one past its expiry is refused even when no one else wants its seats."""

from __future__ import annotations

import httpx

from hub.context import Hub
from tests.conftest import Account
from tests.factories import make_event
from tests.hub.api.booking_helpers import (
    API,
    book,
    hold_ok,
    iso_ms,
    redis_clock_reaches,
    seat_map,
    statuses,
)
from tests.waiting import eventually


async def test_expired_hold_cannot_be_confirmed_even_unopposed(
    short_client: httpx.AsyncClient,
    client: httpx.AsyncClient,
    hub: Hub,
    admin: Account,
    user: Account,
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=2)
    held = await hold_ok(short_client, user, event["id"], quantity=1)
    assert await eventually(lambda: redis_clock_reaches(hub, iso_ms(held["expires_at"])))
    refused = await book(short_client, user, hold_id=held["hold_id"])
    assert refused.status_code == 410
    again = await client.get(f"{API}/holds/{held['hold_id']}", headers=user.headers)
    assert again.status_code == 410
    assert statuses(await seat_map(client, event["id"]))[held["seats"][0]["id"]] == "free"
