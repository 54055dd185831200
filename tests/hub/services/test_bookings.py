"""Confirming a hold: one past its expiry is refused even when no one else wants its seats;
one whose request deadline falls while its COMMIT is on its way is not undone if it stands."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from hub.app import create_app
from hub.context import Hub
from hub.settings import Settings
from tests.conftest import Account
from tests.factories import make_event
from tests.hub.api.booking_helpers import (
    API,
    ScriptedPayments,
    book,
    hold_ok,
    iso_ms,
    redis_clock_reaches,
    seat_map,
    statuses,
)
from tests.waiting import eventually


async def test_expired_hold_cannot_be_confirmed_even_unopposed(
    short_client: httpx.AsyncClient,
    client: httpx.AsyncClient,
    hub: Hub,
    admin: Account,
    user: Account,
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=2)
    held = await hold_ok(short_client, user, event["id"], quantity=1)
    assert await eventually(lambda: redis_clock_reaches(hub, iso_ms(held["expires_at"])))
    refused = await book(short_client, user, hold_id=held["hold_id"])
    assert refused.status_code == 410
    again = await client.get(f"{API}/holds/{held['hold_id']}", headers=user.headers)
    assert again.status_code == 410
    assert statuses(await seat_map(client, event["id"]))[held["seats"][0]["id"]] == "free"


COMMIT_SLEEP_S = 1.5


@pytest.fixture
async def hasty(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, ScriptedPayments]]:
    """A second hub on the same servers whose requests give up after half a second."""
    app = create_app(settings.replace(request_timeout_seconds=0.5), leader_loops=())
    async with app.router.lifespan_context(app):
        payments = app.state.hub.payments = ScriptedPayments()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hasty") as client:
            yield client, payments


async def test_a_deadline_during_the_commit_does_not_undo_a_booking_that_stands(
    hasty: tuple[httpx.AsyncClient, ScriptedPayments],
    client: httpx.AsyncClient,
    hub: Hub,
    admin: Account,
    user: Account,
) -> None:
    """A deferred trigger makes this event's COMMIT take 1.5 s, past the 0.5 s deadline: the
    request is cancelled while its COMMIT is on its way, and the server commits anyway. The
    buyer is told 503, but the booking stands, so it must be sold, not refunded."""
    slow_client, payments = hasty
    event = await make_event(client, admin, rows=1, seats_per_row=4)
    held = await hold_ok(slow_client, user, event["id"], quantity=2)
    await hub.db.execute(
        f"""
        CREATE FUNCTION evently_test_slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.event_id = '{event["id"]}' THEN PERFORM pg_sleep({COMMIT_SLEEP_S}); END IF;
            RETURN NULL;
        END $$;
        CREATE CONSTRAINT TRIGGER evently_test_slow_commit AFTER INSERT ON bookings
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
            EXECUTE FUNCTION evently_test_slow_commit();
        """
    )
    try:
        response = await book(slow_client, user, hold_id=held["hold_id"])
    finally:
        await hub.db.execute(
            "DROP TRIGGER evently_test_slow_commit ON bookings;"
            "DROP FUNCTION evently_test_slow_commit()"
        )
    assert response.status_code == 503, response.text
    standing = await hub.db.fetchval(
        "SELECT status FROM bookings WHERE hold_id = $1", uuid.UUID(held["hold_id"])
    )
    assert standing == "confirmed"
    assert (payments.charges, payments.refunds) == (1, 0)
    seats = [s["id"] for s in held["seats"]]

    async def sold() -> bool:
        now = statuses(await seat_map(client, event["id"]))
        return all(now[s] == "sold" for s in seats)

    assert await eventually(sold)
