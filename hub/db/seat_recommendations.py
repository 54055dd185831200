"""SQL for seat recommendations: the seats a user's past tickets were in."""

from __future__ import annotations

import uuid

from hub.db import Connection

# A row's rank in its section is its place by mean distance to the stage (ties: the row
# whose first seat comes first), 0 front .. 1 back, 0 in a section of one row: the
# definition of ``engines.seating.SeatTable.row_rank``, here over the sections the user
# sat in, so that no other venue's layout has to be loaded.
_PAST_SEATS = """
WITH mine AS (
    SELECT s.venue_id, s.section, s.row_label, t.price_cents
      FROM bookings b
      JOIN tickets t ON t.booking_id = b.id AND t.active
      JOIN seats s ON s.id = t.seat_id
     WHERE b.user_id = $1 AND b.status = 'confirmed'
     ORDER BY b.created_at DESC
     LIMIT $2
), section_rows AS (
    SELECT s.venue_id, s.section, s.row_label, avg(s.distance) AS depth, min(s.idx) AS first
      FROM seats s
     WHERE (s.venue_id, s.section) IN (SELECT DISTINCT venue_id, section FROM mine)
     GROUP BY s.venue_id, s.section, s.row_label
), ranked AS (
    SELECT venue_id, section, row_label,
           coalesce((row_number() OVER w - 1)::float8
                    / nullif(count(*) OVER (PARTITION BY venue_id, section) - 1, 0), 0) AS rank
      FROM section_rows
    WINDOW w AS (PARTITION BY venue_id, section ORDER BY depth, first)
)
SELECT m.section, r.rank, m.price_cents
  FROM mine m
  JOIN ranked r USING (venue_id, section, row_label)
"""


async def past_seats(
    con: Connection, user_id: uuid.UUID, limit: int
) -> list[tuple[str, float, int]]:
    """``(section name, row rank 0..1, price cents)`` of each active ticket of the user's
    confirmed bookings, at any venue, from the ``limit`` most recently booked."""
    rows = await con.fetch(_PAST_SEATS, user_id, limit)
    return [(row["section"], float(row["rank"]), int(row["price_cents"])) for row in rows]
