"""Holds: place one (named seats, or the best available), read it, extend it, release it.

A hold is one inventory script call, all-or-nothing over its seats (``placing``); this
module turns the script's refusals into the contract's errors and keeps the hold log.
Holds past their expiry that stand in the way are expired on the spot through
``releases`` (the leader's sweeper does the same in the background), so a stale holder
never blocks a fresh buyer.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Sequence
from typing import Any

import structlog

from hub.context import Hub
from hub.errors import (
    Busy,
    Conflict,
    HoldExpired,
    HubError,
    LimitExceeded,
    NotFound,
    SeatUnavailable,
    SoldOut,
    ValidationError,
)
from hub.inventory import (
    AssignmentBusy,
    HoldKind,
    HoldPlaced,
    HoldRecord,
    HoldStatus,
    Refusal,
    Released,
    ReleaseMode,
)
from hub.metrics import HOLD_LATENCY, hold_outcome
from hub.services import events, live_seats, placing, releases, waiting_room
from hub.services.placing import Placed, Want

log = structlog.get_logger(__name__)

_ATTEMPTS = 4  # best available chooses again when a chosen seat was taken meanwhile


async def place_hold(
    hub: Hub,
    user_id: uuid.UUID,
    event_id: uuid.UUID,
    *,
    seat_ids: Sequence[uuid.UUID] | None = None,
    quantity: int | None = None,
    section: str | None = None,
    admission_token: str | None = None,
) -> dict[str, Any]:
    """Hold the named seats, or the best ``quantity`` free seats (in ``section``).

    Args:
        admission_token: the ``X-Admission-Token`` header; needed while the event has a
            waiting room on (``waiting_room.require_admission``), ignored otherwise.

    Returns:
        The hold view ``{hold_id, event_id, seats, total, expires_at}``.

    Raises:
        NotAdmitted: a waiting room is on and the token is not the user's for the event.
        NotFound: no such event.
        Conflict: the event is cancelled or has started.
        ValidationError: unknown or repeated seat ids, an unknown section.
        SeatUnavailable: some named seats are held or sold (``seats`` lists them).
        SoldOut: fewer than ``quantity`` eligible seats are free.
        LimitExceeded: the user would hold and own more than the event allows.
        Busy: best-available lost every race for its choice.
    """
    await waiting_room.require_admission(hub, user_id, event_id, admission_token)
    placed = await hold_seats(
        hub, user_id, event_id, seat_ids=seat_ids, quantity=quantity, section=section
    )
    return placing.hold_view(
        placed.event.id,
        placed.hold_id,
        placed.layout,
        placed.seats,
        placed.prices,
        placed.expires_ms,
    )


async def hold_seats(
    hub: Hub,
    user_id: uuid.UUID,
    event_id: uuid.UUID,
    *,
    seat_ids: Sequence[uuid.UUID] | None = None,
    quantity: int | None = None,
    section: str | None = None,
    kind: HoldKind = HoldKind.SINGLE,
    sections: Sequence[str] | None = None,
) -> Placed:
    """Place a hold and return it (see ``place_hold`` for the errors). ``sections`` limits
    a group hold's choice (names checked by the caller)."""
    want_sections = tuple(sections) if sections is not None else None
    started = time.perf_counter()
    for fresh in (False, True):
        # The cached copy first; if the event changed since this process read it (the hold
        # script compares versions), read it again, once.
        event = await events.load_event(hub, event_id, fresh=fresh)
        try:
            placed = await _hold_on(
                hub, event, user_id, seat_ids, quantity, section, kind, want_sections
            )
            break
        except placing.StaleEvent:
            if fresh:
                raise Busy("The event is being changed right now; try again") from None
    hold_outcome("placed").inc()
    HOLD_LATENCY.observe(time.perf_counter() - started)
    log.info("hold_placed", hold_id=str(placed.hold_id), event_id=str(event_id))
    return placed


async def _hold_on(
    hub: Hub,
    event: events.Event,
    user_id: uuid.UUID,
    seat_ids: Sequence[uuid.UUID] | None,
    quantity: int | None,
    section: str | None,
    kind: HoldKind,
    sections: tuple[str, ...] | None = None,
) -> Placed:
    placing.check_bookable(event)
    layout = await live_seats.layout_of(hub, event.venue_id)
    named = placing.seat_indexes(layout, seat_ids) if seat_ids is not None else None
    if named is None and section is not None and section not in layout.table.section_names:
        raise ValidationError.field("section", f"no such section: {section!r}")
    want = Want(
        user_id=user_id,
        kind=kind,
        ttl_ms=hub.settings.hold_ttl_seconds * 1000,
        named=named,
        quantity=quantity,
        section=section,
        limit=event.max_tickets_per_user if kind is not HoldKind.GROUP else None,
        sections=sections,
    )
    # Small holds never wait on the event's lock: best available hands the hold script its
    # best few candidates instead.
    turn = hub.inventory.assignment_lock(event.id) if want.locked else contextlib.nullcontext()
    try:
        async with turn:
            hold_id, result = await _attempt(hub, event, layout, want)
    except AssignmentBusy:
        hold_outcome("busy").inc()
        raise Busy("Too many buyers choosing seats for this event right now; try again") from None
    seats = result.seats
    placing.log_placed(hub, hold_id, event.id, user_id, len(seats))
    prices = tuple(placing.prices_of(event, layout, seats))
    return Placed(hold_id, event, layout, seats, prices, result.expires_ms)


