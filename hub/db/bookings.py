"""SQL for bookings, their tickets and payments (discount codes: ``hub.db.discounts``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from engines.discounts import PriceBreakdown
from hub.db import Connection, Record
from hub.db.lifecycle import HOLD_LOCK, hold_lock_of

# The hold's lock, its id being the statement's $4 (a uuid).
HOLD_LOCK_OF_PARAM_4 = hold_lock_of("$4::uuid::text")

BOOKING_COLUMNS = (
    "b.id, b.reference, b.event_id, b.user_id, b.hold_id, b.status, b.subtotal_cents, "
    "b.discount_cents, b.discount_bp, b.discount_code, b.total_cents, b.group_name, "
    "b.refund_cents, b.refund_status, b.refund_paid_at, b.created_at, b.cancelled_at, b.group_bp"
)
ACTIVE_TICKET_GUARD = "tickets_one_active_per_seat"


async def insert_payment(
    con: Connection,
    *,
    booking_id: uuid.UUID,
    user_id: uuid.UUID,
    kind: str,
    amount_cents: int,
    provider: str,
    provider_ref: str,
) -> None:
    await con.execute(
        """INSERT INTO payments (booking_id, user_id, kind, amount_cents, provider, provider_ref)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        booking_id,
        user_id,
        kind,
        amount_cents,
        provider,
        provider_ref,
    )


async def charge_of(con: Connection, booking_id: uuid.UUID) -> Record | None:
    return await con.fetchrow(
        "SELECT provider, provider_ref, amount_cents FROM payments "
        "WHERE booking_id = $1 AND kind = 'charge' ORDER BY created_at LIMIT 1",
        booking_id,
    )


async def active_seat_ids(
    con: Connection, event_id: uuid.UUID, seat_ids: Sequence[uuid.UUID]
) -> list[uuid.UUID]:
    """Which of these seats have an active ticket."""
    rows = await con.fetch(
        "SELECT seat_id FROM tickets WHERE event_id = $1 AND active AND seat_id = ANY($2::uuid[])",
        event_id,
        list(seat_ids),
    )
    return [row["seat_id"] for row in rows]


async def by_id(
    con: Connection, booking_id: uuid.UUID, *, for_update: bool = False
) -> Record | None:
    lock = " FOR UPDATE" if for_update else ""
    return await con.fetchrow(
        f"SELECT {BOOKING_COLUMNS} FROM bookings b WHERE b.id = $1{lock}", booking_id
    )


async def page(
    con: Connection, user_id: uuid.UUID | None, limit: int, offset: int
) -> tuple[list[Record], int]:
    """Bookings newest first (of one user, or everyone's), and how many there are in all."""
    where, args = ("WHERE b.user_id = $3", [user_id]) if user_id is not None else ("", [])
    rows = await con.fetch(
        f"SELECT {BOOKING_COLUMNS}, count(*) OVER () AS total FROM bookings b {where} "
        "ORDER BY b.created_at DESC, b.id LIMIT $1 OFFSET $2",
        limit,
        offset,
        *args,
    )
    if rows:
        return list(rows), rows[0]["total"]
    total: int = await con.fetchval(
        f"SELECT count(*) FROM bookings b {where.replace('$3', '$1')}", *args
    )
    return [], total


async def seats_of(con: Connection, booking_ids: Sequence[uuid.UUID]) -> list[Record]:
    """The seats of the bookings with the price paid, each booking's seats in idx order."""
    return list(
        await con.fetch(
            """SELECT t.booking_id, s.id, s.idx, s.section, s.row_label, s.number, t.price_cents
                 FROM tickets t JOIN seats s ON s.id = t.seat_id
                WHERE t.booking_id = ANY($1::uuid[])
                ORDER BY t.booking_id, s.idx""",
            list(booking_ids),
        )
    )


