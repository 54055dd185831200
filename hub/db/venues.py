"""SQL for venues, their sections and their seats."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from engines.seats import SeatSpec
from hub.db import Connection, Record

SEAT_COLUMNS = (
    "venue_id",
    "idx",
    "section",
    "row_label",
    "number",
    "x",
    "y",
    "accessible",
    "distance",
)


async def insert(
    con: Connection,
    name: str,
    city: str,
    sections: Sequence[tuple[str, int | None]],
    seats: Sequence[SeatSpec],
) -> uuid.UUID:
    """Insert a venue with its sections (name, base price cents) and seats; run in a transaction.

    Seats go in with COPY: tens of thousands of rows in one round trip. Their position in
    ``seats`` is their ``idx``; this is the one place a seat record becomes a row.
    """
    venue_id: uuid.UUID = await con.fetchval(
        "INSERT INTO venues (name, city, capacity) VALUES ($1, $2, $3) RETURNING id",
        name,
        city,
        len(seats),
    )
    await con.executemany(
        "INSERT INTO venue_sections (venue_id, name, position, base_price_cents) "
        "VALUES ($1, $2, $3, $4)",
        [(venue_id, section, position, base) for position, (section, base) in enumerate(sections)],
    )
    await con.copy_records_to_table(
        "seats",
        records=[
            (venue_id, idx, s.section, s.row, s.number, s.x, s.y, s.accessible, s.distance)
            for idx, s in enumerate(seats)
        ],
        columns=SEAT_COLUMNS,
    )
    return venue_id


async def by_id(con: Connection, venue_id: uuid.UUID) -> Record | None:
    return await con.fetchrow(
        "SELECT id, name, city, capacity, created_at FROM venues WHERE id = $1", venue_id
    )


async def by_name(con: Connection, name: str, city: str) -> Record | None:
    return await con.fetchrow(
        "SELECT id, name, city, capacity, created_at FROM venues "
        "WHERE name = $1 AND city = $2 ORDER BY created_at LIMIT 1",
        name,
        city,
    )


async def page(con: Connection, limit: int, offset: int) -> tuple[list[Record], int]:
    """One page of venues, oldest first, and the total count."""
    rows = await con.fetch(
        "SELECT id, name, city, capacity, created_at, count(*) OVER () AS total FROM venues "
        "ORDER BY created_at, id LIMIT $1 OFFSET $2",
        limit,
        offset,
    )
    if rows:
        return list(rows), rows[0]["total"]
    total: int = await con.fetchval("SELECT count(*) FROM venues")
    return [], total


async def sections_of(con: Connection, venue_ids: Sequence[uuid.UUID]) -> list[Record]:
    """Each section of the venues with its row, seat and accessible-seat counts, in order."""
    return list(
        await con.fetch(
            """SELECT vs.venue_id, vs.name, vs.position, vs.base_price_cents,
                      count(DISTINCT s.row_label) AS rows, count(s.id) AS seats,
                      count(s.id) FILTER (WHERE s.accessible) AS accessible
                 FROM venue_sections vs
                 LEFT JOIN seats s ON s.venue_id = vs.venue_id AND s.section = vs.name
                WHERE vs.venue_id = ANY($1::uuid[])
                GROUP BY vs.venue_id, vs.name, vs.position, vs.base_price_cents
                ORDER BY vs.venue_id, vs.position""",
            list(venue_ids),
        )
    )


async def seats_of(con: Connection, venue_id: uuid.UUID) -> list[Record]:
    """Every seat of a venue in idx order."""
    return list(
        await con.fetch(
            "SELECT id, idx, section, row_label, number, x, y, accessible, distance "
            "FROM seats WHERE venue_id = $1 ORDER BY idx",
            venue_id,
        )
    )
