"""An event change is seen by every process the moment it returns, not a second later.

``short_client`` is a second hub on the same servers with caches of its own, as another
worker process has: it reads the event once, then the change is made through the first.
"""

from __future__ import annotations

import httpx

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
