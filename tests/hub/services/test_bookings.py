"""Confirming a hold: one past its expiry is refused even when no one else wants its seats;
one whose request deadline falls while its COMMIT is on its way is not undone if it stands,
and its buyer is answered without waiting for PostgreSQL to say whether it stood."""

from __future__ import annotations

import asyncio
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import structlog
from structlog.testing import capture_logs

from hub.app import create_app
from hub.context import Hub
from hub.services import bookings
from hub.settings import Settings
from hub.tasks import SETTLE_WAIT_SECONDS
from loadtest.tcp_proxy import TcpProxy
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


@asynccontextmanager
async def _hasty_hub(
    settings: Settings,
) -> AsyncIterator[tuple[httpx.AsyncClient, ScriptedPayments]]:
    """A second hub on these servers whose requests give up after half a second."""
    app = create_app(settings.replace(request_timeout_seconds=0.5), leader_loops=())
    async with app.router.lifespan_context(app):
        payments = app.state.hub.payments = ScriptedPayments()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hasty") as client:
            yield client, payments


@pytest.fixture
async def hasty(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, ScriptedPayments]]:
    """A second hub on the same servers whose requests give up after half a second."""
    async with _hasty_hub(settings) as hub_client:
        yield hub_client


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
    async with _slow_commit(hub, event["id"], COMMIT_SLEEP_S):
        response = await book(slow_client, user, hold_id=held["hold_id"])
    assert response.status_code == 503, response.text
    standing = await hub.db.fetchval(
        "SELECT status FROM bookings WHERE hold_id = $1", uuid.UUID(held["hold_id"])
    )
    assert standing == "confirmed"
    assert (payments.charges, payments.refunds) == (1, 0)
    assert await eventually(lambda: _all_sold(client, event["id"], held))


async def test_a_buyer_cut_off_mid_commit_is_answered_without_waiting_for_the_check(
    hasty: tuple[httpx.AsyncClient, ScriptedPayments],
    client: httpx.AsyncClient,
    hub: Hub,
    admin: Account,
    user: Account,
) -> None:
    """Whether the cut-off COMMIT stood can be known only once it has ended (4 s here; on a
    silent server, never): the buyer's 503 comes at the deadline plus a short grace, and
    the check finishes behind it — the booking stands, so its seats end sold and nothing
    is refunded."""
    slow_client, payments = hasty
    event = await make_event(client, admin, rows=1, seats_per_row=4)
    held = await hold_ok(slow_client, user, event["id"], quantity=2)
    async with _slow_commit(hub, event["id"], 4.0):
        started = time.monotonic()
        response = await book(slow_client, user, hold_id=held["hold_id"])
        answered = time.monotonic() - started
        assert response.status_code == 503, response.text
        assert answered < 0.5 + SETTLE_WAIT_SECONDS + 1.0, f"answered after {answered:.2f} s"
        assert await eventually(lambda: _all_sold(client, event["id"], held), within=10)
    assert (payments.charges, payments.refunds) == (1, 0)


@pytest.fixture
async def hasty_by_proxy(
    settings: Settings,
) -> AsyncIterator[tuple[httpx.AsyncClient, ScriptedPayments, TcpProxy]]:
    """``hasty``, with its PostgreSQL traffic through a proxy that can black-hole it."""
    assert settings.database_url
    parts = urllib.parse.urlsplit(settings.database_url)
    assert parts.hostname is not None and parts.port is not None
    proxy = await TcpProxy(parts.hostname, parts.port).start()
    proxied = settings.replace(database_url=proxy.url_for(settings.database_url))
    try:
        async with _hasty_hub(proxied) as (client, payments):
            yield client, payments, proxy
    finally:
        await proxy.stop()


