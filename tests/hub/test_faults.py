"""Backing services down: clear 503 problems (never a 500, never a hang), nothing changed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from hub.app import create_app
from hub.settings import Settings
from tests.conftest import Account
from tests.factories import make_event
from tests.live import free_port


@pytest.fixture(scope="module")
async def no_redis(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A hub whose Redis is unreachable (nothing listens on its port)."""
    app = create_app(
        settings.replace(redis_url=f"redis://127.0.0.1:{free_port()}/0"), leader_loops=()
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://down") as client:
            yield client


async def test_redis_down_is_503_and_changes_nothing(
    no_redis: httpx.AsyncClient, client: httpx.AsyncClient, admin: Account, user: Account
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=2)
    ready = await no_redis.get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["redis"]["ok"] is False
    held = await no_redis.post(
        f"/api/v1/events/{event['id']}/holds", json={"quantity": 1}, headers=user.headers
    )
    assert held.status_code == 503
    assert held.headers["content-type"] == "application/problem+json"
    assert held.json()["code"] == "service_unavailable"
    assert int(held.headers["Retry-After"]) >= 1
    booked = await no_redis.post(
        "/api/v1/bookings", json={"event_id": event["id"], "quantity": 1}, headers=user.headers
    )
    assert booked.status_code == 503
    # Nothing was held or sold: the healthy hub sees every seat free, no booking exists.
    seats = (await client.get(f"/api/v1/events/{event['id']}/seats")).json()["seats"]
    assert {s["status"] for s in seats} == {"free"}
    mine = await client.get("/api/v1/bookings", headers=user.headers)
    assert mine.json()["total"] == 0
    # Signing in still works: revocations are checked in PostgreSQL when Redis is away.
    assert (await no_redis.get("/api/v1/users/me", headers=user.headers)).status_code == 200
