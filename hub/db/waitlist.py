"""SQL for the waitlist. ``position`` is the join order, gap-free per event; the place in
line shown to a user counts only the live entries ahead of them."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class Entry:
    """A waitlist entry claimed for an offer."""

    id: int
    user_id: uuid.UUID
    quantity: int


async def claim_next(con: Connection, event_id: uuid.UUID, max_quantity: int) -> Entry | None:
    """Claim the first waiting entry whose quantity fits, in one statement: it becomes
    ``offered`` with no hold yet. Entries locked by another claimer are skipped, so two
    processes never claim the same one."""
    row = await con.fetchrow(
        """UPDATE waitlist SET status = 'offered', hold_id = NULL, offer_expires_at = NULL,
                  updated_at = now()
            WHERE id = (SELECT id FROM waitlist
                         WHERE event_id = $1 AND status = 'waiting' AND quantity <= $2
                         ORDER BY position LIMIT 1 FOR UPDATE SKIP LOCKED)
        RETURNING id, user_id, quantity""",
        event_id,
        max_quantity,
    )
    return Entry(row["id"], row["user_id"], row["quantity"]) if row is not None else None


async def unclaim(con: Connection, entry_id: int) -> None:
    """A claim whose hold could not be placed waits again (unless the user left)."""
    await con.execute(
        "UPDATE waitlist SET status = 'waiting', updated_at = now() "
        "WHERE id = $1 AND status = 'offered' AND hold_id IS NULL",
        entry_id,
    )


async def complete_offer(
    con: Connection, entry_id: int, hold_id: uuid.UUID, expires_at: dt.datetime
) -> bool:
    """Attach the offer's hold to its claim; False if the entry left the line meanwhile."""
    done = await con.fetchval(
        "UPDATE waitlist SET hold_id = $2, offer_expires_at = $3, updated_at = now() "
        "WHERE id = $1 AND status = 'offered' AND hold_id IS NULL RETURNING id",
        entry_id,
        hold_id,
        expires_at,
    )
    return done is not None


async def lapse_offer(con: Connection, hold_id: uuid.UUID) -> bool:
    """The offer held by ``hold_id`` was not taken; True if an entry lapsed."""
    done = await con.fetchval(
        "UPDATE waitlist SET status = 'lapsed', updated_at = now() "
        "WHERE hold_id = $1 AND status = 'offered' RETURNING id",
        hold_id,
    )
    return done is not None


async def reopen_stalled(con: Connection, older_than_seconds: int) -> int:
    """Claims left without a hold for longer than ``older_than_seconds`` wait again."""
    rows = await con.fetch(
        "UPDATE waitlist SET status = 'waiting', updated_at = now() "
        "WHERE status = 'offered' AND hold_id IS NULL "
        "AND updated_at < now() - make_interval(secs => $1) RETURNING id",
        float(older_than_seconds),
    )
    return len(rows)


async def events_with_waiting(con: Connection, event_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """Which of these events have someone waiting."""
    rows = await con.fetch(
        "SELECT DISTINCT event_id FROM waitlist "
        "WHERE event_id = ANY($1::uuid[]) AND status = 'waiting'",
        event_ids,
    )
    return [row["event_id"] for row in rows]


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
