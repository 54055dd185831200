"""Seat state rebuilt from PostgreSQL when Redis lost it: sold seats stay sold, what a user
owns still counts, a forced rebuild keeps live holds, and the rebuild-inventory command."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from typing import Any

import httpx

from engines.seats import SeatCode
from hub.context import Hub
from hub.inventory import HoldKind
from hub.services import live_seats
from hub.settings import Settings
from tests.conftest import Account
from tests.factories import make_event
from tests.hub.api.booking_helpers import book, hold, hold_ok, seat_map, statuses


async def _forget_event(hub: Hub, event_id: str) -> int:
    """What a Redis restart does to one event: every key of it is gone."""
    pattern = hub.store.keys.event(event_id, "*")
    keys = [k async for k in hub.store.client.scan_iter(match=pattern, count=1000)]
    if keys:
        await hub.store.client.delete(*keys)
    return len(keys)


async def test_redis_lost_state_is_rebuilt_with_sold_seats_sold(
    client: httpx.AsyncClient, hub: Hub, admin: Account, user: Account, other_user: Account
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=5, max_tickets_per_user=2)
    booking = (await book(client, user, event_id=event["id"], quantity=2)).json()
    held = await hold_ok(client, other_user, event["id"], quantity=1)
    assert await _forget_event(hub, event["id"]) > 0
    assert not await hub.inventory.is_loaded(uuid.UUID(event["id"]))
    after = statuses(await seat_map(client, event["id"]))  # first use loads from PostgreSQL
    assert all(after[s["id"]] == "sold" for s in booking["seats"])
    assert after[held["seats"][0]["id"]] == "free"  # holds may be lost; users re-hold
    assert sum(1 for s in after.values() if s == "sold") == 2
    # What the user owns still counts against the limit.
    limited = await hold(client, user, event["id"], quantity=1)
    assert limited.status_code == 422 and limited.json()["code"] == "limit_exceeded"
    # A hold placed before the event is touched again loads it too.
    await _forget_event(hub, event["id"])
    sold_seat = booking["seats"][0]["id"]
    refused = await hold(client, other_user, event["id"], seat_ids=[sold_seat])
    assert refused.status_code == 409 and refused.json()["seats"] == [sold_seat]


async def test_forced_rebuild_keeps_live_holds_and_their_counts(
    client: httpx.AsyncClient, hub: Hub, admin: Account, user: Account
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=5, max_tickets_per_user=3)
    await book(client, user, event_id=event["id"], quantity=1)
    held = await hold_ok(client, user, event["id"], quantity=2)
    event_id = uuid.UUID(event["id"])
    assert event_id in await live_seats.rebuild(hub)
    after = statuses(await seat_map(client, event["id"]))
    assert [after[s["id"]] for s in held["seats"]] == ["held", "held"]
    assert await hub.inventory.owned_count(event_id, uuid.UUID(user.id)) == 3
    hold_record = await hub.inventory.get_hold(event_id, uuid.UUID(held["hold_id"]))
    assert hold_record is not None and hold_record.kind is HoldKind.SINGLE
    assert (await book(client, user, hold_id=held["hold_id"])).status_code == 201


async def test_rebuild_inventory_command(
    client: httpx.AsyncClient, hub: Hub, settings: Settings, admin: Account, user: Account
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=3)
    booking: dict[str, Any] = (await book(client, user, event_id=event["id"], quantity=1)).json()
    await _forget_event(hub, event["id"])
    env = {
        **os.environ,
        "EVENTLY_DATABASE_URL": settings.database_url or "",
        "EVENTLY_REDIS_URL": settings.redis_url or "",
        "EVENTLY_REDIS_PREFIX": settings.redis_prefix,
        "EVENTLY_LOG_LEVEL": "warning",
    }
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "hub.cli", "rebuild-inventory", "--event", event["id"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "1 event(s)" in done.stdout
    assert await hub.inventory.is_loaded(uuid.UUID(event["id"]))
    snapshot = await hub.inventory.snapshot(uuid.UUID(event["id"]))
    assert snapshot is not None and snapshot[1].count(SeatCode.SOLD) == 1
    assert statuses(await seat_map(client, event["id"]))[booking["seats"][0]["id"]] == "sold"
