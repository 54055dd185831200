"""Analytics rollups: after inserts, cancellations (also of an old booking), a transaction
that commits late, an event moved, steps from two hubs at once (a leader change), a step
cancelled half-way and a restart, the incremental rollups equal a count from scratch.

"From scratch" is counted twice, independently of the SQL under test: in Python from the
raw rows (every table, every column) and with ``engines.analytics.rollup_hours`` (the
hourly totals the analytics answers are built from). The comparison reads the rollups, the
watermark and the raw rows in one snapshot, so the session's own leader stepping meanwhile
changes nothing; and `rebuild` must leave the rollups as the steps left them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest

from engines import analytics
from hub.api.catalog import leader_loops
from hub.context import Hub, open_hub
from hub.db import rollups as rollups_db
from hub.db.migrate import MIGRATIONS_DIR
from hub.services import rollups
from hub.settings import Settings
from tests.conftest import Account, register
from tests.factories import make_event
from tests.hub.api.booking_helpers import API, book, hold_ok
from tests.waiting import eventually

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
DERIVED = (
    "analytics_hourly_totals",
    "analytics_daily",
    "analytics_category_daily",
    "analytics_event_categories",
    "analytics_users",
    "analytics_cohorts",
    "analytics_lead_totals",
)


@pytest.fixture(scope="module", autouse=True)
async def counted_from_scratch(hub: Hub) -> None:
    """Other modules may have written rows with stamps of their own (which the contract
    says to follow with a rebuild): start from one."""
    await rollups.rebuild(hub.db)


# --- the count from scratch ---------------------------------------------------------------


@dataclass
class Snapshot:
    watermark: dt.datetime
    hourly: dict[tuple[uuid.UUID, dt.datetime], tuple[int, ...]]
    user_months: dict[tuple[uuid.UUID, dt.date], int]
    lead_days: dict[tuple[uuid.UUID, int], int]
    # The derived tables (migration 006).
    hourly_totals: dict[dt.datetime, tuple[int, ...]]
    daily: dict[tuple[uuid.UUID, dt.date], tuple[int, ...]]
    users: dict[uuid.UUID, tuple[dt.date, int]]  # first month, bookings
    cohorts: dict[tuple[dt.date, dt.date], int]  # (first month, month): users active
    lead_totals: dict[int, int]
    category_days: dict[tuple[str, dt.date], tuple[int, int, int]]  # events, bookings, cents
    event_categories: dict[uuid.UUID, str]

    def rollups(self) -> tuple[dict[Any, Any], ...]:
        """Every table's rows, to compare two snapshots whole."""
        return (
            self.hourly,
            self.user_months,
            self.lead_days,
            self.hourly_totals,
            self.daily,
            self.users,
            self.cohorts,
            self.lead_totals,
            self.category_days,
            self.event_categories,
        )


_COUNTERS = "bookings, tickets, revenue_cents, cancellations, refunds_cents, holds"


def _counters(row: Any) -> tuple[int, ...]:
    return tuple(int(row[name]) for name in _COUNTERS.split(", "))


def _derived(
    hourly: dict[tuple[uuid.UUID, dt.datetime], tuple[int, ...]],
    user_months: dict[tuple[uuid.UUID, dt.date], int],
    lead_days: dict[tuple[uuid.UUID, int], int],
    categories: dict[uuid.UUID, str],
) -> tuple[dict[Any, Any], ...]:
    """The derived tables as they must be: summed, in Python, from rollup rows and the
    events' categories."""
    totals: dict[dt.datetime, list[int]] = {}
    daily: dict[tuple[uuid.UUID, dt.date], list[int]] = {}
    for (event, hour), values in hourly.items():
        for row in (
            totals.setdefault(hour, [0] * 6),
            daily.setdefault((event, hour.astimezone(dt.UTC).date()), [0] * 6),
        ):
            for i, v in enumerate(values):
                row[i] += v
    users: dict[uuid.UUID, tuple[dt.date, int]] = {}
    for (user, month), n in user_months.items():
        first, total = users.get(user, (month, 0))
        users[user] = (min(first, month), total + n)
    cohorts: Counter[tuple[dt.date, dt.date]] = Counter()
    for user, month in user_months:
        cohorts[users[user][0], month] += 1
    lead_totals: Counter[int] = Counter()
    for (_, days), n in lead_days.items():
        lead_totals[days] += n
    category_days: dict[tuple[str, dt.date], tuple[int, int, int]] = {}
    for (event, day), values in daily.items():
        events, bookings, cents = category_days.get((categories[event], day), (0, 0, 0))
        category_days[categories[event], day] = (
            events + 1,
            bookings + values[0],
            cents + values[2],
        )
    return (
        {k: tuple(v) for k, v in totals.items()},
        {k: tuple(v) for k, v in daily.items()},
        users,
        dict(cohorts),
        {k: v for k, v in lead_totals.items() if v},
        category_days,
        {event: categories[event] for event, _ in daily},
    )


