"""Holds over time: an extension is honoured once, and a holder who stalls past the
expiry loses the seat to a fresh buyer."""

from __future__ import annotations

import httpx
import pytest

from hub.context import Hub
from tests.conftest import Account, register
from tests.factories import make_event
from tests.hub.api.booking_helpers import (
    API,
    book,
    hold_ok,
    ids_in,
    iso_ms,
    redis_clock_reaches,
    seat_map,
    statuses,
)
from tests.waiting import eventually


async def test_extension_is_honoured_once(
    client: httpx.AsyncClient, quick: httpx.AsyncClient, hub: Hub, admin: Account, user: Account
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=2)
    held = await hold_ok(quick, user, event["id"], quantity=1)
    url = f"{API}/holds/{held['hold_id']}/extend"
    extended = await quick.post(url, headers=user.headers)
    assert extended.status_code == 200, extended.text
    assert iso_ms(extended.json()["expires_at"]) - iso_ms(held["expires_at"]) == pytest.approx(
        1000, abs=5
    )
    again = await quick.post(url, headers=user.headers)
    assert again.status_code == 409 and again.json()["code"] == "conflict"
    # Past the original expiry, inside the extended one (a second later).
    assert await eventually(lambda: redis_clock_reaches(hub, iso_ms(held["expires_at"])))
    hold_url = f"{API}/holds/{held['hold_id']}"
    assert (await quick.get(hold_url, headers=user.headers)).status_code == 200

    async def expired() -> bool:
        return (await quick.get(hold_url, headers=user.headers)).status_code == 410

    assert await eventually(expired, within=3)
    other = await register(quick)
    foreign = await quick.post(url, headers=other.headers)
    assert foreign.status_code == 404


async def test_stale_holder_loses_to_a_fresh_buyer(
    client: httpx.AsyncClient,
    short_client: httpx.AsyncClient,
    hub: Hub,
    admin: Account,
    user: Account,
    other_user: Account,
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=4)
    seat = ids_in(await seat_map(client, event["id"]), "Orchestra")[0]
    stale = await hold_ok(short_client, user, event["id"], seat_ids=[seat])
    # A stalls past the hold's expiry (nothing sweeps it: this hub runs no leader loops).
    assert await eventually(lambda: redis_clock_reaches(hub, iso_ms(stale["expires_at"])))
    fresh = await hold_ok(short_client, other_user, event["id"], seat_ids=[seat])
    booked = await book(short_client, other_user, hold_id=fresh["hold_id"])
    assert booked.status_code == 201, booked.text
    refused = await book(short_client, user, hold_id=stale["hold_id"])
    assert refused.status_code == 410 and refused.json()["code"] == "hold_expired"
    assert statuses(await seat_map(client, event["id"]))[seat] == "sold"
    tickets = await short_client.get(f"{API}/bookings", headers=user.headers)
    assert tickets.json()["total"] == 0
