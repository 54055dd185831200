"""SQL for the leader's housekeeping: which events are live, and what PostgreSQL knows of a
hold that a crashed process left confirming."""

from __future__ import annotations

import uuid

from hub.db import Connection


async def live_event_ids(con: Connection) -> list[uuid.UUID]:
    """Events that can still have holds: scheduled, not long past their start."""
    rows = await con.fetch(
        "SELECT id FROM events WHERE status = 'scheduled' AND starts_at > now() - interval '1 day'"
    )
    return [row["id"] for row in rows]


# The advisory lock of one hold ($1 = its id as text): the confirmation takes it in its
# transaction (bookings.write_confirmation), the reconciler before judging the hold.
def _hold_key(text_id: str) -> str:
    return f"hashtextextended({text_id}, 0)"


def hold_lock_of(text_id: str) -> str:
    """The hold's lock in a statement where its id as text is ``text_id`` (one key however
    it is written: a uuid's text is the form ``str(uuid)`` gives)."""
    return f"pg_advisory_xact_lock({_hold_key(text_id)})"


HOLD_LOCK = hold_lock_of("$1::text")
HOLD_LOCK_TRY = f"pg_try_advisory_xact_lock({_hold_key('$1::text')})"


async def lock_hold(con: Connection, hold_id: uuid.UUID) -> None:
    """Serialise with the confirmation of this hold (it takes the same lock in its
    transaction), so a slow confirmation is never mistaken for a crashed one."""
    await con.execute(f"SELECT {HOLD_LOCK}", str(hold_id))


async def try_lock_hold(con: Connection, hold_id: uuid.UUID) -> bool:
    """``lock_hold`` without waiting: False while this hold's confirmation is still on
    its way (its transaction holds the lock)."""
    return bool(await con.fetchval(f"SELECT {HOLD_LOCK_TRY}", str(hold_id)))


async def booked_seat_indexes(con: Connection, hold_id: uuid.UUID) -> list[int] | None:
    """Seat indexes of the active tickets booked from this hold; None if no booking exists."""
    booking = await con.fetchval(
        "SELECT id FROM bookings WHERE hold_id = $1 AND status = 'confirmed'", hold_id
    )
    if booking is None:
        return None
    rows = await con.fetch(
        """SELECT s.idx FROM tickets t JOIN seats s ON s.id = t.seat_id
           WHERE t.booking_id = $1 AND t.active ORDER BY s.idx""",
        booking,
    )
    return [row["idx"] for row in rows]
