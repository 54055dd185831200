"""TEST-ONLY: booking with both guards switched off, for the race test's control run.

Honoured only when ``EVENTLY_UNSAFE_DISABLE_DB_GUARD=on``. A one-call booking of named seats
then writes tickets without asking Redis whether the seats are free (no all-or-nothing hold)
and after dropping the partial unique index on active tickets (no last guard). The control
run uses it to prove that the race test can see a double sale when there is one.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import structlog

from hub.context import Hub
from hub.db import bookings as bookings_db
from hub.inventory import SeatCode
from hub.payments import provider_of
from hub.services import booking_views, events, holds, live_seats
from hub.services.bookings import new_reference

log = structlog.get_logger(__name__)


async def book_unguarded(
    hub: Hub, user_id: uuid.UUID, event_id: uuid.UUID, seat_ids: Sequence[uuid.UUID]
) -> dict[str, Any]:
    """Sell the named seats whatever their state. Never reachable in production.

    Raises:
        RuntimeError: the unsafe switch is off.
    """
    if not hub.settings.unsafe_disable_db_guard:
        raise RuntimeError("the unguarded booking path needs EVENTLY_UNSAFE_DISABLE_DB_GUARD=on")
    event = await events.load_event(hub, event_id)
    holds.check_bookable(event)
    layout = await live_seats.layout_of(hub, event.venue_id)
    await live_seats.ensure_loaded(hub, event.id, len(layout))
    idxs = holds.seat_indexes(layout, seat_ids)
    prices = [event.current_cents[layout.seats[i].section] for i in idxs]
    if not hub.parts.get("unguarded_index_dropped"):
        async with hub.db.connection() as con:
            await bookings_db.drop_active_ticket_guard(con)
        hub.parts["unguarded_index_dropped"] = True
        log.warning("unsafe_guard_dropped")
    reference = new_reference()
    provider = provider_of(hub)
    charge_ref = await provider.charge(sum(prices), user_id, reference)
    async with hub.db.transaction() as con:
        row = await bookings_db.insert_booking(
            con,
            reference=reference,
            event_id=event.id,
            user_id=user_id,
            hold_id=None,
            subtotal_cents=sum(prices),
            discount_cents=0,
            discount_bp=0,
            discount_code=None,
            total_cents=sum(prices),
            group_name=None,
        )
        await bookings_db.insert_tickets(con, row["id"], event.id, list(seat_ids), prices)
        await bookings_db.insert_payment(
            con,
            booking_id=row["id"],
            user_id=user_id,
            kind="charge",
            amount_cents=sum(prices),
            provider=provider.name,
            provider_ref=charge_ref,
        )
    await hub.inventory.set_seats(
        event.id, idxs, SeatCode.SOLD, user_id=user_id, count_delta=len(idxs)
    )
    return booking_views.booking_view(row, holds.seat_lines(layout, idxs, prices))
