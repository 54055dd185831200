from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx

from hub import demo
from hub.context import Hub

COUNTS = """SELECT (SELECT count(*) FROM users) AS users,
                   (SELECT count(*) FROM venues) AS venues,
                   (SELECT count(*) FROM seats) AS seats,
                   (SELECT count(*) FROM events) AS events,
                   (SELECT count(*) FROM event_prices) AS prices,
                   (SELECT count(*) FROM discount_codes) AS codes"""


async def test_seed_demo_is_complete_and_idempotent(hub: Hub, client: httpx.AsyncClient) -> None:
    # `evently seed-demo` runs without a signing key: seeding must not need one.
    keyless = Hub(settings=hub.settings.replace(secret_key=None), db=hub.db, store=hub.store)
    first = await demo.seed_demo(keyless)
    before = dict(await hub.db.fetchrow(COUNTS) or {})
    second = await demo.seed_demo(hub)
    after = dict(await hub.db.fetchrow(COUNTS) or {})
    assert second == first
    assert after == before

    assert first.events >= 6
    assert ("admin", "admin@evently.local", "admin-demo-pass") in first.logins
    users = [login for login in first.logins if login[0] == "user"]
    assert {email for _, email, _ in users} == {
        "ada@evently.local",
        "grace@evently.local",
        "alan@evently.local",
    }
    # Every login works.
    for role, email, password in first.logins:
        response = await client.post(
            "/api/v1/auth/login", json={"email": email, "password": password}
        )
        assert response.status_code == 200, email
        assert response.json()["user"]["role"] == role

    venues = await _all(client, "/api/v1/venues")
    arena = [v for v in venues if v["name"] == "Evently Arena" and v["city"] == "Lisbon"]
    assert len(arena) == 1
    venue = arena[0]
    assert venue["capacity"] >= 2000
    assert [s["name"] for s in venue["sections"]][:3] == ["Orchestra", "Mezzanine", "Balcony"]
    assert all(s["accessible"] > 0 for s in venue["sections"])
    assert all(s["base_price"] is not None for s in venue["sections"])

    first_event = (await client.get(f"/api/v1/events/{first.first_event_id}")).json()
    assert first_event["venue_id"] == venue["id"]
    seats = (await client.get(f"/api/v1/events/{first.first_event_id}/seats")).json()["seats"]
    assert len(seats) == venue["capacity"]
    # Accessible seats sit at aisle ends of front rows.
    accessible = [s for s in seats if s["accessible"]]
    assert accessible and {s["row"] for s in accessible} <= {"A", "B"}
    assert {(s["section"], s["row"], s["number"]) for s in accessible} >= {
        ("Orchestra", "A", 1),
        ("Orchestra", "A", 14),
        ("Orchestra", "A", 15),
    }

    events = [e for e in await _all(client, "/api/v1/events") if e["venue_id"] == venue["id"]]
    assert len(events) == first.events
    assert len({e["category"] for e in events}) >= 6
    now = dt.datetime.now(dt.UTC)
    soonest = None
    for event in events:
        starts = dt.datetime.fromisoformat(event["starts_at"])
        assert dt.timedelta(days=3) <= starts - now <= dt.timedelta(days=60), event["starts_at"]
        assert event["description"] and event["keywords"]
        assert set(event["prices"]) == {"Orchestra", "Mezzanine", "Balcony"}
        if soonest is None or starts < soonest[0]:
            soonest = (starts, event["id"])
    assert soonest is not None and uuid.UUID(soonest[1]) == first.first_event_id

    code = await hub.db.fetchrow(
        "SELECT percent, max_uses, active FROM discount_codes WHERE code = 'BULK10'"
    )
    assert code is not None and (int(code["percent"]), code["max_uses"], code["active"]) == (
        10,
        1000,
        True,
    )


async def _all(client: httpx.AsyncClient, path: str) -> list[dict[str, Any]]:
    """Every item of a paginated listing (other tests add their own rows)."""
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        body = (await client.get(path, params={"size": 100, "page": page})).json()
        items.extend(body["items"])
        if len(items) >= body["total"] or not body["items"]:
            return items
        page += 1
