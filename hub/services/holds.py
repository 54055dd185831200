"""Holds: place one (named seats, or the best available), read it, release it.

A hold is one inventory script call, all-or-nothing over its seats; this module chooses the
seats, quotes their prices, turns refusals into the contract's errors and keeps the hold
log. Holds past their expiry that stand in the way are released on the spot (the leader's
sweeper does the same in the background), so a stale holder never blocks a fresh buyer.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import structlog

from engines.money import cents_to_decimal
from engines.seating import rank_best_available
from hub import jsonenc
from hub.context import Hub
from hub.db import holds as holds_db
from hub.errors import (
    Busy,
    Conflict,
    HoldExpired,
    LimitExceeded,
    NotFound,
    SeatUnavailable,
    SoldOut,
    ValidationError,
)
from hub.inventory import AssignmentBusy, HoldKind, HoldPlaced, HoldRecord, HoldStatus, Released
from hub.metrics import EXPIRED_HOLDS, HOLD_LATENCY, HOLDS
from hub.services import events, live_seats
from hub.services.live_seats import Layout

log = structlog.get_logger(__name__)

_ATTEMPTS = 4  # best-available rechooses when a chosen seat was taken meanwhile
# Best available offers the hold script this many candidates, best first: buyers choosing
# from the same picture at once take different ones instead of colliding on the best.
CANDIDATES = 16
# Holds of this many seats or more (and group holds) choose under the event's lock.
LOCKED_QUANTITY = 10


def _index_ttl(hub: Hub) -> int:
    """How long a hold's index entry lives: past the hold's longest life, so that an
    expired hold answers 410 rather than 404."""
    return hub.settings.hold_max_lifetime_seconds + 3600


@dataclass(frozen=True, slots=True)
class Placed:
    """A hold just placed, with what its views and a confirmation need."""

    hold_id: uuid.UUID
    event: events.Event
    layout: Layout
    seats: tuple[int, ...]
    prices: tuple[int, ...]
    expires_ms: int


def check_bookable(event: events.Event, now: dt.datetime | None = None) -> None:
    """Raises Conflict when the event is cancelled or has started."""
    if event.status != "scheduled":
        raise Conflict(f"The event is {event.status}")
    if event.starts_at <= (now or dt.datetime.now(dt.UTC)):
        raise Conflict("The event has already started")


async def place_hold(
    hub: Hub,
    user_id: uuid.UUID,
    event_id: uuid.UUID,
    *,
    seat_ids: Sequence[uuid.UUID] | None = None,
    quantity: int | None = None,
    section: str | None = None,
) -> dict[str, Any]:
    """Hold the named seats, or the best ``quantity`` free seats (in ``section``).

    Returns:
        The hold view ``{hold_id, event_id, seats, total, expires_at}``.

    Raises:
        NotFound: no such event.
        Conflict: the event is cancelled or has started.
        ValidationError: unknown or repeated seat ids, an unknown section.
        SeatUnavailable: some named seats are held or sold (``seats`` lists them).
        SoldOut: fewer than ``quantity`` eligible seats are free.
        LimitExceeded: the user would hold and own more than the event allows.
        Busy: best-available lost every race for its choice.
    """
    placed = await hold_seats(
        hub, user_id, event_id, seat_ids=seat_ids, quantity=quantity, section=section
    )
    return hold_view(
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
    ttl_seconds: int | None = None,
) -> Placed:
    """Place a hold and return it (see ``place_hold`` for the errors).

    ``ttl_seconds`` overrides the hold lifetime (waitlist offers have their own)."""
    started = time.perf_counter()
    event = await events.load_event(hub, event_id)
    check_bookable(event)
    layout = await live_seats.layout_of(hub, event.venue_id)
    # Not loaded in Redis? The hold script says so and the attempt loads it then.
    named = seat_indexes(layout, seat_ids) if seat_ids is not None else None
    if named is None and section is not None and section not in layout.table.section_names:
        raise ValidationError.field("section", f"no such section: {section!r}")
    limit = event.max_tickets_per_user if kind is not HoldKind.GROUP else None
    ttl_ms = (ttl_seconds or hub.settings.hold_ttl_seconds) * 1000
    # Bulk and group assignments for one event take turns (DESIGN.md §3): a large block
    # chosen from a stale picture would mostly collide. Small holds never wait on the lock:
    # best available hands the hold script its best few candidates instead.
    large = named is None and (kind is HoldKind.GROUP or (quantity or 0) >= LOCKED_QUANTITY)
    turn = hub.inventory.assignment_lock(event.id) if large else contextlib.nullcontext()
    try:
        async with turn:
            hold_id, idxs, prices, result = await _attempt(
                hub, event, layout, user_id, kind, named, quantity, section, ttl_ms, limit
            )
    except AssignmentBusy:
        HOLDS.labels(outcome="busy").inc()
        raise Busy("Too many buyers choosing seats for this event right now; try again") from None
    await _log_placed(hub, hold_id, event.id, user_id, len(idxs))
    HOLDS.labels(outcome="placed").inc()
    HOLD_LATENCY.observe(time.perf_counter() - started)
    log.info("hold_placed", hold_id=str(hold_id), event_id=str(event.id), seats=len(idxs))
    return Placed(hold_id, event, layout, tuple(idxs), tuple(prices), result.expires_ms)


async def _attempt(
    hub: Hub,
    event: events.Event,
    layout: Layout,
    user_id: uuid.UUID,
    kind: HoldKind,
    named: list[int] | None,
    quantity: int | None,
    section: str | None,
    ttl_ms: int,
    limit: int | None,
) -> tuple[uuid.UUID, list[int], list[int], HoldPlaced]:
    """Run the hold script, choosing again (best available) or clearing expired holders
    when that can help; raise the refusal otherwise."""
    hold_id = uuid.uuid4()

    def priced(idxs: list[int]) -> tuple[list[int], list[int]]:
        return idxs, [event.current_cents[layout.seats[i].section] for i in idxs]

    for _ in range(_ATTEMPTS):
        if named is not None:
            candidates = [priced(named)]
        else:
            candidates = [priced(c) for c in await _choose(hub, event, layout, quantity, section)]
        result = await hub.inventory.place_hold(
            event.id,
            hold_id,
            user_id,
            kind,
            *candidates[0],
            ttl_ms,
            limit,
            _index_ttl(hub),
            alternatives=candidates[1:],
        )
        if isinstance(result, HoldPlaced):
            idxs = list(result.seats)
            return hold_id, idxs, priced(idxs)[1], result
        if result.reason == "not_loaded":  # Redis lost the event since we looked
            await live_seats.ensure_loaded(hub, event.id, len(layout))
        elif result.reason == "exists":
            hold_id = uuid.uuid4()
        elif result.reason == "limit":
            HOLDS.labels(outcome="limit_exceeded").inc()
            raise LimitExceeded(
                f"At most {limit} tickets per user for this event "
                f"(you hold or own {result.current})",
                limit=limit,
            )
        elif result.reason == "taken":
            if await _expire_holders(hub, event.id, result.taken):
                continue
            if named is not None:
                HOLDS.labels(outcome="seat_unavailable").inc()
                taken = sorted(result.taken)
                raise SeatUnavailable(
                    f"{len(taken)} of the seats are no longer available",
                    seats=[layout.seats[i].id for i in taken],
                )
        else:
            raise ValidationError.field("seat_ids", f"refused: {result.reason}")
    HOLDS.labels(outcome="busy").inc()
    raise Busy("Too many buyers for the same seats; try again")


def seat_indexes(layout: Layout, seat_ids: Sequence[uuid.UUID]) -> list[int]:
    """Seat ids to idx. Raises ValidationError on unknown or repeated ids."""
    unknown = [str(s) for s in seat_ids if s not in layout.idx_of]
    if unknown:
        raise ValidationError.field("seat_ids", f"not seats of this event: {', '.join(unknown)}")
    if len(set(seat_ids)) != len(seat_ids):
        raise ValidationError.field("seat_ids", "a seat is named more than once")
    return [layout.idx_of[s] for s in seat_ids]


async def _choose(
    hub: Hub, event: events.Event, layout: Layout, quantity: int | None, section: str | None
) -> list[list[int]]:
    """The best few candidate seat sets (best first) from the current picture."""
    assert quantity is not None
    # Holds past their expiry are released by the leader's sweeper within a quarter second;
    # a chosen seat still held by one is freed on the spot (``_expire_holders``).
    _, states = await live_seats.seat_states(hub, event.id, len(layout))
    status = np.frombuffer(states, dtype=np.uint8)
    ranked = rank_best_available(
        layout.table, status, quantity, sections=[section] if section else None, limit=CANDIDATES
    )
    if not ranked:
        HOLDS.labels(outcome="sold_out").inc()
        where = f" in {section}" if section else ""
        raise SoldOut(f"Fewer than {quantity} seats are free{where}")
    return ranked


async def _expire_holders(hub: Hub, event_id: uuid.UUID, seats: Sequence[int]) -> bool:
    """Release the holds past their expiry that hold any of ``seats``; True if any was."""
    freed = False
    for hold_id in await hub.inventory.due_holders(event_id, seats):
        freed |= await _expire(hub, event_id, hold_id)
    return freed


async def _expire(hub: Hub, event_id: uuid.UUID, hold_id: uuid.UUID) -> bool:
    # Expired on the way to a new hold, maybe under the assignment lock: the seats are for
    # the hold being placed; the waitlist is offered seats by the sweeper and on release.
    return await expire_hold(hub, event_id, hold_id, offer=False) is not None


async def expire_hold(
    hub: Hub, event_id: uuid.UUID, hold_id: uuid.UUID, *, offer: bool = True
) -> Released | None:
    """Release a hold that is past its expiry (not one being confirmed); the freed seats go
    to the waitlist unless ``offer`` is false. Returns what was released, or None if it
    was not due or gone."""
    from hub.services import waitlist  # waitlist places holds: imported late, no cycle

    released = await hub.inventory.release(event_id, hold_id, mode="expire")
    if not isinstance(released, Released):
        return None
    EXPIRED_HOLDS.inc()
    await log_outcome(hub, hold_id, event_id, released.user_id, len(released.seats), "expired")
    log.info("hold_expired", hold_id=str(hold_id), event_id=str(event_id))
    await waitlist.seats_freed(hub, event_id, released, offer=offer)
    return released


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
    if record is None:  # swept away at its expiry (booked and released ones are unindexed)
        raise HoldExpired("The hold has expired; hold the seats again")
    if record.status is HoldStatus.HELD:
        if record.expires_ms <= await hub.inventory.server_time_ms():
            await _expire(hub, event_id, hold_id)
            raise HoldExpired("The hold has expired; hold the seats again")
    return record


async def get_hold(hub: Hub, user_id: uuid.UUID, hold_id: uuid.UUID) -> dict[str, Any]:
    """The caller's hold view.

    Raises:
        NotFound: no such hold, or not the caller's.
        HoldExpired: it is past its expiry.
    """
    record = await find_hold(hub, user_id, hold_id)
    event = await events.load_event(hub, record.event_id)
    layout = await live_seats.layout_of(hub, event.venue_id)
    return hold_view(
        record.event_id, hold_id, layout, record.seats, record.prices, record.expires_ms
    )


async def release_hold(hub: Hub, user_id: uuid.UUID, hold_id: uuid.UUID) -> None:
    """Release the caller's hold: its seats are free again.

    Raises:
        NotFound: no such hold, or not the caller's.
        Conflict: it is being confirmed right now.
    """
    ref = await hub.inventory.hold_ref(hold_id)
    if ref is None or ref[1] != user_id:
        raise NotFound(f"No such hold: {hold_id}")
    event_id = ref[0]
    released = await hub.inventory.release(event_id, hold_id, user_id=user_id)
    if released == "confirming":
        raise Conflict("The hold is being confirmed")
    if not isinstance(released, Released):
        raise HoldExpired("The hold has expired already")
    await hub.inventory.forget_hold(hold_id)
    await log_outcome(hub, hold_id, event_id, user_id, len(released.seats), "released")
    log.info("hold_released", hold_id=str(hold_id), event_id=str(event_id))
    from hub.services import waitlist  # waitlist places holds: imported late, no cycle

    await waitlist.seats_freed(hub, event_id, released)


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
    if outcome == "already":
        raise Conflict("A hold can be extended only once")
    if outcome == "max_lifetime":
        raise Conflict("The hold is at its maximum lifetime")
    if outcome == "confirming":
        raise Conflict("The hold is being confirmed")
    if isinstance(outcome, str):
        raise HoldExpired("The hold has expired; hold the seats again")
    event = await events.load_event(hub, record.event_id)
    layout = await live_seats.layout_of(hub, event.venue_id)
    log.info("hold_extended", hold_id=str(hold_id), event_id=str(record.event_id))
    return hold_view(record.event_id, hold_id, layout, record.seats, record.prices, outcome)


async def _log_placed(
    hub: Hub, hold_id: uuid.UUID, event_id: uuid.UUID, user_id: uuid.UUID, seats: int
) -> None:
    # The hold stands in Redis whatever happens here; the log only feeds conversion figures.
    writer = hub.parts.get("hold_log")
    if writer is not None:  # batched by this process's writer (hub.services.hold_log)
        writer.add(hold_id, event_id, user_id, seats)
        return
    try:
        async with hub.db.connection() as con:
            await holds_db.log_placed(con, hold_id, event_id, user_id, seats)
    except Exception as exc:  # never fail a placed hold over its log line
        log.warning("hold_log_failed", hold_id=str(hold_id), error=repr(exc))


async def log_outcome(
    hub: Hub, hold_id: uuid.UUID, event_id: uuid.UUID, user_id: uuid.UUID, seats: int, outcome: str
) -> None:
    """Record how a hold ended (released, expired, cancelled) in the hold log."""
    try:
        async with hub.db.connection() as con:
            await holds_db.log_outcome(con, hold_id, event_id, user_id, seats, outcome)
    except Exception as exc:
        log.warning("hold_log_failed", hold_id=str(hold_id), error=repr(exc))


def expires_at(expires_ms: int) -> str:
    return jsonenc.isoformat(dt.datetime.fromtimestamp(expires_ms / 1000, dt.UTC))


def seat_lines(layout: Layout, seats: Sequence[int], prices: Sequence[int]) -> list[dict[str, Any]]:
    """``[{id, section, row, number, price}]`` for seats by idx."""
    lines = []
    for idx, cents in zip(seats, prices, strict=True):
        seat = layout.seats[idx]
        lines.append(
            {
                "id": seat.id,
                "section": seat.section,
                "row": seat.row,
                "number": seat.number,
                "price": cents_to_decimal(cents),
            }
        )
    return lines


def hold_view(
    event_id: uuid.UUID,
    hold_id: uuid.UUID,
    layout: Layout,
    seats: Sequence[int],
    prices: Sequence[int],
    expires_ms: int,
) -> dict[str, Any]:
    return {
        "hold_id": hold_id,
        "event_id": event_id,
        "seats": seat_lines(layout, seats, prices),
        "total": cents_to_decimal(sum(prices)),
        "expires_at": expires_at(expires_ms),
    }