async def _attempt(
    hub: Hub, event: events.Event, layout: live_seats.Layout, want: Want
) -> tuple[uuid.UUID, HoldPlaced]:
    """Run the hold script, choosing again (best available) or clearing expired holders
    when that can help; raise the refusal otherwise."""
    for _ in range(_ATTEMPTS):
        try:
            hold_id, result = await placing.try_place(hub, event, layout, want)
        except placing.NoneFree:
            where = f" in {want.section}" if want.section else ""
            raise SoldOut(f"Fewer than {want.quantity} seats are free{where}") from None
        if isinstance(result, HoldPlaced):
            return hold_id, result
        if result.reason is Refusal.LIMIT:
            hold_outcome("limit_exceeded").inc()
            raise LimitExceeded(
                f"At most {want.limit} tickets per user for this event "
                f"(you hold or own {result.current})",
                limit=want.limit,
            )
        if result.reason is not Refusal.TAKEN:
            raise ValidationError.field("seat_ids", f"refused: {result.reason}")
        # The script says whether an expired hold stands in the way: only then clear it.
        if result.due and await releases.expire_due_holders(hub, event.id, result.taken):
            continue
        if want.named is not None:
            hold_outcome("seat_unavailable").inc()
            taken = sorted(result.taken)
            raise SeatUnavailable(
                f"{len(taken)} of the seats are no longer available",
                seats=[layout.seats[i].id for i in taken],
            )
    hold_outcome("busy").inc()
    raise Busy("Too many buyers for the same seats; try again")


async def find_hold(hub: Hub, user_id: uuid.UUID, hold_id: uuid.UUID) -> HoldRecord:
    """The caller's live hold.

    Raises:
        NotFound: no such hold, or not the caller's.
        HoldExpired: it expired (it is released now if it was still there).
    """
    ref = await hub.inventory.hold_ref(hold_id)
    if ref is None or ref[1] != user_id:
        raise NotFound(f"No such hold: {hold_id}")
    event_id = ref[0]
    record = await hub.inventory.get_hold(event_id, hold_id)
    if record is None:
        raise await gone(hub, hold_id)
    if record.status is HoldStatus.HELD:
        if record.expires_ms <= await hub.inventory.server_time_ms():
            await releases.release_hold(hub, event_id, hold_id, mode=ReleaseMode.EXPIRE)
            raise HoldExpired("The hold has expired; hold the seats again")
    return record


async def get_hold(hub: Hub, user_id: uuid.UUID, hold_id: uuid.UUID) -> dict[str, Any]:
    """The caller's hold view.

    Raises:
        NotFound: no such hold, or not the caller's.
        HoldExpired: it is past its expiry.
    """
    record = await find_hold(hub, user_id, hold_id)
    return await _view(hub, record, record.expires_ms)


async def release_hold(hub: Hub, user_id: uuid.UUID, hold_id: uuid.UUID) -> None:
    """Release the caller's hold: its seats are free again.

    Raises:
        NotFound: no such hold, or not the caller's.
        Conflict: it is being confirmed right now.
        HoldExpired: it expired already.
    """
    ref = await hub.inventory.hold_ref(hold_id)
    if ref is None or ref[1] != user_id:
        raise NotFound(f"No such hold: {hold_id}")
    released = await releases.release_hold(hub, ref[0], hold_id, user_id=user_id)
    if released is Refusal.CONFIRMING:
        raise Conflict("The hold is being confirmed")
    if not isinstance(released, Released):
        raise await gone(hub, hold_id)


async def gone(hub: Hub, hold_id: uuid.UUID) -> HubError:
    """The error for a hold that is no longer there: 410 if it expired (an expired hold
    keeps its index entry), 404 if it was booked or released (the entry went with it)."""
    if await hub.inventory.indexed(hold_id):
        return HoldExpired("The hold has expired; hold the seats again")
    return NotFound(f"No such hold: {hold_id}")


async def extend_hold(hub: Hub, user_id: uuid.UUID, hold_id: uuid.UUID) -> dict[str, Any]:
    """Extend the caller's hold by one hold lifetime, once, within the maximum lifetime.

    Returns:
        The hold view with its new ``expires_at``.

    Raises:
        NotFound: no such hold, or not the caller's.
        HoldExpired: it expired.
        Conflict: extended already, being confirmed, or at its maximum lifetime.
    """
    record = await find_hold(hub, user_id, hold_id)
    outcome = await hub.inventory.extend(
        record.event_id,
        hold_id,
        hub.settings.hold_ttl_seconds * 1000,
        hub.settings.hold_max_lifetime_seconds * 1000,
    )
    if outcome is Refusal.ALREADY:
        raise Conflict("A hold can be extended only once")
    if outcome is Refusal.MAX_LIFETIME:
        raise Conflict("The hold is at its maximum lifetime")
    if outcome is Refusal.CONFIRMING:
        raise Conflict("The hold is being confirmed")
    if isinstance(outcome, Refusal):
        raise HoldExpired("The hold has expired; hold the seats again")
    log.info("hold_extended", hold_id=str(hold_id), event_id=str(record.event_id))
    return await _view(hub, record, outcome)


async def _view(hub: Hub, record: HoldRecord, expires_ms: int) -> dict[str, Any]:
    event = await events.load_event(hub, record.event_id)
    layout = await live_seats.layout_of(hub, event.venue_id)
    return placing.hold_view(
        record.event_id, record.hold_id, layout, record.seats, record.prices, expires_ms
    )
