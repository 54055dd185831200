"""The waitlist: join, leave, and see your place and your offer.

Seats that come free are offered down the line by ``releases`` (the one place that frees
seats); joining offers any seats that are free right now, and leaving gives back an
outstanding offer, whose seats pass to the next in line.
"""

from __future__ import annotations

import uuid
from typing import Any

import structlog

from hub.context import Hub
from hub.db import waitlist as waitlist_db
from hub.errors import Conflict, NotFound, ValidationError
from hub.inventory import ReleaseMode
from hub.services import events, live_seats, placing, releases

log = structlog.get_logger(__name__)

_ENTRY_STATUSES_IN_LINE = ("waiting", "offered")


async def join(hub: Hub, user_id: uuid.UUID, event_id: uuid.UUID, quantity: int) -> dict[str, Any]:
    """Join the event's waitlist.

    Returns:
        ``{position, quantity, status}``; position is the place in line (1 = next).

    Raises:
        NotFound: no such event. Conflict: cancelled or started, or already in line.
        ValidationError: quantity above the event's per-user limit or its capacity.
    """
    event = await events.load_event(hub, event_id)
    placing.check_bookable(event)
    if quantity > event.capacity:
        raise ValidationError.field("quantity", f"the event has only {event.capacity} seats")
    if quantity > event.max_tickets_per_user:
        raise ValidationError.field(
            "quantity", f"at most {event.max_tickets_per_user} for this event"
        )
    try:
        async with hub.db.transaction() as con:
            row = await waitlist_db.join(con, event_id, user_id, quantity)
            place = await waitlist_db.place_in_line(con, event_id, row["position"])
    except waitlist_db.AlreadyWaiting:
        raise Conflict("You are on this waitlist already") from None
    log.info("waitlist_joined", event_id=str(event_id), position=row["position"], place=place)
    await hub.inventory.mark_waitlist(event_id)  # releases offer their seats from now on
    # Seats may be free right now: offer them rather than wait for the next release.
    await releases.offer_free_seats(hub, event_id)
    current = await status(hub, user_id, event_id)
    return {key: current[key] for key in ("position", "quantity", "status")}


async def leave(hub: Hub, user_id: uuid.UUID, event_id: uuid.UUID) -> None:
    """Leave the line; an outstanding offer is released and passes to the next in line.

    Raises:
        NotFound: the user is not in line for this event.
    """
    async with hub.db.transaction() as con:
        entry = await waitlist_db.live_entry(con, event_id, user_id)
        if entry is None:
            raise NotFound("You are not on this waitlist")
        await waitlist_db.set_status(con, entry["id"], "left")
    log.info("waitlist_left", event_id=str(event_id))
    if entry["status"] == "offered" and entry["hold_id"] is not None:
        await releases.release_hold(hub, event_id, entry["hold_id"], mode=ReleaseMode.FORCE)


async def status(hub: Hub, user_id: uuid.UUID, event_id: uuid.UUID) -> dict[str, Any]:
    """``{position, quantity, status, offer}`` of the user's latest entry.

    ``position`` is the place in line while waiting or offered, else null; ``offer`` is
    ``{hold_id, seats, expires_at}`` while an offer stands, else null.

    Raises:
        NotFound: the user never joined, or left.
    """
    async with hub.db.connection() as con:
        entry = await waitlist_db.latest_entry(con, event_id, user_id)
        if entry is None or entry["status"] == "left":
            raise NotFound("You are not on this waitlist")
        in_line = entry["status"] in _ENTRY_STATUSES_IN_LINE
        place = (
            await waitlist_db.place_in_line(con, event_id, entry["position"]) if in_line else None
        )
    offer = None
    if entry["status"] == "offered" and entry["hold_id"] is not None:
        offer = await _offer_view(hub, event_id, entry["hold_id"])
    return {
        "position": place,
        "quantity": entry["quantity"],
        "status": entry["status"],
        "offer": offer,
    }


async def _offer_view(hub: Hub, event_id: uuid.UUID, hold_id: uuid.UUID) -> dict[str, Any] | None:
    record = await hub.inventory.get_hold(event_id, hold_id)
    if record is None:
        return None
    event = await events.load_event(hub, event_id)
    layout = await live_seats.layout_of(hub, event.venue_id)
    return {
        "hold_id": hold_id,
        "seats": placing.seat_lines(layout, record.seats, record.prices),
        "expires_at": placing.expires_at(record.expires_ms),
    }
