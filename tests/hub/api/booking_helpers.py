"""Helpers shared by the hold, booking and waitlist tests: seat maps, holds, bookings and
waitlist places over HTTP, the clock that hold and offer expiry is judged by, and a
payment provider that counts its calls."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import httpx

from engines.discounts import PriceBreakdown
from hub.context import Hub
from hub.db import bookings as bookings_db
from hub.payments import PaymentDeclined
from tests.conftest import Account

API = "/api/v1"


class ScriptedPayments:
    """A provider that declines while ``decline`` is set and can be slowed down."""

    name = "scripted"

    def __init__(self, delay: float = 0.0) -> None:
        self.decline = False
        self.delay = delay
        self.charges = 0
        self.refunds = 0

    async def charge(self, amount_cents: int, user_id: uuid.UUID, reference: str) -> str:
        await asyncio.sleep(self.delay)
        if self.decline:
            raise PaymentDeclined("scripted")
        self.charges += 1
        return f"ch_{reference}"

    async def refund(
        self, amount_cents: int, user_id: uuid.UUID, reference: str, charge_ref: str
    ) -> str:
        self.refunds += 1
        return f"re_{reference}"


async def seat_map(client: httpx.AsyncClient, event_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"{API}/events/{event_id}/seats")
    assert response.status_code == 200, response.text
    seats: list[dict[str, Any]] = response.json()["seats"]
    return seats


def ids_in(seats: list[dict[str, Any]], section: str) -> list[str]:
    return [s["id"] for s in seats if s["section"] == section]


def statuses(seats: list[dict[str, Any]]) -> dict[str, str]:
    return {s["id"]: s["status"] for s in seats}


async def hold(
    client: httpx.AsyncClient, who: Account, event_id: str, **body: Any
) -> httpx.Response:
    return await client.post(f"{API}/events/{event_id}/holds", json=body, headers=who.headers)


async def book(
    client: httpx.AsyncClient, who: Account, key: str | None = None, **body: Any
) -> httpx.Response:
    headers = dict(who.headers)
    if key is not None:
        headers["Idempotency-Key"] = key
    return await client.post(f"{API}/bookings", json=body, headers=headers)


async def hold_ok(
    client: httpx.AsyncClient, who: Account, event_id: str, **body: Any
) -> dict[str, Any]:
    response = await hold(client, who, event_id, **body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def waitlist_of(client: httpx.AsyncClient, who: Account, event_id: str) -> dict[str, Any]:
    response = await client.get(f"{API}/events/{event_id}/waitlist", headers=who.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def join_waitlist(
    client: httpx.AsyncClient, who: Account, event_id: str, n: int
) -> dict[str, Any]:
    response = await client.post(
        f"{API}/events/{event_id}/waitlist", json={"quantity": n}, headers=who.headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def iso_ms(iso: str) -> float:
    """An API timestamp (``expires_at`` ...) in milliseconds since the epoch."""
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000


async def redis_clock_reaches(hub: Hub, moment_ms: float) -> bool:
    """Whether Redis's clock, the one clock hold expiry is judged by, has reached
    ``moment_ms``: wait on this with ``eventually`` rather than sleep past a TTL."""
    return await hub.inventory.server_time_ms() >= moment_ms


async def write_booking_behind(
    hub: Hub, event_id: uuid.UUID, user_id: uuid.UUID, hold_id: uuid.UUID, seat_ids: list[str]
) -> Any:
    """Write a hold's booking (two seats at 120.00) straight to PostgreSQL, as a confirming
    process does before it dies without telling Redis; returns the booking's row."""
    async with hub.db.transaction() as con:
        row = await bookings_db.write_confirmation(
            con,
            bookings_db.NewBooking(
                reference=f"EVT-T{uuid.uuid4().hex[:7].upper()}",
                event_id=event_id,
                user_id=user_id,
                hold_id=hold_id,
                price=PriceBreakdown(
                    subtotal_cents=24000, rate_bp=0, discount_cents=0, total_cents=24000
                ),
                discount_code=None,
                group_name=None,
                seat_ids=[uuid.UUID(s) for s in seat_ids],
                prices=[12000, 12000],
                provider="test",
                provider_ref="left-behind",
                notification_kind="booking_confirmed",
            ),
        )
    assert not isinstance(row, str), row  # written
    return row
