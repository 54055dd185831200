"""Helpers shared by the hold and booking tests: seat maps, holds, bookings over HTTP."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Account

API = "/api/v1"


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
