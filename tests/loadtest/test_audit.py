"""The oversell audit finds what it is for: double sales, API vs PostgreSQL drift, lost bookings."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from loadtest.audit import PgState, SeenBooking, check, load_pg
from tests.servers import TestServers, scratch_database

S1, S2, S3 = "seat-1", "seat-2", "seat-3"


def consistent() -> tuple[dict[str, str], PgState, list[SeenBooking]]:
    api = {S1: "sold", S2: "held", S3: "free"}
    pg = PgState(active_tickets=[(S1, "b1")], bookings={"b1": ("confirmed", (S1,), (S1,))})
    return api, pg, [SeenBooking("b1", (S1,))]


def test_consistent_state_passes() -> None:
    result = check(*consistent())
    assert result.ok, result.reasons
    assert result.line() == "audit: ok"


def test_sold_seat_shown_free_fails() -> None:
    api, pg, seen = consistent()
    api[S1] = "free"
    result = check(api, pg, seen)
    assert not result.ok
    assert result.line().startswith("audit: FAILED")
    assert any("not sold in the API" in r for r in result.reasons)


def test_sold_in_api_without_ticket_fails() -> None:
    api, pg, seen = consistent()
    api[S3] = "sold"
    result = check(api, pg, seen)
    assert any("have no active ticket" in r and S3 in r for r in result.reasons)


def test_booking_told_to_buyer_but_missing_fails() -> None:
    api, pg, seen = consistent()
    seen.append(SeenBooking("b2", (S2,)))
    result = check(api, pg, seen)
    assert any("missing" in r and "b2" in r for r in result.reasons)


def test_cancel_not_applied_fails() -> None:
    api, pg, _ = consistent()
    result = check(api, pg, [SeenBooking("b1", (S1,), cancelled=True)])
    assert any("not in the state the buyers were told" in r for r in result.reasons)


@pytest.fixture
async def scratch(servers: TestServers) -> AsyncIterator[str]:
    """A migrated database of its own, so the guard index can be dropped safely."""
    async with scratch_database(servers, "evently_audit") as url:
        yield url


async def test_seat_sold_twice_in_postgres_fails(scratch: str) -> None:
    con = await asyncpg.connect(scratch)
    try:
        await con.execute("DROP INDEX tickets_one_active_per_seat")
        user = await con.fetchval(
            "INSERT INTO users (email, name, password_hash) VALUES ($1, 'u', 'x') RETURNING id",
            f"{uuid.uuid4().hex}@example.com",
        )
        venue = await con.fetchval("INSERT INTO venues (name, city) VALUES ('v', 'c') RETURNING id")
        seat = await con.fetchval(
            "INSERT INTO seats (venue_id, idx, section, row_label, number, x, y, distance)"
            " VALUES ($1, 0, 'A', '1', 1, 0, 0, 1) RETURNING id",
            venue,
        )
        event = await con.fetchval(
            "INSERT INTO events (venue_id, name, category, starts_at)"
            " VALUES ($1, 'e', 'concert', now() + interval '30 days') RETURNING id",
            venue,
        )
        bookings = []
        for ref in ("EVT-A", "EVT-B"):  # two buyers, one seat: the double sale
            booking = await con.fetchval(
                "INSERT INTO bookings (reference, event_id, user_id, subtotal_cents, total_cents)"
                " VALUES ($1, $2, $3, 100, 100) RETURNING id",
                ref,
                event,
                user,
            )
            await con.execute(
                "INSERT INTO tickets (booking_id, event_id, seat_id, price_cents)"
                " VALUES ($1, $2, $3, 100)",
                booking,
                event,
                seat,
            )
            bookings.append(str(booking))
    finally:
        await con.close()
    pg = await load_pg(scratch, str(event))
    seen = [SeenBooking(b, (str(seat),)) for b in bookings]
    result = check({str(seat): "sold"}, pg, seen)
    assert not result.ok
    assert result.line().startswith("audit: FAILED")
    assert any("two or more active tickets" in r and str(seat) in r for r in result.reasons)
    assert result.figures["double_sold_seats"] == 1


def test_cancel_of_unknown_outcome_passes_either_whole_state() -> None:
    api, pg, _ = consistent()
    assert check(api, pg, [SeenBooking("b1", (S1,), cancelled=None)]).ok
    half = PgState(active_tickets=[], bookings={"b1": ("confirmed", (S1,), ())})
    result = check({**api, S1: "free"}, half, [SeenBooking("b1", (S1,), cancelled=None)])
    assert any("not in the state the buyers were told" in r for r in result.reasons)
