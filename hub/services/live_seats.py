"""Live seat state: loading an event into the inventory from PostgreSQL, reading it, and each
venue's static layout for best-available choices.

An event is loaded on first use (and again after Redis lost it) from its active tickets:
sold seats and, per user, the tickets they own outside group bookings. No sold seat is ever
shown free: a booking that commits while we read is caught by a second read made after
the load, which can only mark seats sold (never free, which could undo a newer sale).
"""

from __future__ import annotations

import uuid

import structlog

from engines.seating import SeatTable
from engines.seats import SeatCode
from hub.context import Hub
from hub.db import inventory as inventory_db
from hub.inventory import HoldKind
from hub.records import Layout, VenueSeats
from hub.services import venues

log = structlog.get_logger(__name__)


async def layout_of(hub: Hub, venue_id: uuid.UUID) -> Layout:
    """The venue's layout, built once per process (venue seats never change).

    Raises:
        NotFound: no such venue.
    """

    async def build() -> Layout:
        return _build_layout(await venues.venue_seats(hub, venue_id))

    return await hub.layouts.get(venue_id, build)


def _build_layout(seats: VenueSeats) -> Layout:
    return Layout(
        seats.venue_id, seats.seats, SeatTable.from_seats(seats.seats), dict(seats.index_of)
    )


async def ensure_loaded(hub: Hub, event_id: uuid.UUID, n_seats: int) -> None:
    """Load the event's seat state from PostgreSQL unless Redis has it already."""
    if not await hub.inventory.is_loaded(event_id):
        await load(hub, event_id, n_seats, force=False)


async def load(hub: Hub, event_id: uuid.UUID, n_seats: int, *, force: bool) -> bool:
    """Build the event's seat state from PostgreSQL's active tickets.

    Args:
        n_seats: the venue's seat count.
        force: rebuild even when loaded; live holds on seats still free are kept, and
            counted against their users' limits again.

    Returns:
        True when this call (re)built the state, False when another got there first.
    """
    inventory = hub.inventory
    async with hub.db.connection() as con:
        sold, owned = await inventory_db.sold_and_owned(con, event_id)
    if force:
        for hold_id in await inventory.hold_ids(event_id):
            hold = await inventory.get_hold(event_id, hold_id)
            if hold is not None and hold.kind is not HoldKind.GROUP:
                owned[hold.user_id] = owned.get(hold.user_id, 0) + len(hold.seats)
    if not await inventory.load(event_id, n_seats, sold, owned, force=force):
        return False
    # A booking that committed after our read may have marked its seats sold before the
    # load overwrote them: read again, now that the load is done, and only add sales.
    snapshot = await inventory.snapshot(event_id)
    async with hub.db.connection() as con:
        sold_now, _ = await inventory_db.sold_and_owned(con, event_id)
    if snapshot is not None:
        missed = [idx for idx in sold_now if snapshot[1][idx] != SeatCode.SOLD]
        if missed:
            await inventory.set_seats(event_id, missed, SeatCode.SOLD)
    log.info("inventory_loaded", event_id=str(event_id), sold=len(sold), forced=force)
    return True


async def seat_states(hub: Hub, event_id: uuid.UUID, n_seats: int) -> tuple[int, bytes]:
    """``(seq, one byte per seat: 0 free, 1 held, 2 sold)``, loading the event if needed."""
    seq, states, _ = await versioned_states(hub, event_id, n_seats)
    return seq, states


async def versioned_states(hub: Hub, event_id: uuid.UUID, n_seats: int) -> tuple[int, bytes, int]:
    """``(seq, states, the event's version)`` read atomically, loading the event if needed."""
    for _ in range(3):
        snapshot = await hub.inventory.versioned_snapshot(event_id)  # None unless loaded
        if snapshot is not None:
            return snapshot
        await load(hub, event_id, n_seats, force=False)
    raise RuntimeError(f"seat state of event {event_id} keeps vanishing from Redis")


async def rebuild(hub: Hub, event_id: uuid.UUID | None = None) -> list[uuid.UUID]:
    """Force a reload of every scheduled event (or of the one given), keeping live holds.

    Returns:
        The ids of the events rebuilt.
    """
    async with hub.db.connection() as con:
        events = await inventory_db.scheduled_events(con, event_id)
    for eid, n_seats in events:
        await load(hub, eid, n_seats, force=True)
    return [eid for eid, _ in events]
