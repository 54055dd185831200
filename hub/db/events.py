"""SQL for events and their per-section prices."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hub.db import Connection, Record

COLUMNS = (
    "e.id, e.venue_id, e.name, e.description, e.category, e.keywords, e.starts_at, e.status, "
    "e.max_tickets_per_user, e.created_at, v.capacity"
)


@dataclass(frozen=True, slots=True)
class Filters:
    """What ``GET /events`` may filter on; ``None`` means "do not filter"."""

    search: str | None = None
    category: str | None = None
    date_from: dt.datetime | None = None
    date_to: dt.datetime | None = None
    min_cents: int | None = None
    max_cents: int | None = None
    venue_id: uuid.UUID | None = None


async def insert(
    con: Connection,
    *,
    venue_id: uuid.UUID,
    name: str,
    description: str,
    category: str,
    keywords: Sequence[str],
    starts_at: dt.datetime,
    max_tickets_per_user: int,
    prices: Mapping[str, int],
) -> uuid.UUID:
    """Insert an event and its section prices (base = current); run in a transaction."""
    event_id: uuid.UUID = await con.fetchval(
        """INSERT INTO events (venue_id, name, description, category, keywords, starts_at,
                               max_tickets_per_user)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id""",
        venue_id,
        name,
        description,
        category,
        list(keywords),
        starts_at,
        max_tickets_per_user,
    )
    await con.executemany(
        "INSERT INTO event_prices (event_id, section, base_price_cents, current_price_cents) "
        "VALUES ($1, $2, $3, $3)",
        [(event_id, section, cents) for section, cents in prices.items()],
    )
    return event_id


async def by_id(con: Connection, event_id: uuid.UUID, *, for_update: bool = False) -> Record | None:
    lock = " FOR UPDATE OF e" if for_update else ""
    return await con.fetchrow(
        f"SELECT {COLUMNS} FROM events e JOIN venues v ON v.id = e.venue_id WHERE e.id = $1{lock}",
        event_id,
    )


async def by_name(con: Connection, venue_id: uuid.UUID, name: str) -> Record | None:
    return await con.fetchrow(
        f"SELECT {COLUMNS} FROM events e JOIN venues v ON v.id = e.venue_id "
        "WHERE e.venue_id = $1 AND e.name = $2 ORDER BY e.created_at LIMIT 1",
        venue_id,
        name,
    )


async def prices_of(con: Connection, event_ids: Sequence[uuid.UUID]) -> list[Record]:
    """The section prices of the events, each event's sections in venue order."""
    return list(
        await con.fetch(
            """SELECT p.event_id, p.section, p.base_price_cents, p.current_price_cents
                 FROM event_prices p
                 JOIN events e ON e.id = p.event_id
                 JOIN venue_sections vs ON vs.venue_id = e.venue_id AND vs.name = p.section
                WHERE p.event_id = ANY($1::uuid[])
                ORDER BY p.event_id, vs.position""",
            list(event_ids),
        )
    )


def _where(filters: Filters) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if filters.search:
        pattern = arg("%" + _escape_like(filters.search) + "%")
        clauses.append(
            f"(e.name ILIKE {pattern} OR e.description ILIKE {pattern} OR EXISTS "
            f"(SELECT 1 FROM unnest(e.keywords) AS k WHERE k ILIKE {pattern}))"
        )
    if filters.category:
        clauses.append(f"lower(e.category) = lower({arg(filters.category)})")
    if filters.date_from is not None:
        clauses.append(f"e.starts_at >= {arg(filters.date_from)}")
    if filters.date_to is not None:
        clauses.append(f"e.starts_at <= {arg(filters.date_to)}")
    if filters.min_cents is not None or filters.max_cents is not None:
        bounds = []
        if filters.min_cents is not None:
            bounds.append(f"p.current_price_cents >= {arg(filters.min_cents)}")
        if filters.max_cents is not None:
            bounds.append(f"p.current_price_cents <= {arg(filters.max_cents)}")
        clauses.append(
            "EXISTS (SELECT 1 FROM event_prices p WHERE p.event_id = e.id AND "
            + " AND ".join(bounds)
            + ")"
        )
    if filters.venue_id is not None:
        clauses.append(f"e.venue_id = {arg(filters.venue_id)}")
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


# Upcoming events first, soonest first; then past ones, most recent first.
_ORDER = (
    " ORDER BY e.starts_at < now(), "
    "CASE WHEN e.starts_at >= now() THEN e.starts_at END ASC, e.starts_at DESC, e.id"
)


async def search(
    con: Connection, filters: Filters, *, limit: int | None, offset: int = 0
) -> tuple[list[Record], int]:
    """Events matching the filters in listing order, and how many match in all.

    ``limit=None`` returns every match (for filters applied after the query).
    """
    where, args = _where(filters)
    sql = (
        f"SELECT {COLUMNS}, count(*) OVER () AS total "
        f"FROM events e JOIN venues v ON v.id = e.venue_id{where}{_ORDER}"
    )
    if limit is not None:
        sql += f" LIMIT {int(limit)} OFFSET {int(offset)}"
    rows = list(await con.fetch(sql, *args))
    if rows:
        return rows, rows[0]["total"]
    if offset == 0 or limit is None:
        return [], 0
    total: int = await con.fetchval(
        f"SELECT count(*) FROM events e JOIN venues v ON v.id = e.venue_id{where}", *args
    )
    return [], total


async def update(con: Connection, event_id: uuid.UUID, changes: Mapping[str, Any]) -> None:
    """Set the given event columns (names come from code, never from input)."""
    if not changes:
        return
    names = list(changes)
    assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, start=2))
    await con.execute(
        f"UPDATE events SET {assignments}, updated_at = now() WHERE id = $1",
        event_id,
        *(changes[name] for name in names),
    )


async def set_prices(con: Connection, event_id: uuid.UUID, prices: Mapping[str, int]) -> None:
    """Set base and current price of sections, recording each change in price_history."""
    await con.executemany(
        """WITH old AS (
               SELECT current_price_cents FROM event_prices WHERE event_id = $1 AND section = $2
           ), changed AS (
               UPDATE event_prices
                  SET base_price_cents = $3, current_price_cents = $3, updated_at = now()
                WHERE event_id = $1 AND section = $2
           )
           INSERT INTO price_history (event_id, section, old_cents, new_cents, applied, factors)
           SELECT $1, $2, old.current_price_cents, $3, true, '{"source": "admin"}'::jsonb
             FROM old""",
        [(event_id, section, cents) for section, cents in prices.items()],
    )


async def sold_seat_indexes(con: Connection, event_id: uuid.UUID) -> list[int]:
    """The idx of every seat with an active ticket for the event."""
    rows = await con.fetch(
        "SELECT s.idx FROM tickets t JOIN seats s ON s.id = t.seat_id "
        "WHERE t.event_id = $1 AND t.active",
        event_id,
    )
    return [row["idx"] for row in rows]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