def _hour(ts: dt.datetime) -> dt.datetime:
    return ts.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


async def snapshot(hub: Hub) -> tuple[Snapshot, Snapshot]:
    """The rollups as stored, and as counted from the raw rows stamped before the
    watermark, both read in one snapshot."""
    async with hub.db.connection() as con, con.transaction(isolation="repeatable_read"):
        watermark: dt.datetime = await con.fetchval("SELECT watermark FROM analytics_rollup_state")
        hourly = await con.fetch("SELECT * FROM analytics_hourly")
        months = await con.fetch("SELECT * FROM analytics_user_months")
        leads = await con.fetch("SELECT * FROM analytics_lead_days")
        totals = await con.fetch("SELECT * FROM analytics_hourly_totals")
        daily = await con.fetch("SELECT * FROM analytics_daily")
        users = await con.fetch("SELECT * FROM analytics_users")
        cohorts = await con.fetch("SELECT * FROM analytics_cohorts")
        lead_totals = await con.fetch("SELECT * FROM analytics_lead_totals")
        category_days = await con.fetch("SELECT * FROM analytics_category_daily")
        event_categories = await con.fetch("SELECT * FROM analytics_event_categories")
        categories = {r["id"]: r["category"] for r in await con.fetch("SELECT * FROM events")}
        bookings = await con.fetch(
            """SELECT b.event_id, b.user_id, b.created_at, b.total_cents, b.cancelled_at,
                      b.refund_cents, e.starts_at,
                      (SELECT count(*) FROM tickets t WHERE t.booking_id = b.id) AS tickets
                 FROM bookings b JOIN events e ON e.id = b.event_id"""
        )
        holds = await con.fetch("SELECT event_id, created_at FROM hold_log")
    stored = Snapshot(
        watermark,
        {
            (r["event_id"], r["hour"]): (
                r["bookings"],
                r["tickets"],
                r["revenue_cents"],
                r["cancellations"],
                r["refunds_cents"],
                r["holds"],
            )
            for r in hourly
        },
        {(r["user_id"], r["month"]): r["bookings"] for r in months},
        {(r["event_id"], r["lead_days"]): r["bookings"] for r in leads},
        {r["hour"]: _counters(r) for r in totals},
        {(r["event_id"], r["day"]): _counters(r) for r in daily},
        {r["user_id"]: (r["first_month"], r["bookings"]) for r in users},
        {(r["first_month"], r["month"]): r["users"] for r in cohorts},
        {r["lead_days"]: r["bookings"] for r in lead_totals},
        {
            (r["category"], r["day"]): (r["events"], r["bookings"], r["revenue_cents"])
            for r in category_days
        },
        {r["event_id"]: r["category"] for r in event_categories},
    )
    columns: dict[tuple[uuid.UUID, dt.datetime], list[int]] = {}
    user_months: Counter[tuple[uuid.UUID, dt.date]] = Counter()
    lead_days: Counter[tuple[uuid.UUID, int]] = Counter()
    for b in bookings:
        made, gone = b["created_at"], b["cancelled_at"]
        if made < watermark:
            row = columns.setdefault((b["event_id"], _hour(made)), [0] * 6)
            row[0] += 1
            row[1] += b["tickets"]
            row[2] += b["total_cents"]
            user_months[b["user_id"], _hour(made).date().replace(day=1)] += 1
            lead_days[b["event_id"], max((b["starts_at"] - made) // DAY, 0)] += 1
        if gone is not None and gone < watermark:
            row = columns.setdefault((b["event_id"], _hour(gone)), [0] * 6)
            row[3] += 1
            row[4] += b["refund_cents"] or 0
    for h in holds:
        if h["created_at"] < watermark:
            columns.setdefault((h["event_id"], _hour(h["created_at"])), [0] * 6)[5] += 1
    scratch_hourly = {key: tuple(values) for key, values in columns.items()}
    scratch = Snapshot(
        watermark,
        scratch_hourly,
        dict(user_months),
        dict(lead_days),
        *_derived(scratch_hourly, dict(user_months), dict(lead_days), categories),
    )
    _check_hours_with_engine(stored, bookings, holds, watermark)
    return stored, scratch


def _check_hours_with_engine(
    stored: Snapshot, bookings: list[Any], holds: list[Any], watermark: dt.datetime
) -> None:
    """The stored rows added up per hour equal the engine's hourly rollup of the raw rows."""

    def stamps(values: list[dt.datetime | None]) -> np.ndarray:
        return np.array(
            [analytics.NOT_CANCELLED if v is None else int(v.timestamp()) for v in values],
            dtype=np.int64,
        )

    made = [b for b in bookings if b["created_at"] < watermark]
    engine = analytics.rollup_hours(
        stamps([b["created_at"] for b in made]),
        np.array([b["tickets"] for b in made], dtype=np.int64),
        np.array([b["total_cents"] for b in made], dtype=np.int64),
        # A cancellation after the watermark is not counted yet.
        stamps([_before(b["cancelled_at"], watermark) for b in made]),
        stamps([h["created_at"] for h in holds if h["created_at"] < watermark]),
    )
    # Made after the watermark, cancelled before it: impossible (made before cancelled).
    per_hour: dict[int, np.ndarray] = {}
    for (_, hour), values in stored.hourly.items():
        total = per_hour.setdefault(int(hour.timestamp()), np.zeros(6, dtype=np.int64))
        total += np.array(values, dtype=np.int64)
    nonzero = (
        engine.bookings
        + engine.tickets
        + engine.revenue_cents
        + engine.cancellations
        + engine.holds
    ) > 0
    expected = {
        int(h): (int(b), int(t), int(r), int(c), int(k))
        for h, b, t, r, c, k in zip(
            engine.hour[nonzero],
            engine.bookings[nonzero],
            engine.tickets[nonzero],
            engine.revenue_cents[nonzero],
            engine.cancellations[nonzero],
            engine.holds[nonzero],
            strict=True,
        )
    }
    got = {h: (int(v[0]), int(v[1]), int(v[2]), int(v[3]), int(v[5])) for h, v in per_hour.items()}
    assert got == expected


def _before(stamp: dt.datetime | None, watermark: dt.datetime) -> dt.datetime | None:
    return stamp if stamp is not None and stamp < watermark else None


async def assert_exact(hub: Hub) -> Snapshot:
    stored, scratch = await snapshot(hub)
    assert stored.hourly == scratch.hourly
    assert stored.user_months == scratch.user_months
    assert stored.lead_days == scratch.lead_days
    assert stored.hourly_totals == scratch.hourly_totals
    assert stored.daily == scratch.daily
    assert stored.users == scratch.users
    assert stored.cohorts == scratch.cohorts
    assert stored.lead_totals == scratch.lead_totals
    # The categories as of the last step: the tests edit none after it.
    assert stored.category_days == scratch.category_days
    assert stored.event_categories == scratch.event_categories
    return stored


async def caught_up(hub: Hub) -> rollups.RollupStep:
    """Step until the rollups reach past everything written so far (the horizon trails
    the clock by a margin)."""
    await hub.hold_log.flush()
    written: dt.datetime = await hub.db.fetchval("SELECT now()")
    last: list[rollups.RollupStep] = []

    async def past() -> bool:
        last[:] = [await rollups.roll_up(hub)]
        return last[0].until > written

    assert await eventually(past, within=15.0), last
    return last[0]


async def hour_row(hub: Hub, event_id: str, hour: dt.datetime) -> tuple[int, ...] | None:
    row = await hub.db.fetchrow(
        "SELECT bookings, tickets, revenue_cents, cancellations, refunds_cents, holds "
        "FROM analytics_hourly WHERE event_id = $1 AND hour = $2",
        uuid.UUID(event_id),
        hour,
    )
    return None if row is None else tuple(row)


async def booked(client: httpx.AsyncClient, who: Account, event_id: str, n: int) -> dict[str, Any]:
    response = await book(client, who, event_id=event_id, quantity=n)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def total_cents(hub: Hub, booking: dict[str, Any]) -> int:
    cents: int = await hub.db.fetchval(
        "SELECT total_cents FROM bookings WHERE id = $1", uuid.UUID(booking["id"])
    )
    return cents


async def cancelled(client: httpx.AsyncClient, who: Account, booking_id: str) -> None:
    response = await client.post(f"{API}/bookings/{booking_id}/cancel", headers=who.headers)
    assert response.status_code == 200, response.text


# --- tests -----------------------------------------------------------------------------------


def test_the_leader_runs_the_rollup_loop() -> None:
    assert rollups.rollup_loop in leader_loops()


async def test_steps_count_bookings_cancellations_and_holds_as_from_scratch(
    client: httpx.AsyncClient, hub: Hub, admin: Account, user: Account, other_user: Account
) -> None:
    event = await make_event(client, admin)
    first = await booked(client, user, event["id"], 2)
    second = await booked(client, other_user, event["id"], 3)
    await caught_up(hub)
    await assert_exact(hub)

    await hold_ok(client, other_user, event["id"], quantity=1)  # placed, never booked
    await cancelled(client, user, first["id"])
    step = await caught_up(hub)
    stored = await assert_exact(hub)
    assert step.advanced

    rows = [v for (e, _), v in stored.hourly.items() if str(e) == event["id"]]
    bookings, tickets, revenue, cancellations, refunds, holds = map(sum, zip(*rows, strict=True))
    first_cents, second_cents = await total_cents(hub, first), await total_cents(hub, second)
    assert (bookings, tickets, cancellations) == (2, 5, 1)
    assert revenue == first_cents + second_cents  # the cancelled booking's revenue stays
    assert refunds == first_cents  # a full refund before the event
    assert holds == 3  # two booked through holds, one only held

    # A step with nothing new changes nothing, and neither does counting from scratch.
    await rollups.roll_up(hub)
    assert (await assert_exact(hub)).hourly == stored.hourly
    rebuilt = await rollups.rebuild(hub.db)
    assert rebuilt.since is None and rebuilt.advanced and rebuilt.bookings >= 2
    again = await assert_exact(hub)
    assert again.rollups() == stored.rollups()


async def test_cancelling_an_old_booking_counts_in_the_hour_of_the_cancellation(
    client: httpx.AsyncClient, hub: Hub, admin: Account, user: Account
) -> None:
    event = await make_event(client, admin, starts_in_days=40)
    old = await booked(client, user, event["id"], 2)
    # History written with stamps of its own, then a rebuild, as the contract asks.
    made_at: dt.datetime = await hub.db.fetchval(
        "UPDATE bookings SET created_at = created_at - interval '3 days' WHERE id = $1 "
        "RETURNING created_at",
        uuid.UUID(old["id"]),
    )
    await hub.hold_log.flush()
    await rollups.rebuild(hub.db)
    cents = await total_cents(hub, old)
    before = await hour_row(hub, event["id"], _hour(made_at))
    assert before is not None and before[:4] == (1, 2, cents, 0)

    await cancelled(client, user, old["id"])
    await caught_up(hub)
    await assert_exact(hub)
    gone_at = await hub.db.fetchval(
        "SELECT cancelled_at FROM bookings WHERE id = $1", uuid.UUID(old["id"])
    )
    assert await hour_row(hub, event["id"], _hour(made_at)) == before  # the old hour stays
    now_row = await hour_row(hub, event["id"], _hour(gone_at))
    assert now_row is not None and now_row[3:5] == (1, cents)


async def test_a_transaction_that_commits_late_is_counted_in_a_later_step(
    client: httpx.AsyncClient, hub: Hub, admin: Account, user: Account
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=4)
    seats = await hub.db.fetch(
        "SELECT s.id FROM seats s JOIN events e ON e.venue_id = s.venue_id "
        "WHERE e.id = $1 ORDER BY s.idx LIMIT 2",
        uuid.UUID(event["id"]),
    )
    async with hub.db.connection() as late:
        transaction = late.transaction()
        await transaction.start()
        try:
            started: dt.datetime = await late.fetchval(
                """WITH b AS (
                       INSERT INTO bookings (reference, event_id, user_id, subtotal_cents,
                                             total_cents)
                       VALUES ($1, $2, $3, 5000, 5000) RETURNING id, created_at
                   ), t AS (
                       INSERT INTO tickets (booking_id, event_id, seat_id, price_cents)
                       SELECT b.id, $2, s, 2500 FROM b, unnest($4::uuid[]) AS s
                   )
                   SELECT created_at FROM b""",
                f"LATE-{uuid.uuid4().hex[:10]}",
                uuid.UUID(event["id"]),
                uuid.UUID(user.id),
                [r["id"] for r in seats],
            )
            # Long enough open that a watermark trailing the clock would have passed it.
            clock_passed = await eventually(
                lambda: _clock_past(hub, started + rollups_db.HORIZON_MARGIN), within=5.0
            )
            assert clock_passed
            held = await rollups.roll_up(hub)
            assert held.until <= started
            await transaction.commit()
        except BaseException:
            await transaction.rollback()
            raise
    await caught_up(hub)
    await assert_exact(hub)
    row = await hour_row(hub, event["id"], _hour(started))
    assert row is not None and row[:3] == (1, 2, 5000)


def lead_days_of(stored: Snapshot, event_id: str) -> dict[int, int]:
    return {days: n for (event, days), n in stored.lead_days.items() if str(event) == event_id}


async def _clock_past(hub: Hub, moment: dt.datetime) -> bool:
    now: dt.datetime = await hub.db.fetchval("SELECT now()")
    return now > moment


async def test_an_event_moved_has_its_lead_days_counted_again(
    client: httpx.AsyncClient, hub: Hub, admin: Account, user: Account
) -> None:
    # Lead days no other test books at, so the totals' row of the first start is this
    # event's alone and must go when it moves (a count from scratch has no row for it).
    event = await make_event(client, admin, starts_in_days=410.5)
    await booked(client, user, event["id"], 1)
    await caught_up(hub)
    stored = await assert_exact(hub)
    assert lead_days_of(stored, event["id"]) == {410: 1}
    assert stored.lead_totals[410] == 1

    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=420.5)
    moved = await client.patch(
        f"{API}/events/{event['id']}", json={"starts_at": later.isoformat()}, headers=admin.headers
    )
    assert moved.status_code == 200, moved.text
    await booked(client, user, event["id"], 1)
    await caught_up(hub)
    stored = await assert_exact(hub)
    # The first booking's lead day moved with the event, in the totals too.
    assert lead_days_of(stored, event["id"]) == {420: 2}
    assert 410 not in stored.lead_totals and stored.lead_totals[420] == 2


async def test_an_event_recategorized_has_its_days_moved_to_the_new_category(
    client: httpx.AsyncClient, hub: Hub, admin: Account, user: Account
) -> None:
    # Categories of their own (the factory's is shared): this event is alone in the first.
    event = await make_event(client, admin)
    first, second = f"Folk-{uuid.uuid4().hex[:6]}", f"Jazz-{uuid.uuid4().hex[:6]}"
    await hub.db.execute(
        "UPDATE events SET category = $2 WHERE id = $1", uuid.UUID(event["id"]), first
    )
    booking = await booked(client, user, event["id"], 2)
    await caught_up(hub)
    stored = await assert_exact(hub)
    ours = {k: v for k, v in stored.category_days.items() if k[0] in (first, second)}
    day = next(iter(ours))[1]
    cents = await total_cents(hub, booking)
    assert ours == {(first, day): (1, 1, cents)}

    edited = await client.patch(
        f"{API}/events/{event['id']}", json={"category": second}, headers=admin.headers
    )
    assert edited.status_code == 200, edited.text
    await booked(client, user, event["id"], 1)
    await caught_up(hub)
    stored = await assert_exact(hub)
    ours = {k: v for k, v in stored.category_days.items() if k[0] in (first, second)}
    # Both bookings under the new category, the old one's day gone (no event left in it).
    assert {name for name, _ in ours} == {second} and (second, day) in ours
    assert sum(v[1] for v in ours.values()) == 2
    assert stored.event_categories[uuid.UUID(event["id"])] == second


async def test_a_returning_user_counts_in_the_cohort_of_their_first_month(
    client: httpx.AsyncClient, hub: Hub, admin: Account
) -> None:
    event = await make_event(client, admin)
    buyer = await register(client)
    first = await booked(client, buyer, event["id"], 1)
    # Their first booking, months ago: history with a stamp of its own, then a rebuild.
    made_at: dt.datetime = await hub.db.fetchval(
        "UPDATE bookings SET created_at = created_at - interval '70 days' WHERE id = $1 "
        "RETURNING created_at",
        uuid.UUID(first["id"]),
    )
    await rollups.rebuild(hub.db)
    first_month = _hour(made_at).date().replace(day=1)
    stored = await assert_exact(hub)
    assert stored.users[uuid.UUID(buyer.id)] == (first_month, 1)

    # They come back: a step counts the new month in the cohort of the first, whose size
    # (its first month's cell) stays.
    size = stored.cohorts[first_month, first_month]
    second = await booked(client, buyer, event["id"], 1)
    await caught_up(hub)
    again = await assert_exact(hub)
    made_now: dt.datetime = await hub.db.fetchval(
        "SELECT created_at FROM bookings WHERE id = $1", uuid.UUID(second["id"])
    )
    this_month = _hour(made_now).date().replace(day=1)
    assert again.users[uuid.UUID(buyer.id)] == (first_month, 2)
    assert again.cohorts[first_month, first_month] == size
    assert again.cohorts[first_month, this_month] >= 1
    # A third booking in the same month adds to the user, not to the cohort cell.
    cell = again.cohorts[first_month, this_month]
    await booked(client, buyer, event["id"], 1)
    await caught_up(hub)
    last = await assert_exact(hub)
    assert last.users[uuid.UUID(buyer.id)] == (first_month, 3)
    assert last.cohorts[first_month, this_month] == cell


async def test_the_migration_fills_the_derived_tables_as_steps_keep_them(
    client: httpx.AsyncClient, hub: Hub, admin: Account, user: Account
) -> None:
    event = await make_event(client, admin)
    await booked(client, user, event["id"], 2)
    await caught_up(hub)
    kept = await assert_exact(hub)
    # Migration 006 on a database whose rollups already hold history: its fill, from the
    # state lock on, over emptied derived tables.
    text = (MIGRATIONS_DIR / "006_analytics_derived.sql").read_text()
    fill = text[text.index("LOCK TABLE analytics_rollup_state") :]
    async with hub.db.connection() as con, con.transaction():
        await con.execute(fill.replace("LOCK", f"TRUNCATE {', '.join(DERIVED)}; LOCK", 1))
    filled = await assert_exact(hub)
    if filled.watermark == kept.watermark:  # the session's leader did not step meanwhile
        assert filled.rollups() == kept.rollups()


@contextlib.asynccontextmanager
async def second_hub(settings: Settings) -> AsyncIterator[Hub]:
    """Another hub process's view: its own pools, nothing shared with the session's hub."""
    async with open_hub(settings.replace(rollup_interval_seconds=0.05)) as other:
        yield other


async def test_two_hubs_stepping_at_once_while_bookings_arrive_count_each_once(
    client: httpx.AsyncClient, hub: Hub, admin: Account, settings: Settings
) -> None:
    event = await make_event(client, admin, rows=4, seats_per_row=10, max_tickets_per_user=50)
    buyers = [await register(client) for _ in range(4)]
    writing = True

    async def write() -> None:
        nonlocal writing
        try:
            for i in range(24):
                made = await booked(client, buyers[i % 4], event["id"], 1 + i % 3)
                if i % 5 == 0:
                    await cancelled(client, buyers[i % 4], made["id"])
        finally:
            writing = False

    async def step_while_writing(who: Hub) -> int:
        steps = 0
        while writing:
            await rollups.roll_up(who)
            steps += 1
            await asyncio.sleep(0.005)
        return steps

    async with second_hub(settings) as other:
        async with asyncio.TaskGroup() as group:  # a failure cancels the others
            group.create_task(write())
            mine = group.create_task(step_while_writing(hub))
            theirs = group.create_task(step_while_writing(other))
        assert mine.result() > 1 and theirs.result() > 1
        # The new leader carries on from the watermark alone.
        await caught_up(other)
    await assert_exact(hub)


async def test_a_step_cancelled_half_way_leaves_nothing_and_a_restart_carries_on(
    client: httpx.AsyncClient, hub: Hub, admin: Account, user: Account, settings: Settings
) -> None:
    event = await make_event(client, admin)
    await booked(client, user, event["id"], 2)
    await hub.hold_log.flush()
    async with second_hub(settings) as leader:
        async with hub.db.connection() as blocker, blocker.transaction():
            await blocker.execute("LOCK TABLE analytics_rollup_state IN EXCLUSIVE MODE")
            loop = asyncio.create_task(rollups.rollup_loop(leader))
            assert await eventually(lambda: _waiting_for_state_lock(hub), within=5.0)
            loop.cancel()  # leadership lost in the middle of a step
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        await assert_exact(hub)
    # A restart: a fresh hub, with nothing of the last one but the database.
    async with second_hub(settings) as restarted:
        await booked(client, user, event["id"], 1)
        await caught_up(restarted)
    stored = await assert_exact(hub)
    assert sum(v[0] for (e, _), v in stored.hourly.items() if str(e) == event["id"]) == 2


async def _waiting_for_state_lock(hub: Hub) -> bool:
    waiting: int = await hub.db.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND query LIKE 'LOCK TABLE analytics_rollup_state%'"
    )
    return waiting > 0
