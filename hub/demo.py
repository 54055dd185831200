"""The demo: an admin, a few users, a 2,000-seat arena and upcoming events worth browsing,
and two years of booking history at a second venue (``hub.demo_history``), so analytics,
forecasts and recommendations have something real to show from the first start.

Seeding is idempotent: everything is looked up by a natural key (email, venue name and
city, event name at the venue, discount code; the history by its venue having events) and
created only when missing, under an advisory lock so two seeding processes cannot both
create it. A second call adds nothing and returns the same summary.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import structlog

from engines.venue_layout import row_label
from hub import auth
from hub import demo_history as history
from hub.auth import Role
from hub.context import Hub
from hub.db import demo as demo_db
from hub.db import demo_history as history_db
from hub.db import events as events_db
from hub.db import users
from hub.db import venues as venues_db
from hub.services import accounts, events, live_seats, rollups, venues

log = structlog.get_logger(__name__)

ADMIN = ("admin@evently.local", "admin-demo-pass", "Demo Admin")
USERS = (
    ("ada@evently.local", "Ada Lovelace"),
    ("grace@evently.local", "Grace Hopper"),
    ("alan@evently.local", "Alan Turing"),
)
USER_PASSWORD = "demo-pass-123"

VENUE_NAME = "Evently Arena"
VENUE_CITY = "Lisbon"
AISLE_EVERY = 14  # engines.venue_layout's default aisle spacing

# (name, rows, seats per row, base price in cents, front rows with accessible aisle seats)
SECTIONS = (
    ("Orchestra", 20, 42, 9500, 2),
    ("Mezzanine", 12, 42, 6500, 1),
    ("Balcony", 14, 50, 3500, 1),
)

# The history's venue: its past shows, and some on sale now beside the arena's.
HALL_NAME = "Evently Hall"
HALL_SECTIONS = (
    ("Stalls", 24, 36, 5500, 2),
    ("Circle", 10, 34, 4000, 1),
    ("Gallery", 8, 30, 2500, 1),
)
# Two years: ~36,000 bookings by 5,000 customers over ~260 past shows (~3 s to seed).
HISTORY_BOOKINGS = 36_000
HISTORY_CUSTOMERS = 5_000
HISTORY_PAST_EVENTS = 260
HISTORY_SEED = 2015
# The demo users book in the history too, each with a taste of their own (favourite first),
# so their event recommendations have something to go on.
TASTES = {
    "ada@evently.local": ("concert", "classical"),
    "grace@evently.local": ("conference", "theatre"),
    "alan@evently.local": ("sports", "comedy"),
}


@dataclass(frozen=True, slots=True)
class DemoEvent:
    name: str
    category: str
    days_ahead: int
    hour: int
    description: str
    keywords: tuple[str, ...]
    prices: dict[str, int]  # cents; sections left out take the venue base price


EVENTS = (
    DemoEvent(
        "Midnight Echoes Live",
        "concert",
        4,
        21,
        "The synth-pop trio brings its arena tour to Lisbon, with a light show built "
        "for the round.",
        ("synthpop", "electronic", "live music", "tour"),
        {"Orchestra": 12000, "Mezzanine": 8500, "Balcony": 4500},
    ),
    DemoEvent(
        "Hamlet in the Round",
        "theatre",
        9,
        20,
        "Shakespeare's tragedy staged in the round by the National Theatre company, in "
        "Portuguese with English surtitles.",
        ("shakespeare", "drama", "classic", "surtitles"),
        {"Orchestra": 7500, "Mezzanine": 5500, "Balcony": 3000},
    ),
    DemoEvent(
        "Laugh Track: Stand-up Night",
        "comedy",
        14,
        21,
        "Five comedians, one microphone, no safety net. Late show, recommended 16+.",
        ("stand-up", "comedy", "late show"),
        {"Orchestra": 4500, "Mezzanine": 3500},
    ),
    DemoEvent(
        "Lisbon Derby: Basketball Final",
        "sports",
        21,
        19,
        "The league final between the city's two rivals, with a half-time show.",
        ("basketball", "final", "derby"),
        {"Orchestra": 9000, "Mezzanine": 6000, "Balcony": 2500},
    ),
    DemoEvent(
        "Future of Real-time Systems",
        "conference",
        30,
        9,
        "A one-day conference on event-driven architectures, streaming and low-latency "
        "web apps, with talks and workshops.",
        ("technology", "software", "talks", "workshop"),
        {"Orchestra": 24000, "Mezzanine": 18000, "Balcony": 9900},
    ),
    DemoEvent(
        "The Magic Lantern Family Show",
        "family",
        45,
        15,
        "Puppets, magic and music for children of all ages, in a matinee that ends "
        "before tea time.",
        ("kids", "magic", "puppets", "matinee"),
        {"Orchestra": 3000, "Mezzanine": 2500, "Balcony": 1500},
    ),
    DemoEvent(
        "Symphony Under the Stars",
        "classical",
        59,
        20,
        "The city orchestra plays Dvorak's New World Symphony and film scores.",
        ("orchestra", "classical", "symphony", "film music"),
        {"Orchestra": 8000, "Mezzanine": 6000, "Balcony": 3500},
    ),
)


@dataclass(frozen=True, slots=True)
class DemoSummary:
    events: int
    first_event_id: uuid.UUID
    logins: list[tuple[str, str, str]]


async def seed_demo(hub: Hub, *, now: dt.datetime | None = None) -> DemoSummary:
    """Create the demo data that is missing and describe it.

    Args:
        now: the moment event dates are counted from (defaults to the current time).

    Returns:
        How many demo events exist, the id of the soonest one, and the demo logins as
        ``(role, email, password)``.
    """
    now = now or dt.datetime.now(dt.UTC)
    async with hub.db.connection() as lock_con:
        await demo_db.lock(lock_con)
        try:
            await _seed_accounts(hub)
            venue_id = await _seed_venue(hub)
            event_ids = [await _seed_event(hub, venue_id, spec, now) for spec in EVENTS]
            async with hub.db.connection() as con:
                if await demo_db.ensure_discount_code(con, "BULK10", Decimal("10"), 1000):
                    log.info("demo_discount_code_created", code="BULK10")
            await _seed_history(hub, venue_id, event_ids, now)
        finally:
            await demo_db.unlock(lock_con)
    logins = [("admin", ADMIN[0], ADMIN[1])]
    logins += [("user", email, USER_PASSWORD) for email, _ in USERS]
    return DemoSummary(events=len(event_ids), first_event_id=event_ids[0], logins=logins)


async def _seed_accounts(hub: Hub) -> None:
    email, password, name = ADMIN
    await accounts.ensure_admin(hub, email, password, name)
    for email, name in USERS:
        async with hub.db.connection() as con:
            if await users.by_email(con, email) is not None:
                continue  # seeded before
        # Not accounts.register: that also issues a token, and seeding needs no secret key.
        password_hash = await asyncio.to_thread(auth.hash_password, hub.passwords, USER_PASSWORD)
        async with hub.db.connection() as con:
            try:
                await users.insert(con, email, name, password_hash, Role.USER.value)
            except users.EmailTaken:
                continue
        log.info("demo_user_created", email=email)


def _aisle_seats(rows: int, seats_per_row: int, front_rows: int) -> list[tuple[str, int]]:
    """The seats at each end of every block between aisles, in the front rows."""
    ends = {1, seats_per_row}
    for start in range(AISLE_EVERY, seats_per_row, AISLE_EVERY):
        ends.update((start, start + 1))
    return [(row_label(r), n) for r in range(min(rows, front_rows)) for n in sorted(ends)]


async def _seed_venue(
    hub: Hub,
    name: str = VENUE_NAME,
    sections_spec: tuple[tuple[str, int, int, int, int], ...] = SECTIONS,
) -> uuid.UUID:
    async with hub.db.connection() as con:
        found = await venues_db.by_name(con, name, VENUE_CITY)
    if found is not None:
        venue_id: uuid.UUID = found["id"]
        return venue_id
    sections = [
        venues.NewSection(section, rows, per_row, base, _aisle_seats(rows, per_row, front))
        for section, rows, per_row, base, front in sections_spec
    ]
    venue = await venues.create_venue(hub, name, VENUE_CITY, sections=sections)
    log.info("demo_venue_created", venue_id=str(venue["id"]), seats=venue["capacity"])
    created: uuid.UUID = venue["id"]
    return created


async def _seed_event(
    hub: Hub, venue_id: uuid.UUID, spec: DemoEvent, now: dt.datetime
) -> uuid.UUID:
    async with hub.db.connection() as con:
        found = await events_db.by_name(con, venue_id, spec.name)
    if found is not None:
        existing: uuid.UUID = found["id"]
        return existing
    day = (now + dt.timedelta(days=spec.days_ahead)).astimezone(dt.UTC).date()
    starts_at = dt.datetime.combine(day, dt.time(spec.hour), tzinfo=dt.UTC)
    event = await events.create_event(
        hub,
        events.NewEvent(
            name=spec.name,
            description=spec.description,
            category=spec.category,
            keywords=spec.keywords,
            venue_id=venue_id,
            starts_at=starts_at,
            section_prices=spec.prices,
        ),
        now=now,
    )
    created: uuid.UUID = event["id"]
    return created


async def _seed_history(
    hub: Hub, arena_id: uuid.UUID, event_ids: list[uuid.UUID], now: dt.datetime
) -> None:
    """Two years of history at the hall, and the arena's events' sales so far, unless the
    hall has events already. All rows in one transaction, written in bulk (the tables are
    locked for those few seconds); then the analytics rollups are counted again (the rows
    carry stamps of their own, before the rollups' watermark) and the arena's events' seat
    state is rebuilt from their new sales."""
    hall_id = await _seed_venue(hub, HALL_NAME, HALL_SECTIONS)
    started = time.perf_counter()
    async with hub.db.transaction() as con:
        if await history_db.has_events(con, hall_id):
            return
        hall = history.venue_plan(hall_id, *await history_db.venue_seats(con, hall_id))
        arena = history.venue_plan(arena_id, *await history_db.venue_seats(con, arena_id))
        # Only events nobody has booked yet get sales in the past (no seat sold twice).
        on_sale = await history_db.unsold_events(con, event_ids)
        known_events = [
            history.KnownEvent(
                id=row["id"].bytes,
                venue=arena,
                category=row["category"],
                starts_at=int(row["starts_at"].timestamp()),
                prices=np.array(row["prices"], dtype=np.int64),
            )
            for row in on_sale
        ]
        known_customers = []
        for email, taste in TASTES.items():
            user = await users.by_email(con, email)
            if user is not None:
                known_customers.append(history.KnownCustomer(user["id"].bytes, taste))
        plan = history.Plan(
            now=int(now.timestamp()),
            bookings=HISTORY_BOOKINGS,
            customers=HISTORY_CUSTOMERS,
            past_events=HISTORY_PAST_EVENTS,
            seed=HISTORY_SEED,
            venues=(hall,),
        )
        generated = await asyncio.to_thread(history.generate, plan, known_events, known_customers)
        written = await history_db.write(con, generated.tables(), defer_checks=True)
        await history_db.open_sales(con, generated.on_sale)
    wrote = time.perf_counter()
    await rollups.rebuild(hub.db)
    for row in on_sale:
        await live_seats.load(hub, row["id"], arena.capacity, force=True)
    log.info(
        "demo_history_seeded",
        seconds=round(time.perf_counter() - started, 2),
        copy_seconds=round(sum(written.seconds.values()), 2),
        after_seconds=round(time.perf_counter() - wrote, 2),
        **written.rows,
    )
