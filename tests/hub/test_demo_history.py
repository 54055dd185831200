"""The demo's two years of history: generated (``hub.demo_history``) and seeded with the demo.

The seeding tests run the demo on a database of their own (the counts are exact there, and
the shared database's other tests see no extra history); the generator tests call the
pure function directly.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import redis.asyncio as aioredis

from hub import demo
from hub import demo_history as history
from hub.context import Hub, open_hub
from hub.demo import DemoSummary
from hub.errors import Unauthorized
from hub.services import accounts, live_seats
from hub.settings import Settings
from tests.servers import TestServers, run_token, scratch_database

COUNTS = """SELECT (SELECT count(*) FROM users) AS users,
                   (SELECT count(*) FROM venues) AS venues,
                   (SELECT count(*) FROM events) AS events,
                   (SELECT count(*) FROM event_prices) AS prices,
                   (SELECT count(*) FROM bookings) AS bookings,
                   (SELECT count(*) FROM tickets) AS tickets,
                   (SELECT count(*) FROM hold_log) AS holds,
                   (SELECT count(*) FROM payments) AS payments,
                   (SELECT count(*) FROM discount_codes) AS codes,
                   (SELECT coalesce(sum(bookings), 0) FROM analytics_hourly) AS rolled_up"""


@dataclass
class Seeded:
    hub: Hub
    now: dt.datetime
    first: DemoSummary
    second: DemoSummary
    after_first: dict[str, Any]
    after_second: dict[str, Any]


@pytest.fixture(scope="module")
async def seeded(servers: TestServers) -> AsyncIterator[Seeded]:
    prefix = f"evently:demo{run_token()}:"
    async with scratch_database(servers, "evently_demo") as url:
        settings = Settings(
            database_url=url,
            redis_url=servers.redis_url,
            redis_prefix=prefix,
            log_format="json",
            log_level="warning",
            db_pool_min=1,
            db_pool_max=4,
        )
        async with open_hub(settings) as hub:
            now = dt.datetime.now(dt.UTC)
            started = time.perf_counter()
            first = await demo.seed_demo(hub, now=now)
            seconds = time.perf_counter() - started
            after_first = dict(await hub.db.fetchrow(COUNTS) or {})
            started = time.perf_counter()
            second = await demo.seed_demo(hub, now=now)
            again = time.perf_counter() - started
            after_second = dict(await hub.db.fetchrow(COUNTS) or {})
            print(
                f"\ndemo with its history seeded in {seconds:.1f} s (target 30 s), "
                f"again in {again:.2f} s: {after_first}"
            )
            yield Seeded(hub, now, first, second, after_first, after_second)
    client = aioredis.Redis.from_url(servers.redis_url)
    async for key in client.scan_iter(match=f"{prefix}*", count=1000):
        await client.delete(key)
    await client.aclose()


async def _rows(hub: Hub, sql: str, *args: Any) -> list[Any]:
    async with hub.db.connection() as con:
        return list(await con.fetch(sql, *args))


async def _value(hub: Hub, sql: str, *args: Any) -> Any:
    async with hub.db.connection() as con:
        return await con.fetchval(sql, *args)


async def test_the_history_is_seeded_once_with_the_demo(seeded: Seeded) -> None:
    counts = seeded.after_first
    assert counts["bookings"] == demo.HISTORY_BOOKINGS
    assert counts["users"] == 1 + len(demo.USERS) + demo.HISTORY_CUSTOMERS
    assert counts["venues"] == 2
    assert counts["holds"] > counts["bookings"]
    assert counts["tickets"] > counts["bookings"]
    # A second seed adds nothing and describes the same demo.
    assert seeded.after_second == counts
    assert seeded.second == seeded.first
    # The rollups were counted again after the history went in.
    assert counts["rolled_up"] == counts["bookings"]
    past = await _value(
        seeded.hub,
        "SELECT count(*) FROM events e JOIN venues v ON v.id = e.venue_id "
        "WHERE v.name = $1 AND e.starts_at < $2",
        demo.HALL_NAME,
        seeded.now,
    )
    assert past == demo.HISTORY_PAST_EVENTS


async def test_no_seat_is_sold_twice_and_every_row_adds_up(seeded: Seeded) -> None:
    hub = seeded.hub
    problems = await _rows(
        hub,
        """SELECT 'seat sold twice' AS problem FROM tickets WHERE active
            GROUP BY event_id, seat_id HAVING count(*) > 1
           UNION ALL
           SELECT 'seat of another venue' FROM tickets t JOIN events e ON e.id = t.event_id
             JOIN seats s ON s.id = t.seat_id WHERE s.venue_id <> e.venue_id
           UNION ALL
           SELECT 'total is not the tickets' FROM bookings b
             JOIN (SELECT booking_id, sum(price_cents) AS cents, count(*) AS n FROM tickets
                    GROUP BY booking_id) t ON t.booking_id = b.id
            WHERE b.total_cents <> t.cents OR b.subtotal_cents <> t.cents OR t.n NOT BETWEEN 1 AND 6
           UNION ALL
           SELECT 'customer booked an event twice' FROM bookings
            GROUP BY event_id, user_id HAVING count(*) > 1
           UNION ALL
           SELECT 'not before the start' FROM bookings b JOIN events e ON e.id = b.event_id
            WHERE b.created_at >= e.starts_at OR b.created_at >= $1
               OR b.cancelled_at NOT BETWEEN b.created_at AND e.starts_at
           UNION ALL
           SELECT 'cancellation not refunded' FROM bookings
            WHERE (status = 'cancelled') <> (cancelled_at IS NOT NULL)
               OR (status = 'cancelled' AND (refund_cents <> total_cents
                   OR refund_status <> 'paid' OR refund_paid_at IS NULL))
           UNION ALL
           SELECT 'cancelled ticket active' FROM tickets t JOIN bookings b ON b.id = t.booking_id
            WHERE t.active = (b.status = 'cancelled')
           UNION ALL
           SELECT 'hold not behind its booking' FROM bookings b
             LEFT JOIN hold_log h ON h.hold_id = b.hold_id
            WHERE h.hold_id IS NULL OR h.outcome <> 'booked' OR h.event_id <> b.event_id
               OR h.user_id <> b.user_id OR h.created_at > b.created_at
           UNION ALL
           SELECT 'hold still live' FROM hold_log
            WHERE outcome = 'held' OR ended_at IS NULL OR ended_at > $1
           UNION ALL
           SELECT 'payments do not match' FROM bookings b
            WHERE (SELECT count(*) FROM payments p WHERE p.booking_id = b.id AND p.kind = 'charge'
                      AND p.amount_cents = b.total_cents) <> 1
               OR (SELECT count(*) FROM payments p WHERE p.booking_id = b.id AND p.kind = 'refund')
                  <> (b.status = 'cancelled')::int
           UNION ALL
           SELECT 'booked before it was announced' FROM bookings b
             JOIN events e ON e.id = b.event_id WHERE b.created_at < e.created_at
           UNION ALL
           SELECT 'event created in the future' FROM events e WHERE e.created_at > $1
           UNION ALL
           SELECT 'event without prices' FROM events e
            WHERE (SELECT count(*) FROM event_prices p WHERE p.event_id = e.id)
               <> (SELECT count(*) FROM venue_sections s WHERE s.venue_id = e.venue_id)""",
        seeded.now,
    )
    assert [row["problem"] for row in problems] == []


async def test_history_customers_cannot_sign_in(seeded: Seeded) -> None:
    email = await _value(
        seeded.hub,
        "SELECT email FROM users WHERE email LIKE $1 LIMIT 1",
        f"%@{history.EMAIL_DOMAIN}",
    )
    assert email is not None
    for password in ("", history.UNUSABLE_PASSWORD, "demo-pass-123"):
        with pytest.raises(Unauthorized):
            await accounts.login(seeded.hub, email, password)


async def test_weekly_daily_and_yearly_seasonality_show(seeded: Seeded) -> None:
    weekday = await _rows(
        seeded.hub,
        "SELECT extract(isodow FROM created_at AT TIME ZONE 'UTC')::int AS day, count(*) AS n "
        "FROM bookings GROUP BY 1 ORDER BY 1",
    )
    per_day = {row["day"]: row["n"] for row in weekday}
    assert per_day[6] > 1.2 * max(per_day[1], per_day[2], per_day[3])  # Saturday vs Mon-Wed
    hours = await _rows(
        seeded.hub,
        "SELECT extract(hour FROM created_at AT TIME ZONE 'UTC')::int AS hour, count(*) AS n "
        "FROM bookings GROUP BY 1",
    )
    per_hour = {row["hour"]: row["n"] for row in hours}
    assert per_hour[20] > 4 * per_hour[4]
    # Events in the high season (July, December) sell more than in the low (January, August).
    months = await _rows(
        seeded.hub,
        """SELECT extract(month FROM e.starts_at AT TIME ZONE 'UTC')::int AS month,
                  count(b.id) AS n
             FROM events e JOIN bookings b ON b.event_id = e.id
            WHERE e.starts_at < $1 GROUP BY 1""",
        seeded.now,
    )
    per_month = {row["month"]: row["n"] for row in months}
    high = per_month.get(7, 0) + per_month.get(12, 0)
    low = per_month.get(1, 0) + per_month.get(8, 0)
    assert high > 1.5 * low


async def test_repeat_customers_keep_their_tastes(seeded: Seeded) -> None:
    rows = await _rows(
        seeded.hub,
        """SELECT user_id, sum(n) AS n, max(n)::float / sum(n) AS top_share
             FROM (SELECT b.user_id, e.category, count(*) AS n
                     FROM bookings b JOIN events e ON e.id = b.event_id
                    GROUP BY b.user_id, e.category) per_category
            GROUP BY user_id""",
    )
    bookers = len(rows)
    repeat = [row for row in rows if row["n"] >= 2]
    assert len(repeat) / bookers > 0.5
    keen = [row["top_share"] for row in rows if row["n"] >= 5]
    # Taste: 72 % of the weight on a favourite category, against 1/7 for no taste at all.
    assert keen and np.mean(keen) > 0.5
    # The demo users book too, mostly in their favourite and second categories.
    for email, (favourite, second) in demo.TASTES.items():
        categories = await _rows(
            seeded.hub,
            "SELECT e.category FROM bookings b JOIN events e ON e.id = b.event_id "
            "JOIN users u ON u.id = b.user_id WHERE u.email = $1",
            email,
        )
        assert len(categories) >= 3, email
        liked = sum(row["category"] in (favourite, second) for row in categories)
        assert liked / len(categories) > 0.6, email


async def test_hits_sell_out_and_holds_convert_partly(seeded: Seeded) -> None:
    sold = await _rows(
        seeded.hub,
        """SELECT e.id, count(t.id) AS tickets, v.capacity
             FROM events e JOIN venues v ON v.id = e.venue_id
             LEFT JOIN tickets t ON t.event_id = e.id
            WHERE e.starts_at < $1 GROUP BY e.id, v.capacity""",
        seeded.now,
    )
    sold_out = [row for row in sold if row["tickets"] == row["capacity"]]
    assert 1 <= len(sold_out) <= 0.1 * len(sold)
    counts = seeded.after_first
    conversion = counts["bookings"] / counts["holds"]
    assert 0.5 < conversion < 0.85
    cancelled = await _value(seeded.hub, "SELECT count(*) FROM bookings WHERE status = 'cancelled'")
    assert 0.02 < cancelled / counts["bookings"] < 0.1


async def test_the_arena_events_have_sold_seats_live_too(seeded: Seeded) -> None:
    """The upcoming demo events have sales so far (not sold out), and their live seat state
    in Redis shows exactly the seats PostgreSQL has sold."""
    hub = seeded.hub
    rows = await _rows(
        hub,
        """SELECT e.id, v.capacity, count(t.id) FILTER (WHERE t.active) AS active
             FROM events e JOIN venues v ON v.id = e.venue_id
             LEFT JOIN tickets t ON t.event_id = e.id
            WHERE v.name = $1 GROUP BY e.id, v.capacity""",
        demo.VENUE_NAME,
    )
    assert len(rows) == seeded.first.events
    assert sum(row["active"] for row in rows) > 0
    for row in rows:
        assert row["active"] < 0.9 * row["capacity"]
        _, states = await live_seats.seat_states(hub, row["id"], row["capacity"])
        assert states.count(2) == row["active"]


def _small_plan(now: int, venue: history.VenuePlan) -> history.Plan:
    return history.Plan(now=now, bookings=3_000, customers=400, past_events=30, venues=(venue,))


def _venue(rng: np.random.Generator) -> history.VenuePlan:
    rows, per_row = 20, 25
    n = rows * per_row
    return history.VenuePlan(
        id=history.uuids(rng, 1)[0].tobytes(),
        seat_ids=history.uuids(rng, n),
        rows=np.repeat(np.arange(rows), per_row),
        distance=np.repeat(np.arange(rows, dtype=float), per_row),
        sections=np.repeat(np.arange(2), n // 2),
        section_names=("Front", "Back"),
        section_cents=np.array([5000, 2500]),
    )


def test_the_generator_is_deterministic_and_exact() -> None:
    now = int(dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC).timestamp())
    venue = _venue(np.random.default_rng(1))
    first = history.generate(_small_plan(now, venue))
    again = history.generate(_small_plan(now, venue))
    for name, table in first.tables().items():
        for column, values in table.items():
            other = again.tables()[name][column]
            if values.dtype == object:
                assert values.tolist() == other.tolist(), (name, column)
            else:
                assert np.array_equal(np.ma.getdata(values), np.ma.getdata(other)), (name, column)
                assert np.array_equal(np.ma.getmaskarray(values), np.ma.getmaskarray(other))
    assert len(first.bookings["id"]) == 3_000
    assert len(np.unique(first.bookings["reference"])) == 3_000
    other_seed = history.generate(
        history.Plan(
            now=now, bookings=3_000, customers=400, past_events=30, venues=(venue,), seed=7
        )
    )
    assert not np.array_equal(other_seed.bookings["created_at"], first.bookings["created_at"])


def test_the_generator_refuses_what_the_seats_cannot_hold() -> None:
    venue = _venue(np.random.default_rng(2))
    plan = history.Plan(now=1_780_000_000, bookings=100_000, customers=50, past_events=3,
                        venues=(venue,))  # fmt: skip
    with pytest.raises(ValueError, match="do not fit"):
        history.generate(plan)