async def cancel(con: Connection, booking_id: uuid.UUID, refund_cents: int) -> Record:
    """Mark the booking cancelled, its tickets inactive and its refund due (paid at once
    when there is nothing to pay back); run in a transaction."""
    await con.execute("UPDATE tickets SET active = false WHERE booking_id = $1", booking_id)
    row = await con.fetchrow(
        f"""UPDATE bookings b SET status = 'cancelled', cancelled_at = now(),
                   refund_cents = $2::bigint,
                   refund_status = CASE WHEN $2::bigint > 0 THEN 'due' ELSE 'paid' END,
                   refund_paid_at = CASE WHEN $2::bigint > 0 THEN NULL ELSE now() END,
                   refund_next_at = now()
             WHERE b.id = $1 RETURNING {BOOKING_COLUMNS}""",
        booking_id,
        refund_cents,
    )
    assert row is not None
    return row


async def refunds_pending(con: Connection, limit: int) -> list[Record]:
    """Refunds due (or failed and due for another try), oldest first, with their charge."""
    return list(
        await con.fetch(
            """SELECT b.id, b.user_id, b.reference, b.refund_cents, b.refund_attempts,
                      p.provider, p.provider_ref
                 FROM bookings b
                 JOIN LATERAL (SELECT provider, provider_ref FROM payments
                                WHERE booking_id = b.id AND kind = 'charge'
                                ORDER BY created_at LIMIT 1) p ON true
                WHERE b.refund_status IN ('due', 'failed') AND b.refund_next_at <= now()
                ORDER BY b.refund_next_at LIMIT $1""",
            limit,
        )
    )


async def record_refund(
    con: Connection, booking_id: uuid.UUID, provider: str, provider_ref: str
) -> bool:
    """The refund was paid: record the payment once; False if it was recorded already."""
    row = await con.fetchrow(
        """UPDATE bookings SET refund_status = 'paid', refund_paid_at = now()
            WHERE id = $1 AND refund_status IN ('due', 'failed')
        RETURNING user_id, refund_cents""",
        booking_id,
    )
    if row is None:
        return False
    await insert_payment(
        con,
        booking_id=booking_id,
        user_id=row["user_id"],
        kind="refund",
        amount_cents=row["refund_cents"],
        provider=provider,
        provider_ref=provider_ref,
    )
    return True


async def refund_failed(
    con: Connection, booking_id: uuid.UUID, retry_in_seconds: float, failed_after: int
) -> None:
    """Count a failed refund attempt and schedule the next; after ``failed_after`` attempts
    the booking shows the refund as failed (it is still retried)."""
    await con.execute(
        """UPDATE bookings SET refund_attempts = refund_attempts + 1,
                  refund_next_at = now() + make_interval(secs => $2::float8),
                  refund_status = CASE WHEN refund_attempts + 1 >= $3::int THEN 'failed'
                                       ELSE refund_status END
            WHERE id = $1 AND refund_status IN ('due', 'failed')""",
        booking_id,
        retry_in_seconds,
        failed_after,
    )


async def users_who_booked(
    con: Connection, event_id: uuid.UUID, user_ids: Sequence[uuid.UUID]
) -> list[uuid.UUID]:
    """Which of ``user_ids`` have a booking of the event, cancelled ones included."""
    rows = await con.fetch(
        "SELECT DISTINCT user_id FROM bookings WHERE event_id = $1 AND user_id = ANY($2::uuid[])",
        event_id,
        list(user_ids),
    )
    return [row["user_id"] for row in rows]


async def confirmed_of_event(
    con: Connection, event_id: uuid.UUID, *, for_update: bool = False
) -> list[Record]:
    lock = " FOR UPDATE" if for_update else ""
    return list(
        await con.fetch(
            f"SELECT {BOOKING_COLUMNS} FROM bookings b WHERE b.event_id = $1 "
            f"AND b.status = 'confirmed' ORDER BY b.created_at{lock}",
            event_id,
        )
    )


