"""Pricing routes: on-demand updates (admin only), the public price history, and what a
price change does to holds: a held seat keeps its quoted price, a new hold gets the new one."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest

from hub.context import Hub
from tests.conftest import Account, register
from tests.factories import make_event

FACTOR_KEYS = {"demand", "time", "velocity", "waitlist"}


async def _update(client: httpx.AsyncClient, admin: Account, event_id: str) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/advanced/pricing/update/{event_id}", headers=admin.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _history(client: httpx.AsyncClient, event_id: str, **params: Any) -> dict[str, Any]:
    response = await client.get(f"/api/v1/events/{event_id}/prices/history", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_update_answers_every_section_with_its_factors(
    client: httpx.AsyncClient, admin: Account
) -> None:
    event = await make_event(client, admin)
    body = await _update(client, admin, event["id"])
    assert [e["event_id"] for e in body["events"]] == [event["id"]]
    sections = {s["section"]: s for s in body["events"][0]["sections"]}
    assert set(sections) == {"Orchestra", "Balcony"}
    orchestra = sections["Orchestra"]
    assert orchestra["old_price"] == 120.0
    # Nothing sold a month out: the low-demand discount, 15 % of the base price.
    assert orchestra["new_price"] == 102.0 and orchestra["applied"] is True
    assert set(orchestra["factors"]) == FACTOR_KEYS
    assert orchestra["factors"]["demand"] == pytest.approx(-0.15)
    assert sum(orchestra["factors"].values()) == pytest.approx(102 / 120 - 1)

    seen = (await client.get(f"/api/v1/events/{event['id']}")).json()
    assert seen["prices"] == {"Orchestra": 102.0, "Balcony": 38.68}
    assert seen["base_prices"] == {"Orchestra": 120.0, "Balcony": 45.5}
    seats = (await client.get(f"/api/v1/events/{event['id']}/seats")).json()["seats"]
    assert {s["price"] for s in seats if s["section"] == "Orchestra"} == {102.0}

    # The same state again: the target is where the price already is, nothing applied.
    again = await _update(client, admin, event["id"])
    assert [s["applied"] for s in again["events"][0]["sections"]] == [False, False]
    assert again["events"][0]["sections"][0]["old_price"] == 102.0


async def test_update_all_includes_every_on_sale_event(
    client: httpx.AsyncClient, admin: Account
) -> None:
    first, second = await make_event(client, admin), await make_event(client, admin)
    response = await client.post("/api/v1/advanced/pricing/update-all", headers=admin.headers)
    assert response.status_code == 200, response.text
    priced = {e["event_id"] for e in response.json()["events"]}
    assert {first["id"], second["id"]} <= priced


async def test_pricing_routes_are_for_admins(
    client: httpx.AsyncClient, admin: Account, user: Account
) -> None:
    event = await make_event(client, admin)
    for path in (f"/advanced/pricing/update/{event['id']}", "/advanced/pricing/update-all"):
        anonymous = await client.post(f"/api/v1{path}")
        assert anonymous.status_code == 401, anonymous.text
        assert anonymous.json()["code"] == "unauthorized"
        forbidden = await client.post(f"/api/v1{path}", headers=user.headers)
        assert forbidden.status_code == 403, forbidden.text
        assert forbidden.json()["code"] == "forbidden"
    seen = (await client.get(f"/api/v1/events/{event['id']}")).json()
    assert seen["prices"]["Orchestra"] == 120.0  # nothing was repriced


async def test_update_of_a_missing_or_cancelled_event(
    client: httpx.AsyncClient, admin: Account
) -> None:
    missing = await client.post(
        f"/api/v1/advanced/pricing/update/{uuid.uuid4()}", headers=admin.headers
    )
    assert missing.status_code == 404, missing.text
    event = await make_event(client, admin)
    cancelled = await client.post(f"/api/v1/events/{event['id']}/cancel", headers=admin.headers)
    assert cancelled.status_code == 200, cancelled.text
    refused = await client.post(
        f"/api/v1/advanced/pricing/update/{event['id']}", headers=admin.headers
    )
    assert refused.status_code == 409, refused.text


async def test_history_lists_applied_changes_oldest_first(
    client: httpx.AsyncClient, admin: Account, hub: Hub
) -> None:
    event = await make_event(client, admin)
    event_id = event["id"]
    assert await _history(client, event_id) == {"items": [], "page": 1, "size": 20, "total": 0}
    await _update(client, admin, event_id)  # both sections discounted
    await _update(client, admin, event_id)  # nothing applied
    patched = await client.patch(
        f"/api/v1/events/{event_id}",
        json={"section_prices": {"Orchestra": "130.00"}},
        headers=admin.headers,
    )
    assert patched.status_code == 200, patched.text
    # A quote that was not applied is never shown (the column allows it).
    async with hub.db.connection() as con:
        await con.execute(
            "INSERT INTO price_history (event_id, section, old_cents, new_cents, applied) "
            "VALUES ($1, 'Balcony', 3868, 9999, false)",
            uuid.UUID(event_id),
        )

    body = await _history(client, event_id)
    assert body["total"] == 3
    changes = [(i["section"], i["old_price"], i["new_price"]) for i in body["items"]]
    assert sorted(changes[:2]) == [("Balcony", 45.5, 38.68), ("Orchestra", 120.0, 102.0)]
    assert changes[2] == ("Orchestra", 102.0, 130.0)
    stamps = [dt.datetime.fromisoformat(i["created_at"]) for i in body["items"]]
    assert stamps == sorted(stamps)
    for item in body["items"]:
        assert set(item["factors"]) == FACTOR_KEYS
    # The admin's price is a new base: nothing moved it away from it.
    assert body["items"][2]["factors"] == dict.fromkeys(FACTOR_KEYS, 0.0)
    first = next(i for i in body["items"] if i["section"] == "Orchestra")
    assert first["factors"]["demand"] == pytest.approx(-0.15)

    orchestra = await _history(client, event_id, section="Orchestra")
    assert [i["new_price"] for i in orchestra["items"]] == [102.0, 130.0]
    assert orchestra["total"] == 2
    pages = [await _history(client, event_id, page=p, size=2) for p in (1, 2, 3)]
    assert [len(p["items"]) for p in pages] == [2, 1, 0]
    assert [p["total"] for p in pages] == [3, 3, 3]
    assert [i for p in pages for i in p["items"]] == body["items"]
    later = await _history(client, event_id, date_from=body["items"][2]["created_at"])
    assert [i["new_price"] for i in later["items"]] == [130.0]
    earlier = await _history(
        client, event_id, date_to=(stamps[0] - dt.timedelta(seconds=1)).isoformat()
    )
    assert earlier["total"] == 0


async def test_history_input_errors(client: httpx.AsyncClient, admin: Account) -> None:
    event = await make_event(client, admin)
    url = f"/api/v1/events/{event['id']}/prices/history"
    too_big = await client.get(url, params={"size": 101})
    assert too_big.status_code == 422, too_big.text
    assert too_big.json()["code"] == "validation_error"
    naive = await client.get(url, params={"date_from": "2030-01-01T00:00:00"})
    assert naive.status_code == 422, naive.text
    missing = await client.get(f"/api/v1/events/{uuid.uuid4()}/prices/history")
    assert missing.status_code == 404, missing.text


async def test_a_held_seat_keeps_its_quoted_price_and_a_new_hold_gets_the_new_one(
    client: httpx.AsyncClient, admin: Account
) -> None:
    event = await make_event(client, admin)
    event_id = event["id"]
    buyer = await register(client, "Early Buyer")
    late = await register(client, "Late Buyer")
    seats = (await client.get(f"/api/v1/events/{event_id}/seats")).json()["seats"]
    orchestra = [s["id"] for s in seats if s["section"] == "Orchestra"]

    held = await client.post(
        f"/api/v1/events/{event_id}/holds", json={"seat_ids": orchestra[:1]}, headers=buyer.headers
    )
    assert held.status_code == 201, held.text
    assert held.json()["seats"][0]["price"] == 120.0

    quote = await _update(client, admin, event_id)
    new_price = Decimal(str(quote["events"][0]["sections"][0]["new_price"]))
    assert quote["events"][0]["sections"][0]["applied"] and new_price < 120

    hold_id = held.json()["hold_id"]
    kept = await client.get(f"/api/v1/holds/{hold_id}", headers=buyer.headers)
    assert kept.status_code == 200, kept.text
    assert kept.json()["seats"][0]["price"] == 120.0
    fresh = await client.post(
        f"/api/v1/events/{event_id}/holds", json={"seat_ids": orchestra[1:2]}, headers=late.headers
    )
    assert fresh.status_code == 201, fresh.text
    assert Decimal(str(fresh.json()["seats"][0]["price"])) == new_price

    booked = await client.post("/api/v1/bookings", json={"hold_id": hold_id}, headers=buyer.headers)
    assert booked.status_code == 201, booked.text
    assert booked.json()["total"] == 120.0
