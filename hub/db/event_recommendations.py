"""SQL for event recommendations: what the model is built from, read in a few statements
(the catalogue in one, the confirmed bookings through one cursor), a user's live history,
and the checks a request makes on the events it is about to recommend.

Ids are read as text (``uuid::text``, canonical lower case): the engine keys events and
users by string, and one spelling on both sides is what lets a live history meet the model.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Sequence

from hub.db import Connection, Record

# Every event (past ones carry tastes too) with what the engine knows of it: the cheapest
# section's base price stands for its price band; sold out means as many active tickets as
# the venue has seats (counted for events still to come only: a past event is never
# recommended whatever its sales). One row per event; ``now`` is the read's clock.
_CATALOGUE = """
WITH upcoming AS (
    SELECT id FROM events WHERE status = 'scheduled' AND starts_at > now()
), sold AS (
    SELECT t.event_id, count(*) AS seats
      FROM tickets t
     WHERE t.active AND t.event_id IN (SELECT id FROM upcoming)
     GROUP BY t.event_id
), cheapest AS (
    SELECT p.event_id, min(p.base_price_cents) AS cents
      FROM event_prices p
     GROUP BY p.event_id
)
SELECT e.id::text AS event_id,
       e.name,
       e.category,
       e.keywords,
       e.venue_id::text AS venue_id,
       v.name AS venue_name,
       coalesce(c.cents, 0)::int8 AS price_cents,
       e.starts_at,
       e.status = 'cancelled' AS cancelled,
       coalesce(s.seats, 0) >= v.capacity AND v.capacity > 0 AS sold_out,
       now() AS now
  FROM events e
  JOIN venues v ON v.id = e.venue_id
  LEFT JOIN cheapest c ON c.event_id = e.id
  LEFT JOIN sold s ON s.event_id = e.id
 ORDER BY e.id
"""

_BOOKINGS = """
SELECT user_id::text, event_id::text, created_at
  FROM bookings
 WHERE status = 'confirmed'
"""

# Whether the user exists, and the events of their confirmed bookings (a repeat booking of
# one event appears once per booking: the engine weighs repeats).
_HISTORY = """
SELECT EXISTS (SELECT 1 FROM users WHERE id = $1) AS known,
       ARRAY(SELECT event_id::text FROM bookings
              WHERE user_id = $1 AND status = 'confirmed') AS events
"""

# Which of the given events can no longer be booked: cancelled, started, or with an active
# ticket on every seat of its venue.
_CLOSED = """
SELECT e.id::text
  FROM events e
  JOIN venues v ON v.id = e.venue_id
 WHERE e.id = ANY($1::uuid[])
   AND (e.status <> 'scheduled'
        OR e.starts_at <= now()
        OR (v.capacity > 0 AND v.capacity <= (SELECT count(*) FROM tickets t
                                                WHERE t.event_id = e.id AND t.active)))
"""

# New bookings since a moment, counted up to a cap (the leader only asks "enough yet?"),
# whether an event was created since, and the database's clock.
_SINCE = """
SELECT (SELECT count(*) FROM (SELECT 1 FROM bookings WHERE created_at > $1 LIMIT $2) AS b)
           AS bookings,
       EXISTS (SELECT 1 FROM events WHERE created_at > $1) AS new_events,
       now() AS now
"""

# Bookable events created since a moment (newer than the model), soonest first, without
# the user's own: what a request adds after the events the model can rank.
_NEWCOMERS = """
SELECT e.id::text, e.starts_at
  FROM events e
  JOIN venues v ON v.id = e.venue_id
 WHERE e.created_at > $1
   AND e.status = 'scheduled'
   AND e.starts_at > now()
   AND NOT e.id = ANY($2::uuid[])
   AND (v.capacity = 0 OR v.capacity > (SELECT count(*) FROM tickets t
                                         WHERE t.event_id = e.id AND t.active))
 ORDER BY e.starts_at, e.id
 LIMIT $3
"""


async def catalogue(con: Connection) -> list[Record]:
    """Every event, in id order: event_id, name, category, keywords, venue_id, venue_name,
    price_cents, starts_at, cancelled, sold_out, now (the same for every row)."""
    return list(await con.fetch(_CATALOGUE))


async def confirmed_bookings(con: Connection, batch: int) -> AsyncIterator[list[Record]]:
    """Every confirmed booking as (user_id, event_id, created_at), ``batch`` rows at a time
    through one server-side cursor, so the caller decodes and converts a batch at a time
    (and the event loop gets a turn between batches). Run inside a transaction."""
    cursor = await con.cursor(_BOOKINGS)
    while True:
        rows = await cursor.fetch(batch)
        if not rows:
            return
        yield rows


async def history(con: Connection, user_id: uuid.UUID) -> tuple[bool, list[str]]:
    """``(user exists, event ids of the user's confirmed bookings)``."""
    row = await con.fetchrow(_HISTORY, user_id)
    assert row is not None
    return bool(row["known"]), list(row["events"])


async def closed_among(con: Connection, event_ids: Sequence[str]) -> set[str]:
    """The events among ``event_ids`` that are cancelled, have started or are sold out."""
    if not event_ids:
        return set()
    rows = await con.fetch(_CLOSED, list(event_ids))
    return {row[0] for row in rows}


async def changes_since(
    con: Connection, since: dt.datetime, cap: int
) -> tuple[int, bool, dt.datetime]:
    """``(bookings made after since, counted up to cap; whether an event was created after
    since; the database's now)``."""
    row = await con.fetchrow(_SINCE, since, cap)
    assert row is not None
    return int(row["bookings"]), bool(row["new_events"]), row["now"]


async def newcomers(
    con: Connection, since: dt.datetime, excluded: Sequence[str], limit: int
) -> list[tuple[str, dt.datetime]]:
    """Up to ``limit`` bookable events created after ``since`` and not in ``excluded``, as
    ``(event_id, starts_at)``, soonest first."""
    rows = await con.fetch(_NEWCOMERS, since, list(excluded), limit)
    return [(row[0], row[1]) for row in rows]
