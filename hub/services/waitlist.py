"""The waitlist: join, leave, see your place, and offers of seats that come free.

Whenever seats come free (a hold released or expired, a booking cancelled, an offer not
taken), ``seats_freed`` offers them down the line: the first waiting entry whose quantity
the free seats can cover gets a hold in its name (kind ``offer``, its own TTL), preferring
the seats just freed. The offer is recorded in the same transaction that locks the entry,
announced through the outbox and, at once, on the event's live channel to that user only.
An offer that lapses or is released frees its seats, which starts the next round. Entries
are locked with SKIP LOCKED, so two processes offering at once never offer one entry twice.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import uuid
from typing import Any

import structlog

from hub import jsonenc
from hub.context import Hub
from hub.db import waitlist as waitlist_db
from hub.errors import (
    Busy,
    Conflict,
    HubError,
    NotFound,
    SeatUnavailable,
    SoldOut,
    ValidationError,
)
from hub.inventory import HoldKind, Released
from hub.services import events, holds, live_seats, notifications

log = structlog.get_logger(__name__)

_ENTRY_STATUSES_IN_LINE = ("waiting", "offered")
# Set while this task offers seats: a hold placed for an offer may expire other holds on
# its way, and their freed seats are picked up by the running round, not a nested one.
_offering: contextvars.ContextVar[bool] = contextvars.ContextVar("offering", default=False)


async def join(hub: Hub, user_id: uuid.UUID, event_id: uuid.UUID, quantity: int) -> dict[str, Any]:
    """Join the event's waitlist.

    Returns:
        ``{position, quantity, status}``; position is the place in line (1 = next).

    Raises:
        NotFound: no such event. Conflict: cancelled or started, or already in line.
        ValidationError: quantity above the event's per-user limit.
    """
    event = await events.load_event(hub, event_id)
    holds.check_bookable(event)
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
    # Seats may be free right now: offer them rather than wait for the next release.
    await offer_free_seats(hub, event_id)
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
        released = await hub.inventory.release(event_id, entry["hold_id"], mode="force")
        if isinstance(released, Released):
            await holds.log_outcome(
                hub, entry["hold_id"], event_id, user_id, len(released.seats), "released"
            )
            await seats_freed(hub, event_id, released)


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


async def seats_freed(
    hub: Hub,
    event_id: uuid.UUID,
    released: Released | None = None,
    seats: tuple[int, ...] = (),
    *,
    offer: bool = True,
) -> None:
    """Seats of ``event_id`` came free (a released hold, or ``seats`` of a cancelled
    booking): settle a lapsed offer, then (unless ``offer`` is false, e.g. inside a
    best-available choice that holds the event's assignment lock) offer down the line."""
    if released is not None and released.kind is HoldKind.OFFER:
        async with hub.db.transaction() as con:
            entry = await waitlist_db.by_hold(con, released.hold_id)
            if entry is not None:
                await waitlist_db.set_status(con, entry["id"], "lapsed")
                log.info("waitlist_offer_lapsed", event_id=str(event_id))
    if not offer or _offering.get():
        return  # an offer round is running in this task: it goes on while seats are free
    prefer = released.seats if released is not None else seats
    await offer_free_seats(hub, event_id, prefer=prefer)


async def offer_free_seats(hub: Hub, event_id: uuid.UUID, prefer: tuple[int, ...] = ()) -> int:
    """Offer free seats to waiting entries, in order, while they fit; return offers made."""
    async with hub.db.connection() as con:
        if not await waitlist_db.has_waiting(con, event_id):
            return 0
    event = await events.load_event(hub, event_id)
    if event.status != "scheduled":
        return 0
    made = 0
    token = _offering.set(True)
    try:
        while True:
            _, states = await events.seat_states(hub, event)
            free = states.count(0)
            candidates = [i for i in prefer if states[i] == 0]
            if free == 0 or not await _offer_next(hub, event, free, candidates):
                return made
            made += 1
    finally:
        _offering.reset(token)


async def _offer_next(hub: Hub, event: events.Event, free: int, prefer: list[int]) -> bool:
    async with hub.db.transaction() as con:
        entry = await waitlist_db.next_waiting(con, event.id, free)
        if entry is None:
            return False
        quantity = entry["quantity"]
        layout = await live_seats.layout_of(hub, event.venue_id)
        chosen = (
            [layout.seats[i].id for i in prefer[:quantity]] if len(prefer) >= quantity else None
        )
        try:
            placed = await holds.hold_seats(
                hub,
                entry["user_id"],
                event.id,
                seat_ids=chosen,
                quantity=None if chosen else quantity,
                kind=HoldKind.OFFER,
                ttl_seconds=hub.settings.offer_ttl_seconds,
            )
        except (Busy, SoldOut, SeatUnavailable) as exc:
            # The seats went elsewhere meanwhile, or the event is busy: next release, again.
            log.info("waitlist_offer_deferred", event_id=str(event.id), reason=exc.code)
            return False
        except HubError as exc:
            # This user cannot take them (e.g. at their ticket limit): on to the next.
            await waitlist_db.set_status(con, entry["id"], "lapsed")
            log.info("waitlist_offer_skipped", event_id=str(event.id), reason=exc.code)
            return True
        expires = dt.datetime.fromtimestamp(placed.expires_ms / 1000, dt.UTC)
        await waitlist_db.set_status(
            con, entry["id"], "offered", hold_id=placed.hold_id, offer_expires_at=expires
        )
        seat_lines = holds.seat_lines(layout, placed.seats, placed.prices)
        offer = {
            "hold_id": str(placed.hold_id),
            "seats": [
                {**line, "id": str(line["id"]), "price": float(line["price"])}
                for line in seat_lines
            ],
            "expires_at": jsonenc.isoformat(expires),
        }
        await notifications.notify(
            con,
            notifications.Kind.OFFER_MADE,
            entry["user_id"],
            {"event_id": str(event.id), "event": event.name, **offer},
        )
    await hub.inventory.publish(event.id, {"t": "offer", "user_id": str(entry["user_id"]), **offer})
    log.info("waitlist_offer_made", event_id=str(event.id), seats=len(placed.seats))
    return True


async def _offer_view(hub: Hub, event_id: uuid.UUID, hold_id: uuid.UUID) -> dict[str, Any] | None:
    record = await hub.inventory.get_hold(event_id, hold_id)
    if record is None:
        return None
    event = await events.load_event(hub, event_id)
    layout = await live_seats.layout_of(hub, event.venue_id)
    return {
        "hold_id": hold_id,
        "seats": holds.seat_lines(layout, record.seats, record.prices),
        "expires_at": holds.expires_at(record.expires_ms),
    }
