"""``fanout --reco``: the watched event as a real one, and each watcher's ``hello.reco``.

Seat recommendations need what an event in Redis alone does not have: a venue with a seat
layout and prices (the hub reads them from PostgreSQL). So with ``--reco`` the benchmark
writes, straight in SQL, a venue of ``--seats`` seats (ten sections of rows of 50, an
accessible seat at each row's aisle end), the watched event on it with a price per section
(its id is the one loaded into Redis), and, for ``--reco-users N``, N users each with two
past tickets at random seats of a past event at the same venue, so that each has a taste of
their own and the hub re-ranks for every one of them. Their tokens are minted with the hub's
own code (``loadtest.accounts``). Everything is removed again by ``cleanup``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg
import msgpack

from loadtest.accounts import seed_buyers

SECTIONS = 10
ROW_LENGTH = 50
PASSWORD = "bench-reco-pass"


def front_row(n_seats: int) -> set[int]:
    """The best seats of ``seed``'s layout: the front rows of the two middle sections."""
    per = -(-n_seats // SECTIONS)
    middle = (SECTIONS // 2 - 1, SECTIONS // 2)
    return {i for i in range(n_seats) if i // per in middle and i % per < ROW_LENGTH}


@dataclass(frozen=True, slots=True)
class RecoSeed:
    """What was written for one run: the venue, the two events and the users."""

    venue_id: uuid.UUID
    past_event_id: uuid.UUID
    user_ids: tuple[uuid.UUID, ...]


async def seed(
    database_url: str, secret: str, event_id: uuid.UUID, n_seats: int, users: int
) -> tuple[RecoSeed, list[str]]:
    """Write the venue, the watched event (with ``event_id``), a past event and ``users``
    users with two past tickets each; return what to clean up and the users' tokens."""
    if n_seats < max(SECTIONS, 2 * users):
        raise ValueError(f"--seats must be at least {max(SECTIONS, 2 * users)}")
    per = -(-n_seats // SECTIONS)
    emails = [f"reco-{uuid.uuid4().hex[:12]}@bench.example" for _ in range(users)]
    tokens = await seed_buyers(database_url, secret, emails, PASSWORD) if users else []
    con = await asyncpg.connect(database_url)
    try:
        rows = await con.fetch("SELECT id, email FROM users WHERE email = ANY($1)", emails)
        by_email = {row["email"]: row["id"] for row in rows}
        user_ids = tuple(by_email[email] for email in emails)
        async with con.transaction():
            venue_id = await con.fetchval(
                "INSERT INTO venues (name, city, capacity) VALUES ('Reco bench', 'Nowhere', $1) "
                "RETURNING id",
                n_seats,
            )
            await con.execute(
                "INSERT INTO venue_sections (venue_id, name, position, base_price_cents) "
                "SELECT $1, 'S' || s, s, 2000 + 1000 * (s % 5) FROM generate_series(0, $2) s",
                venue_id,
                SECTIONS - 1,
            )
            # ten sections side by side, rows of 50 one metre apart; nearer the stage for
            # the front rows and the middle sections
            await con.execute(
                """INSERT INTO seats (venue_id, idx, section, row_label, number, x, y,
                                      accessible, distance)
                   SELECT $1, i, 'S' || (i / $3), 'R' || ((i % $3) / $4), (i % $3) % $4 + 1,
                          (i / $3 - 4.5) * ($4 + 5) + (i % $3) % $4 - ($4 - 1) / 2.0,
                          (i % $3) / $4 + 5, (i % $3) % $4 = 0,
                          5 + (i % $3) / $4 + abs(i / $3 - 4.5) * 2
                     FROM generate_series(0, $2 - 1) i""",
                venue_id,
                n_seats,
                per,
                ROW_LENGTH,
            )
            await con.execute(
                "INSERT INTO events (id, venue_id, name, category, starts_at) "
                "VALUES ($1, $2, 'Reco bench event', 'bench', now() + interval '30 days')",
                event_id,
                venue_id,
            )
            past_event_id = await con.fetchval(
                "INSERT INTO events (venue_id, name, category, starts_at) "
                "VALUES ($1, 'Reco bench, last year', 'bench', now() - interval '365 days') "
                "RETURNING id",
                venue_id,
            )
            await con.execute(
                """INSERT INTO event_prices (event_id, section, base_price_cents,
                                             current_price_cents)
                   SELECT e, name, base_price_cents, base_price_cents
                     FROM venue_sections, unnest($2::uuid[]) e WHERE venue_id = $1""",
                venue_id,
                [event_id, past_event_id],
            )
            await _past_tickets(con, venue_id, past_event_id, user_ids)
    finally:
        await con.close()
    return RecoSeed(venue_id, past_event_id, user_ids), tokens


async def _past_tickets(
    con: asyncpg.Connection,
    venue_id: uuid.UUID,
    past_event_id: uuid.UUID,
    user_ids: tuple[uuid.UUID, ...],
) -> None:
    """Two tickets at random seats of the past event for each user."""
    await con.execute(
        """WITH u AS (SELECT id, ordinality - 1 AS k
                        FROM unnest($3::uuid[]) WITH ORDINALITY AS t (id, ordinality)),
                b AS (INSERT INTO bookings (reference, event_id, user_id, subtotal_cents,
                                            total_cents)
                      SELECT 'reco-bench-' || u.id, $2, u.id, 0, 0 FROM u
                      RETURNING id, user_id),
                s AS (SELECT id, row_number() OVER (ORDER BY md5(id::text)) - 1 AS r
                        FROM seats WHERE venue_id = $1)
           INSERT INTO tickets (booking_id, event_id, seat_id, price_cents)
           SELECT b.id, $2, s.id, 2000 + 1000 * (s.r % 5)
             FROM b JOIN u ON u.id = b.user_id JOIN s ON s.r / 2 = u.k""",
        venue_id,
        past_event_id,
        list(user_ids),
    )


async def cleanup(database_url: str, event_id: uuid.UUID, seeded: RecoSeed) -> None:
    """Remove what ``seed`` wrote; if something else came to refer to it meanwhile (the
    hub's own bookkeeping), cancel the two events instead so that nothing prices them."""
    events = [event_id, seeded.past_event_id]
    con = await asyncpg.connect(database_url)
    try:
        try:
            async with con.transaction():
                await con.execute("DELETE FROM tickets WHERE event_id = ANY($1::uuid[])", events)
                await con.execute("DELETE FROM bookings WHERE event_id = ANY($1::uuid[])", events)
                await con.execute("DELETE FROM events WHERE id = ANY($1::uuid[])", events)
                await con.execute("DELETE FROM venues WHERE id = $1", seeded.venue_id)
                await con.execute(
                    "DELETE FROM users WHERE id = ANY($1::uuid[])", list(seeded.user_ids)
                )
        except asyncpg.ForeignKeyViolationError:
            await con.execute(
                "UPDATE events SET status = 'cancelled' WHERE id = ANY($1::uuid[])", events
            )
    finally:
        await con.close()


def hellos(watchers: int, tokens: list[str], kinds: int) -> list[bytes]:
    """One msgpack ``hello`` per watcher: the first ones with the users' tokens, the rest
    anonymous; quantities 2, 3, ... over ``kinds`` distinct preference sets."""
    out = []
    for i in range(watchers):
        message: dict[str, object] = {
            "t": "hello",
            "reco": {
                "quantity": 2 + i % kinds,
                "max_price": None,
                "preferred_sections": [],
                "accessibility_required": False,
            },
        }
        if i < len(tokens):
            message["token"] = tokens[i]
        out.append(msgpack.packb(message, use_bin_type=True))
    return out
