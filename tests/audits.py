"""What PostgreSQL says about an event's seats, for the fault tests' audits."""

from __future__ import annotations

import asyncpg


async def seats_sold_twice(con: asyncpg.Connection, event_id: str) -> list[str]:
    """The event's seats with more than one active ticket (there must be none)."""
    rows = await con.fetch(
        """SELECT seat_id::text FROM tickets WHERE active AND event_id = $1::uuid
            GROUP BY seat_id HAVING count(*) > 1""",
        event_id,
    )
    return [row[0] for row in rows]


async def ticketed_seats(con: asyncpg.Connection, event_id: str) -> set[str]:
    """The event's seats with an active ticket."""
    rows = await con.fetch(
        "SELECT seat_id::text FROM tickets WHERE active AND event_id = $1::uuid", event_id
    )
    return {row[0] for row in rows}