async def lock_for_confirmation(
    con: Connection, hold_id: uuid.UUID, event_id: uuid.UUID
) -> str | None:
    """Take the hold's advisory lock (the leader's reconciler takes it before judging a
    confirming hold) and a key-share lock on the event to the end of the transaction: an
    event cancellation (which locks the row for update) waits for this booking, or this
    booking sees the event cancelled; key-share locks do not block one another. Returns
    why the event cannot take a booking ("cancelled", "started"), or None.

    ``write_confirmation`` takes the same locks in its own statement; this round trip is
    for a confirmation with more to do before it (a discount code's use)."""
    row = await con.fetchrow(
        f"""WITH locked AS (SELECT {HOLD_LOCK})
           SELECT e.status, e.starts_at <= now() AS started
             FROM events e, locked WHERE e.id = $2 FOR KEY SHARE OF e""",
        str(hold_id),
        event_id,
    )
    if row is None or row["status"] != "scheduled":
        return "cancelled"
    return "started" if row["started"] else None


@dataclass(frozen=True, slots=True)
class NewBooking:
    """What one confirmation writes."""

    reference: str
    event_id: uuid.UUID
    user_id: uuid.UUID
    hold_id: uuid.UUID
    price: PriceBreakdown
    discount_code: str | None
    group_name: str | None
    seat_ids: Sequence[uuid.UUID]
    prices: Sequence[int]
    provider: str
    provider_ref: str
    notification_kind: str
    group_bp: int = 0  # the group's own rate, before the cap (receipts split by it)


async def write_confirmation(con: Connection, new: NewBooking) -> Record | str:
    """The booking, its tickets, its charge, the hold's outcome and the notification, in
    one statement (one round trip) that first takes the locks of ``lock_for_confirmation``
    (taking them again in the same transaction is harmless). Returns the booking's row, or
    why the event cannot take a booking ("cancelled", "started"): nothing is written then.
    The partial unique index on active tickets refuses a seat sold already, failing the
    whole statement."""
    row = await con.fetchrow(
        f"""WITH locked AS (
               SELECT {HOLD_LOCK_OF_PARAM_4}
           ), event AS (
               SELECT e.status, e.starts_at <= now() AS started
                 FROM events e, locked WHERE e.id = $2 FOR KEY SHARE OF e
           ), b AS (
               INSERT INTO bookings AS b (reference, event_id, user_id, hold_id, subtotal_cents,
                      discount_cents, discount_bp, discount_code, total_cents, group_name,
                      group_bp)
               SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $16
                 FROM event WHERE event.status = 'scheduled' AND NOT event.started
               RETURNING {BOOKING_COLUMNS}
           ), tickets AS (
               INSERT INTO tickets (booking_id, event_id, seat_id, price_cents)
               SELECT b.id, b.event_id, x.seat, x.price
                 FROM b, unnest($11::uuid[], $12::bigint[]) AS x(seat, price)
           ), charge AS (
               INSERT INTO payments (booking_id, user_id, kind, amount_cents, provider,
                                     provider_ref)
               SELECT b.id, b.user_id, 'charge', b.total_cents, $13, $14 FROM b
           ), outcome AS (
               INSERT INTO hold_log (hold_id, event_id, user_id, seats, outcome, ended_at)
               SELECT b.hold_id, b.event_id, b.user_id, cardinality($11::uuid[]), 'booked', now()
                 FROM b
               ON CONFLICT (hold_id) DO UPDATE SET outcome = 'booked', ended_at = now()
           ), notice AS (
               INSERT INTO outbox (kind, user_id, payload)
               SELECT $15, b.user_id,
                      jsonb_build_object('booking_id', b.id, 'reference', b.reference)
                 FROM b
           )
           SELECT event.status AS event_status, event.started AS event_started, b.*
             FROM event LEFT JOIN b ON true""",
        new.reference,
        new.event_id,
        new.user_id,
        new.hold_id,
        new.price.subtotal_cents,
        new.price.discount_cents,
        new.price.rate_bp,
        new.discount_code,
        new.price.total_cents,
        new.group_name,
        list(new.seat_ids),
        list(new.prices),
        new.provider,
        new.provider_ref,
        new.notification_kind,
        new.group_bp,
    )
    if row is None or row["event_status"] != "scheduled":
        return "cancelled"
    if row["event_started"]:
        return "started"
    return row
