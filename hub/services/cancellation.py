"""Cancelling a booking: by its owner or an admin, before the event starts.

One transaction makes the tickets inactive, records the refund as due and the
notification, and marks the booking cancelled; only after the commit do the seats turn
free in Redis (through ``releases``, which also offers them down the waitlist) and is the
refund paid (by the leader, ``refunds``). The order means a seat is never free in Redis
while PostgreSQL still sells it, and no payment call ever runs inside the transaction.
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
from hub.db import seat_frees as seat_frees_db
from hub.db import waitlist as waitlist_db
from hub.errors import Conflict, NotFound
from hub.metrics import BOOKINGS
from hub.services import (
    booking_views,
    discounts,
    event_recommendations,
    events,
    live_seats,
    notifications,
    releases,
)

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
        cancelled, seats = await _cancel_and_refund(con, row)
        counted = cancelled["group_name"] is None  # group tickets never counted to the cap
        owner = cancelled["user_id"] if counted else None
        idxs = [s["idx"] for s in seats]
        # Owed until Redis has them free; the leader finishes it if this request cannot.
        pending = await seat_frees_db.add(
            con, cancelled["event_id"], idxs, owner, _pending_due(hub)
        )
    if await releases.free_sold_seats(hub, cancelled["event_id"], idxs, owner=owner):
        await _forget_pending(hub, pending)
    # The booking's owner gets recommendations that know it is cancelled.
    await event_recommendations.forget_answers(hub, cancelled["user_id"])
    BOOKINGS.labels(outcome="cancelled").inc()
    log.info("booking_cancelled", booking_id=str(booking_id), by_admin=row["user_id"] != user_id)
    return booking_views.booking_view(cancelled, [booking_views.seat_line(s) for s in seats])


def _pending_due(hub: Hub) -> dt.timedelta:
    """When the leader may finish a cancellation's Redis step: well after this request
    could still be running it (its timeout), so the two never free seats at once."""
    return dt.timedelta(seconds=hub.settings.abandoned_after_seconds)


async def _forget_pending(hub: Hub, pending: int) -> None:
    try:
        async with hub.db.connection() as con:
            await seat_frees_db.done(con, pending)
    except Exception as exc:  # the leader finds the seats free already and drops the row
        log.warning("pending_free_not_forgotten", pending=pending, error=repr(exc))


async def _cancel_and_refund(con: Connection, row: Any) -> tuple[Any, list[Any]]:
    """In the caller's transaction: make the tickets inactive, mark the booking cancelled
    with its full refund due (paid after commit by ``refunds``) and queue the notification.
    Returns the booking and its seats."""
    booking_id = row["id"]
    refund = row["total_cents"]
    cancelled = await bookings_db.cancel(con, booking_id, refund)
    if row["discount_code"] is not None:  # the code's use is free again
        await discounts.give_back(con, row["discount_code"])
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
            await _cancel_and_refund(con, row)
        waiting = await waitlist_db.close_event(con, event_id)
        told = {row["user_id"] for row in bookings} | set(waiting)
        holders = await _live_holders(hub, event_id)
        told |= holders
        await notifications.notify_many(
            con,
            notifications.Kind.EVENT_CANCELLED,
            [(user, {"event_id": str(event_id), "event": event["name"]}) for user in sorted(told)],
        )
    await events.changed(hub, event_id)
    # No cached recommendation may still offer it (nor use its bookings as tastes).
    await event_recommendations.forget_all_answers(hub)
    released = await releases.release_all_holds(hub, event_id)
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


async def _capacity(hub: Hub, event_id: uuid.UUID) -> int:
    event = await events.load_event(hub, event_id)
    return event.capacity
