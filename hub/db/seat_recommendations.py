"""SQL for seat recommendations: the seats a user's past tickets were in."""

from __future__ import annotations

import uuid

from hub.db import Connection


async def past_seats(
    con: Connection, user_id: uuid.UUID, limit: int
) -> list[tuple[uuid.UUID, int, int]]:
    """``(venue id, seat idx, price cents)`` of each active ticket of the user's confirmed
    bookings, at any venue, from the ``limit`` most recently booked, newest first."""
    rows = await con.fetch(
        """SELECT s.venue_id, s.idx, t.price_cents
             FROM bookings b
             JOIN tickets t ON t.booking_id = b.id AND t.active
             JOIN seats s ON s.id = t.seat_id
            WHERE b.user_id = $1 AND b.status = 'confirmed'
            ORDER BY b.created_at DESC
            LIMIT $2""",
        user_id,
        limit,
    )
    return [(row["venue_id"], row["idx"], row["price_cents"]) for row in rows]
