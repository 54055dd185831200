"""SQL for the facts the live seat state is rebuilt from."""

from __future__ import annotations

import uuid

from hub.db import Connection


async def sold_and_owned(
    con: Connection, event_id: uuid.UUID
) -> tuple[list[int], dict[uuid.UUID, int]]:
    """Seat idx of every active ticket, and per user the active tickets outside groups.

    Read in one statement so both come from the same snapshot.
    """
    rows = await con.fetch(
        """SELECT s.idx, b.user_id, b.group_name IS NOT NULL AS grouped
             FROM tickets t
             JOIN seats s ON s.id = t.seat_id
             JOIN bookings b ON b.id = t.booking_id
            WHERE t.event_id = $1 AND t.active""",
        event_id,
    )
    owned: dict[uuid.UUID, int] = {}
    for row in rows:
        if not row["grouped"]:
            owned[row["user_id"]] = owned.get(row["user_id"], 0) + 1
    return [row["idx"] for row in rows], owned


async def scheduled_events(
    con: Connection, event_id: uuid.UUID | None = None
) -> list[tuple[uuid.UUID, int]]:
    """``(event id, seat count)`` of every scheduled event (or of the one given)."""
    rows = await con.fetch(
        """SELECT e.id, v.capacity FROM events e JOIN venues v ON v.id = e.venue_id
            WHERE e.status = 'scheduled' AND ($1::uuid IS NULL OR e.id = $1)
            ORDER BY e.starts_at""",
        event_id,
    )
    return [(row["id"], row["capacity"]) for row in rows]
