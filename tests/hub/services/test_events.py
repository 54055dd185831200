"""An event change is seen by every process the moment it returns, not a second later.

``short_client`` is a second hub on the same servers with caches of its own, as another
worker process has: it reads the event once, then the change is made through the first.
"""

from __future__ import annotations

import uuid

import httpx

from hub.context import Hub
from hub.db import events as events_db
from hub.services import events
from tests.conftest import Account
from tests.factories import make_event
from tests.hub.api.booking_helpers import API, hold, hold_ok


async def test_a_cancellation_stops_holds_in_every_process_at_once(
    client: httpx.AsyncClient, short_client: httpx.AsyncClient, admin: Account, user: Account
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=4)
    await hold_ok(short_client, user, event["id"], quantity=1)  # the other process caches it
    cancelled = await client.post(f"{API}/events/{event['id']}/cancel", headers=admin.headers)
    assert cancelled.status_code == 200, cancelled.text
    refused = await hold(short_client, user, event["id"], quantity=1)
    assert refused.status_code == 409 and refused.json()["code"] == "conflict", refused.text
    seen = await short_client.get(f"{API}/events/{event['id']}")
    assert seen.json()["status"] == "cancelled"


async def test_a_price_change_is_quoted_by_every_process_at_once(
    client: httpx.AsyncClient, short_client: httpx.AsyncClient, admin: Account, user: Account
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=4)
    first = await hold_ok(short_client, user, event["id"], quantity=1, section="Orchestra")
    assert first["total"] == float(event["prices"]["Orchestra"])
    changed = await client.patch(
        f"{API}/events/{event['id']}",
        json={"section_prices": {"Orchestra": 150.0}},
        headers=admin.headers,
    )
    assert changed.status_code == 200, changed.text
    seen = await short_client.get(f"{API}/events/{event['id']}")
    assert seen.json()["prices"]["Orchestra"] == 150.0
    seats = (await short_client.get(f"{API}/events/{event['id']}/seats")).json()["seats"]
    assert {s["price"] for s in seats if s["section"] == "Orchestra" and s["status"] == "free"} == {
        150.0
    }
    second = await hold_ok(short_client, user, event["id"], quantity=1, section="Orchestra")
    assert second["total"] == 150.0


async def test_a_batch_of_changes_is_seen_by_every_process_once_it_returns(
    hub: Hub, client: httpx.AsyncClient, short_client: httpx.AsyncClient, admin: Account
) -> None:
    made = [await make_event(client, admin, rows=1, seats_per_row=4) for _ in range(2)]
    for event in made:  # both processes cache both events
        for reader in (client, short_client):
            assert (await reader.get(f"{API}/events/{event['id']}")).status_code == 200
    ids = [uuid.UUID(event["id"]) for event in made]
    async with hub.db.transaction() as con:
        for event_id in ids:
            await events_db.set_prices(con, event_id, {"Orchestra": 12_345})
    await events.changed_and_announced(hub, [(e, {"t": "price"}) for e in ids])
    for event in made:
        for reader in (client, short_client):
            seen = (await reader.get(f"{API}/events/{event['id']}")).json()
            assert seen["prices"]["Orchestra"] == 123.45