async def test_a_cut_off_commit_is_asked_about_until_postgresql_answers(
    hasty_by_proxy: tuple[httpx.AsyncClient, ScriptedPayments, TcpProxy],
    client: httpx.AsyncClient,
    hub: Hub,
    admin: Account,
    user: Account,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The COMMIT (held 1.5 s by the trigger) is on its way when PostgreSQL's answers start
    to be lost, for 2.5 s: the deadline cuts the request, and whether the booking stood
    cannot be asked until the link heals. The check keeps asking behind the 503, then finds
    the booking: its seats end sold, nothing refunded, no commit left unknown."""
    slow_client, payments, proxy = hasty_by_proxy
    monkeypatch.setattr(bookings, "log", structlog.get_logger(bookings.__name__))
    event = await make_event(client, admin, rows=1, seats_per_row=4)
    held = await hold_ok(slow_client, user, event["id"], quantity=2)
    with capture_logs() as logs:
        async with _slow_commit(hub, event["id"], 1.5):
            booking = asyncio.create_task(book(slow_client, user, hold_id=held["hold_id"]))
            await asyncio.sleep(0.3)  # the COMMIT is on its way by now
            proxy.black_hole = True
            response = await booking
            await asyncio.sleep(2.2)
            proxy.black_hole = False
            assert response.status_code == 503, response.text
            assert await eventually(lambda: _all_sold(client, event["id"], held), within=10)
    seen = [entry["event"] for entry in logs]
    assert "booking_commit_found" in seen and "booking_commit_unknown" not in seen, seen
    assert (payments.charges, payments.refunds) == (1, 0)


async def _all_sold(client: httpx.AsyncClient, event_id: str, held: dict[str, Any]) -> bool:
    now = statuses(await seat_map(client, event_id))
    return all(now[seat["id"]] == "sold" for seat in held["seats"])


@asynccontextmanager
async def _slow_commit(hub: Hub, event_id: str, seconds: float) -> AsyncIterator[None]:
    """A deferred trigger that makes the COMMIT of a booking of ``event_id`` take ``seconds``."""
    await hub.db.execute(
        f"""
        CREATE FUNCTION evently_test_slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.event_id = '{event_id}' THEN PERFORM pg_sleep({seconds}); END IF;
            RETURN NULL;
        END $$;
        CREATE CONSTRAINT TRIGGER evently_test_slow_commit AFTER INSERT ON bookings
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
            EXECUTE FUNCTION evently_test_slow_commit();
        """
    )
    try:
        yield
    finally:
        await hub.db.execute(
            "DROP TRIGGER evently_test_slow_commit ON bookings;"
            "DROP FUNCTION evently_test_slow_commit()"
        )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("status = 'cancelled'", "cancelled"),
        ("starts_at = now() - interval '1 minute'", "started"),
    ],
)
async def test_an_event_closed_behind_the_cached_copy_takes_no_booking(
    client: httpx.AsyncClient,
    hub: Hub,
    admin: Account,
    user: Account,
    change: str,
    reason: str,
) -> None:
    """The booking's own statement reads the event under its lock: an event cancelled (or
    started) after this process cached it is refused there, nothing is written, the charge
    is refunded and the hold is the buyer's again."""
    event = await make_event(client, admin, rows=1, seats_per_row=2)
    held = await hold_ok(client, user, event["id"], quantity=1)
    previous, payments = hub.payments, ScriptedPayments()
    hub.payments = payments
    try:
        async with hub.db.connection() as con:  # the hub's cached copy still says scheduled
            await con.execute(f"UPDATE events SET {change} WHERE id = $1", uuid.UUID(event["id"]))
        refused = await book(client, user, key=f"k-{uuid.uuid4().hex}", hold_id=held["hold_id"])
    finally:
        hub.payments = previous
    assert refused.status_code == 409, refused.text
    assert refused.json()["detail"] == f"The event has {reason}"
    assert (payments.charges, payments.refunds) == (1, 1)
    async with hub.db.connection() as con:
        written = await con.fetchval(
            "SELECT count(*) FROM bookings WHERE hold_id = $1", uuid.UUID(held["hold_id"])
        )
    assert written == 0
    again = await client.get(f"{API}/holds/{held['hold_id']}", headers=user.headers)
    assert again.status_code == 200, again.text  # the buyer's hold again
