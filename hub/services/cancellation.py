"""Cancelling a booking: by its owner or an admin, before the event starts.

One transaction makes the tickets inactive, records the refund and the notification and
marks the booking cancelled; only after the commit do the seats turn free in Redis (and
the change is published). The order means a seat is never free in Redis while PostgreSQL
still sells it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import structlog

from hub.context import Hub
from hub.db import bookings as bookings_db
from hub.db import events as events_db
from hub.errors import Conflict, NotFound
from hub.inventory import SeatCode
from hub.metrics import BOOKINGS
from hub.payments import provider_of
from hub.services import booking_views, notifications

log = structlog.get_logger(__name__)


async def cancel_booking(
    hub: Hub, user_id: uuid.UUID, is_admin: bool, booking_id: uuid.UUID
) -> dict[str, Any]:
    """Cancel a booking and refund it in full.

    Returns:
        The cancelled booking.

    Raises:
        NotFound: no such booking, or someone else's and the caller is not an admin.
        Conflict: it is cancelled already, or its event has started.
    """
    provider = provider_of(hub)
    async with hub.db.transaction() as con:
        row = await bookings_db.by_id(con, booking_id, for_update=True)
        if row is None or (row["user_id"] != user_id and not is_admin):
            raise NotFound(f"No such booking: {booking_id}")
        if row["status"] == "cancelled":
            raise Conflict("The booking is cancelled already")
        event = await events_db.by_id(con, row["event_id"])
        assert event is not None
        if event["starts_at"] <= dt.datetime.now(dt.UTC):
            raise Conflict("The event has started; bookings can no longer be cancelled")
        charge = await bookings_db.charge_of(con, booking_id)
        refund = row["total_cents"]
        if charge is not None:
            refund_ref = await provider.refund(
                refund, row["user_id"], row["reference"], charge["provider_ref"]
            )
            await bookings_db.insert_payment(
                con,
                booking_id=booking_id,
                user_id=row["user_id"],
                kind="refund",
                amount_cents=refund,
                provider=charge["provider"],
                provider_ref=refund_ref,
            )
        cancelled = await bookings_db.cancel(con, booking_id, refund)
        await notifications.notify(
            con,
            notifications.Kind.BOOKING_CANCELLED,
            row["user_id"],
            {"booking_id": str(booking_id), "reference": row["reference"], "refund_cents": refund},
        )
        seats = await bookings_db.seats_of(con, [booking_id])
    await _free_seats(hub, cancelled, [s["idx"] for s in seats])
    BOOKINGS.labels(outcome="cancelled").inc()
    log.info("booking_cancelled", booking_id=str(booking_id), by_admin=row["user_id"] != user_id)
    return booking_views.booking_view(cancelled, [booking_views.seat_line(s) for s in seats])


async def _free_seats(hub: Hub, booking: Any, idxs: list[int]) -> None:
    # Not loaded: the next load reads PostgreSQL, where the tickets are inactive already.
    if not await hub.inventory.is_loaded(booking["event_id"]):
        return
    counted = booking["group_name"] is None  # group tickets never counted against the cap
    try:
        await hub.inventory.set_seats(
            booking["event_id"],
            idxs,
            SeatCode.FREE,
            user_id=booking["user_id"] if counted else None,
            count_delta=-len(idxs) if counted else 0,
        )
    except Exception as exc:  # they stay sold in Redis (safe) until a rebuild
        log.error("cancel_free_failed", booking_id=str(booking["id"]), error=repr(exc))
