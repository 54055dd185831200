"""Seeding many on-sale events straight in SQL, for benchmarks that need a big catalogue.

Venues with sections and seats, on-sale events with a price per section, and a few
bookings per event spread over the last four hours (so the pricing velocity has rows to
count). Used by ``bench-holds --beside-update-all`` and by the in-process pricing benchmark
(``python -m tests.bench.pricing``).
"""

from __future__ import annotations

import argparse

import asyncpg

SEATS_PER_SECTION = 100

# Each statement with the names of its parameters ($1, $2 ... in order).
_SEED: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "INSERT INTO venues (name, city, capacity) "
        "SELECT 'Bench venue ' || g, 'Nowhere', $2::int * $3::int "
        "FROM generate_series(1, $1::int) g",
        ("venues", "sections", "seats"),
    ),
    (
        "INSERT INTO venue_sections (venue_id, name, position, base_price_cents) "
        "SELECT v.id, 'S' || s, s, 5000 FROM venues v, generate_series(1, $1::int) s",
        ("sections",),
    ),
    (
        """INSERT INTO seats (venue_id, idx, section, row_label, number, x, y, distance)
           SELECT v.id, (s - 1) * $2::int + n - 1, 'S' || s, 'R' || ((n - 1) / 10),
                  (n - 1) % 10 + 1, n % 10, s * 10 + (n - 1) / 10, s * 10 + (n - 1) / 10
             FROM venues v, generate_series(1, $1::int) s, generate_series(1, $2::int) n""",
        ("sections", "seats"),
    ),
    (
        """INSERT INTO events (venue_id, name, category, starts_at)
           SELECT v.id, 'Bench event ' || g, 'bench', now() + make_interval(days => 1 + g % 60)
             FROM generate_series(1, $2::int) g
             JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS rn FROM venues) v
               ON v.rn = g % $1::int""",
        ("venues", "events"),
    ),
    (
        """INSERT INTO event_prices (event_id, section, base_price_cents, current_price_cents)
           SELECT e.id, vs.name, p.cents, p.cents
             FROM events e
             JOIN venue_sections vs ON vs.venue_id = e.venue_id,
                  LATERAL (SELECT 2000 + abs(hashtext(e.id::text || vs.name)) % 20000
                             AS cents) p""",
        (),
    ),
    ("INSERT INTO users (email, name, password_hash) VALUES ('bench@x.org', 'Bench', '-')", ()),
    # The booking's number within its event is kept in group_name, to pick its seats below.
    (
        """INSERT INTO bookings (reference, event_id, user_id, subtotal_cents, total_cents,
                                 group_name, created_at)
           SELECT e.id || '-' || b, e.id, (SELECT id FROM users LIMIT 1), 0, 0, b::text,
                  now() - make_interval(secs => random() * 14400)
             FROM events e, generate_series(0, $1::int - 1) b""",
        ("bookings",),
    ),
    (
        """INSERT INTO tickets (booking_id, event_id, seat_id, price_cents)
           SELECT bk.id, bk.event_id, s.id, 5000
             FROM bookings bk
             JOIN events e ON e.id = bk.event_id
             JOIN seats s ON s.venue_id = e.venue_id
              AND s.idx / 3 = bk.group_name::int""",
        (),
    ),
    ("ANALYZE", ()),
)


async def seed(url: str, args: argparse.Namespace) -> None:
    """The bench's venues, on-sale events, prices and bookings (``args``: venues, sections,
    events, bookings), straight in SQL."""
    values = {
        "venues": args.venues,
        "sections": args.sections,
        "seats": SEATS_PER_SECTION,
        "events": args.events,
        "bookings": args.bookings,
    }
    con = await asyncpg.connect(url)
    try:
        for sql, names in _SEED:
            await con.execute(sql, *(values[name] for name in names))
    finally:
        await con.close()
