"""SQL for the waitlist. ``position`` is the join order, gap-free per event; the place in
line shown to a user counts only the live entries ahead of them."""

from __future__ import annotations

import uuid

from hub.db import Connection, Record, UniqueViolation

LIVE = ("waiting", "offered")
_COLUMNS = "id, event_id, user_id, position, quantity, status, hold_id, offer_expires_at"


class AlreadyWaiting(Exception):
    pass


async def join(con: Connection, event_id: uuid.UUID, user_id: uuid.UUID, quantity: int) -> Record:
    """Append a waiting entry. Concurrent joins take turns on a per-event advisory lock,
    so positions are distinct and gap-free.

    Raises:
        AlreadyWaiting: the user already has a live entry for this event.
    """
    await con.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('waitlist:' || $1::text, 0))", str(event_id)
    )
    try:
        row = await con.fetchrow(
            f"""INSERT INTO waitlist (event_id, user_id, position, quantity)
                VALUES ($1, $2, (SELECT coalesce(max(position), 0) + 1 FROM waitlist
                                  WHERE event_id = $1), $3)
                RETURNING {_COLUMNS}""",
            event_id,
            user_id,
            quantity,
        )
    except UniqueViolation:
        raise AlreadyWaiting() from None
    assert row is not None
    return row


async def live_entry(con: Connection, event_id: uuid.UUID, user_id: uuid.UUID) -> Record | None:
    return await con.fetchrow(
        f"SELECT {_COLUMNS} FROM waitlist WHERE event_id = $1 AND user_id = $2 "
        "AND status IN ('waiting', 'offered') FOR UPDATE",
        event_id,
        user_id,
    )


async def latest_entry(con: Connection, event_id: uuid.UUID, user_id: uuid.UUID) -> Record | None:
    return await con.fetchrow(
        f"SELECT {_COLUMNS} FROM waitlist WHERE event_id = $1 AND user_id = $2 "
        "ORDER BY position DESC LIMIT 1",
        event_id,
        user_id,
    )


async def place_in_line(con: Connection, event_id: uuid.UUID, position: int) -> int:
    ahead = await con.fetchval(
        "SELECT count(*) FROM waitlist WHERE event_id = $1 AND position < $2 "
        "AND status IN ('waiting', 'offered')",
        event_id,
        position,
    )
    return int(ahead) + 1


async def next_waiting(con: Connection, event_id: uuid.UUID, max_quantity: int) -> Record | None:
    """The first waiting entry whose quantity fits, locked; others skip it."""
    return await con.fetchrow(
        f"""SELECT {_COLUMNS} FROM waitlist
             WHERE event_id = $1 AND status = 'waiting' AND quantity <= $2
             ORDER BY position LIMIT 1 FOR UPDATE SKIP LOCKED""",
        event_id,
        max_quantity,
    )


async def has_waiting(con: Connection, event_id: uuid.UUID) -> bool:
    return bool(
        await con.fetchval(
            "SELECT EXISTS (SELECT 1 FROM waitlist WHERE event_id = $1 AND status = 'waiting')",
            event_id,
        )
    )


async def set_status(
    con: Connection,
    entry_id: int,
    status: str,
    *,
    hold_id: uuid.UUID | None = None,
    offer_expires_at: object = None,
) -> None:
    await con.execute(
        "UPDATE waitlist SET status = $2, hold_id = coalesce($3, hold_id), "
        "offer_expires_at = coalesce($4, offer_expires_at), updated_at = now() WHERE id = $1",
        entry_id,
        status,
        hold_id,
        offer_expires_at,
    )


async def by_hold(con: Connection, hold_id: uuid.UUID) -> Record | None:
    return await con.fetchrow(
        f"SELECT {_COLUMNS} FROM waitlist WHERE hold_id = $1 AND status = 'offered' FOR UPDATE",
        hold_id,
    )


async def close_event(con: Connection, event_id: uuid.UUID) -> list[uuid.UUID]:
    """Close every live entry of the event; return the users who were waiting."""
    rows = await con.fetch(
        "UPDATE waitlist SET status = 'closed', updated_at = now() "
        "WHERE event_id = $1 AND status IN ('waiting', 'offered') RETURNING user_id",
        event_id,
    )
    return [row["user_id"] for row in rows]


async def mark_booked(con: Connection, hold_id: uuid.UUID) -> None:
    await con.execute(
        "UPDATE waitlist SET status = 'booked', updated_at = now() "
        "WHERE hold_id = $1 AND status = 'offered'",
        hold_id,
    )
