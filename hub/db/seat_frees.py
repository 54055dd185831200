"""SQL for pending seat frees: the Redis step a committed cancellation still owes
(``migrations/008_pending_seat_frees.sql``)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from hub.db import Connection, Record


async def add(
    con: Connection,
    event_id: uuid.UUID,
    seats: Sequence[int],
    owner: uuid.UUID | None,
    due_in: dt.timedelta,
) -> int:
    """Record, in the cancellation's transaction, the seats it must free; returns the id."""
    row_id = await con.fetchval(
        """INSERT INTO pending_seat_frees (event_id, seats, owner_id, due_at)
           VALUES ($1, $2::integer[], $3, now() + $4::interval) RETURNING id""",
        event_id,
        list(seats),
        owner,
        due_in,
    )
    return int(row_id)


async def done(con: Connection, row_id: int) -> None:
    await con.execute("DELETE FROM pending_seat_frees WHERE id = $1", row_id)


async def due(con: Connection, limit: int) -> list[Record]:
    """Rows past their ``due_at``, oldest first: id, event_id, seats, owner_id."""
    return list(
        await con.fetch(
            """SELECT id, event_id, seats, owner_id FROM pending_seat_frees
                WHERE due_at <= now() ORDER BY due_at LIMIT $1""",
            limit,
        )
    )


async def ticketed(con: Connection, event_id: uuid.UUID, seats: Sequence[int]) -> set[int]:
    """Which of the event's seats (by idx) have an active ticket now."""
    rows = await con.fetch(
        """SELECT s.idx FROM tickets t JOIN seats s ON s.id = t.seat_id
            WHERE t.event_id = $1 AND t.active AND s.idx = ANY($2::integer[])""",
        event_id,
        list(seats),
    )
    return {int(row[0]) for row in rows}
