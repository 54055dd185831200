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
from hub.db import Connection
from hub.db import bookings as bookings_db
from hub.db import events as events_db
from hub.db import waitlist as waitlist_db
from hub.errors import Conflict, NotFound
from hub.inventory import Released, SeatCode
from hub.metrics import BOOKINGS
from hub.payments import provider_of
from hub.services import booking_views, events, holds, live_seats, notifications, waitlist

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
        cancelled, seats = await _cancel_and_refund(hub, con, row)
    await _free_seats(hub, cancelled, [s["idx"] for s in seats])
    BOOKINGS.labels(outcome="cancelled").inc()
    log.info("booking_cancelled", booking_id=str(booking_id), by_admin=row["user_id"] != user_id)
    return booking_views.booking_view(cancelled, [booking_views.seat_line(s) for s in seats])


async def _cancel_and_refund(hub: Hub, con: Connection, row: Any) -> tuple[Any, list[Any]]:
    """In the caller's transaction: refund the booking in full, make its tickets inactive,
    mark it cancelled and queue the notification. Returns the booking and its seats."""
    booking_id = row["id"]
    charge = await bookings_db.charge_of(con, booking_id)
    refund = row["total_cents"]
    if charge is not None:
        refund_ref = await provider_of(hub).refund(
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
    return cancelled, await bookings_db.seats_of(con, [booking_id])


async def cancel_event(hub: Hub, event_id: uuid.UUID) -> dict[str, Any]:
    """Cancel an event: every booking cancelled and refunded, holds released, the waitlist
    closed, and every affected user told.

    PostgreSQL first, in one transaction (the event row locked, so no confirmation can
    commit beside it: confirmations re-check the event in their transaction); then Redis:
    every hold released and the seat state rebuilt from PostgreSQL, where nothing is sold.

    Returns:
        The event, now cancelled.

    Raises:
        NotFound: no such event. Conflict: it is cancelled already.
    """
    async with hub.db.transaction() as con:
        event = await events_db.by_id(con, event_id, for_update=True)
        if event is None:
            raise NotFound(f"No such event: {event_id}")
        if event["status"] == "cancelled":
            raise Conflict("The event is cancelled already")
        await events_db.update(con, event_id, {"status": "cancelled"})
        bookings = await bookings_db.confirmed_of_event(con, event_id, for_update=True)
        for row in bookings:
            await _cancel_and_refund(hub, con, row)
        waiting = await waitlist_db.close_event(con, event_id)
        told = {row["user_id"] for row in bookings} | set(waiting)
        holders = await _live_holders(hub, event_id)
        told |= holders
        await notifications.notify_many(
            con,
            notifications.Kind.EVENT_CANCELLED,
            [(user, {"event_id": str(event_id), "event": event["name"]}) for user in sorted(told)],
        )
    events.forget_event(hub, event_id)
    released = await _release_all_holds(hub, event_id)
    await live_seats.load(hub, event_id, await _capacity(hub, event_id), force=True)
    BOOKINGS.labels(outcome="cancelled").inc(len(bookings))
    log.warning(
        "event_cancelled",
        event_id=str(event_id),
        bookings=len(bookings),
        holds=released,
        notified=len(told),
    )
    return await events.get_event(hub, event_id)


async def _live_holders(hub: Hub, event_id: uuid.UUID) -> set[uuid.UUID]:
    users = set()
    for hold_id in await hub.inventory.hold_ids(event_id):
        record = await hub.inventory.get_hold(event_id, hold_id)
        if record is not None:
            users.add(record.user_id)
    return users


async def _release_all_holds(hub: Hub, event_id: uuid.UUID) -> int:
    released = 0
    for hold_id in await hub.inventory.hold_ids(event_id):
        outcome = await hub.inventory.release(event_id, hold_id, mode="force")
        if isinstance(outcome, Released):
            released += 1
            await hub.inventory.forget_hold(hold_id)
            await holds.log_outcome(
                hub, hold_id, event_id, outcome.user_id, len(outcome.seats), "cancelled"
            )
    return released


async def _capacity(hub: Hub, event_id: uuid.UUID) -> int:
    event = await events.load_event(hub, event_id)
    return event.capacity


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
        return
    await waitlist.seats_freed(hub, booking["event_id"], seats=tuple(idxs))
