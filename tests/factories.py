"""Test data made through the HTTP API, as a client would: venues and events."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx

from tests.conftest import Account

DEFAULT_PRICES = {"Orchestra": "120.00", "Balcony": "45.50"}


def default_sections(rows: int = 5, seats_per_row: int = 10) -> list[dict[str, Any]]:
    """Two small sections, "Orchestra" (nearest the stage) and "Balcony"."""
    return [
        {"name": "Orchestra", "rows": rows, "seats_per_row": seats_per_row, "base_price": "100.00"},
        {"name": "Balcony", "rows": rows, "seats_per_row": seats_per_row, "base_price": "40.00"},
    ]


async def make_venue(
    client: httpx.AsyncClient,
    admin: Account,
    *,
    sections: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Create a venue through ``POST /venues`` and return its JSON."""
    body = {
        "name": f"Venue {uuid.uuid4().hex[:8]}",
        "city": "Lisbon",
        "sections": sections if sections is not None else default_sections(),
    }
    response = await client.post("/api/v1/venues", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    venue: dict[str, Any] = response.json()
    return venue


async def make_event(
    client: httpx.AsyncClient,
    admin: Account,
    *,
    venue_id: str | None = None,
    rows: int = 5,
    seats_per_row: int = 10,
    prices: dict[str, Any] | None = None,
    max_tickets_per_user: int | None = None,
    starts_in_days: float = 30,
) -> dict[str, Any]:
    """Create an event through ``POST /events`` and return its JSON.

    Without ``venue_id`` a fresh venue with sections "Orchestra" and "Balcony" of
    ``rows`` x ``seats_per_row`` seats each is made for it. Without ``prices`` the sections
    named in ``DEFAULT_PRICES`` get those prices and the others their venue base price.
    """
    if prices is None and venue_id is not None:
        found = await client.get(f"/api/v1/venues/{venue_id}")
        assert found.status_code == 200, found.text
        names = {section["name"] for section in found.json()["sections"]}
        prices = {name: price for name, price in DEFAULT_PRICES.items() if name in names}
    if venue_id is None:
        venue = await make_venue(
            client, admin, sections=default_sections(rows=rows, seats_per_row=seats_per_row)
        )
        venue_id = venue["id"]
    starts_at = dt.datetime.now(dt.UTC) + dt.timedelta(days=starts_in_days)
    body: dict[str, Any] = {
        "name": f"Event {uuid.uuid4().hex[:8]}",
        "description": "A test event",
        "category": "concert",
        "keywords": ["test"],
        "venue_id": venue_id,
        "starts_at": starts_at.isoformat(),
        "section_prices": prices if prices is not None else dict(DEFAULT_PRICES),
    }
    if max_tickets_per_user is not None:
        body["max_tickets_per_user"] = max_tickets_per_user
    response = await client.post("/api/v1/events", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    event: dict[str, Any] = response.json()
    return event
