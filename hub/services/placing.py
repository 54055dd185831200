"""Placing holds: choose seats, quote their prices, run the hold script — nothing else.

This is the core under every way a hold comes to be: a buyer's hold (``holds``), a
one-call or bulk booking (``bookings``), a waitlist offer (``offers``). It never frees a
seat: a refusal goes back to the caller, which decides whether clearing stale holders
(``releases``) or choosing again can help. Keeping release out of here is what lets the
freeing side (``releases``) make offers — which place holds — without an import cycle.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import structlog

from engines.money import cents_to_decimal
from engines.seating import assign_group, rank_best_available
from hub import jsonenc
from hub.context import Hub
from hub.errors import Conflict, ValidationError
from hub.inventory import HoldKind, HoldPlaced, HoldRefused, HoldRequest, Refusal
from hub.metrics import hold_outcome
from hub.services import events, live_seats
from hub.services.live_seats import Layout

log = structlog.get_logger(__name__)

# Best available offers the hold script this many candidates, best first: buyers choosing
# from the same picture at once take different ones instead of colliding on the best.
CANDIDATES = 16
# Holds of this many seats or more (and group holds) choose under the event's lock.
LOCKED_QUANTITY = 10


@dataclass(frozen=True, slots=True)
class Want:
    """What a hold asks for: named seats (by idx) or the best ``quantity`` free ones."""

    user_id: uuid.UUID
    kind: HoldKind
    ttl_ms: int
    named: tuple[int, ...] | None = None
    quantity: int | None = None
    section: str | None = None
    limit: int | None = None  # the per-user cap, None for group holds
    sections: tuple[str, ...] | None = None  # group holds: only seats in these sections

    @property
    def locked(self) -> bool:
        """Large best-available and group choices take turns under the event's lock
        (DESIGN.md §3): a large block chosen from a stale picture would mostly collide."""
        return self.named is None and (
            self.kind is HoldKind.GROUP or (self.quantity or 0) >= LOCKED_QUANTITY
        )


@dataclass(frozen=True, slots=True)
class Placed:
    """A hold just placed, with what its views and a confirmation need."""

    hold_id: uuid.UUID
    event: events.Event
    layout: Layout
    seats: tuple[int, ...]
    prices: tuple[int, ...]
    expires_ms: int


class NoneFree(Exception):
    """Best available found fewer than the wanted number of free eligible seats."""


class StaleEvent(Exception):
    """The event changed since the copy the hold was checked and priced with."""


def check_bookable(event: events.Event, now: dt.datetime | None = None) -> None:
    """Raises Conflict when the event is cancelled or has started."""
    if event.status != "scheduled":
        raise Conflict(f"The event is {event.status}")
    if event.starts_at <= (now or dt.datetime.now(dt.UTC)):
        raise Conflict("The event has already started")


def seat_indexes(layout: Layout, seat_ids: Sequence[uuid.UUID]) -> tuple[int, ...]:
    """Seat ids to idx. Raises ValidationError on unknown or repeated ids."""
    unknown = [str(s) for s in seat_ids if s not in layout.idx_of]
    if unknown:
        raise ValidationError.field("seat_ids", f"not seats of this event: {', '.join(unknown)}")
    if len(set(seat_ids)) != len(seat_ids):
        raise ValidationError.field("seat_ids", "a seat is named more than once")
    return tuple(layout.idx_of[s] for s in seat_ids)


def index_ttl_seconds(hub: Hub) -> int:
    """How long a hold's index entry lives: past the hold's longest life, so that an
    expired hold answers 410 rather than 404."""
    return hub.settings.hold_max_lifetime_seconds + 3600


async def try_place(
    hub: Hub, event: events.Event, layout: Layout, want: Want
) -> tuple[uuid.UUID, HoldPlaced | HoldRefused]:
    """One hold-script call for ``want`` (reloading the event's seats or drawing a new id
    when that is the only obstacle). Returns the hold id and the script's answer.

    The call carries ``event.version``: the script refuses it if the event changed since
    (cancelled, repriced), so no hold is ever placed on a stale copy.

    Raises:
        NoneFree: best available found too few free seats.
        StaleEvent: the event changed; reload it and try again.
    """
    hold_id = uuid.uuid4()
    for _ in range(3):
        if want.named is not None:
            candidates = [list(want.named)]
        else:
            candidates = await _choose(hub, event, layout, want)
        priced = [(c, prices_of(event, layout, c)) for c in candidates]
        result = await hub.inventory.place_hold(
            event.id,
            HoldRequest(
                hold_id=hold_id,
                user_id=want.user_id,
                kind=want.kind,
                seats=priced[0][0],
                prices=priced[0][1],
                ttl_ms=want.ttl_ms,
                limit=want.limit,
                index_ttl_s=index_ttl_seconds(hub),
                alternatives=priced[1:],
                version=event.version,
            ),
        )
        if isinstance(result, HoldRefused) and result.reason is Refusal.NOT_LOADED:
            await live_seats.ensure_loaded(hub, event.id, len(layout))
            continue
        if isinstance(result, HoldRefused) and result.reason is Refusal.EXISTS:
            hold_id = uuid.uuid4()
            continue
        if isinstance(result, HoldRefused) and result.reason is Refusal.STALE:
            raise StaleEvent(str(event.id))
        return hold_id, result
    return hold_id, result


def prices_of(event: events.Event, layout: Layout, idxs: Sequence[int]) -> list[int]:
    """The current price of each seat, in cents: the price a hold quotes and keeps."""
    return [event.current_cents[layout.seats[i].section] for i in idxs]


async def _choose(hub: Hub, event: events.Event, layout: Layout, want: Want) -> list[list[int]]:
    """The best few candidate seat sets (best first) from the current picture."""
    assert want.quantity is not None
    _, states = await live_seats.seat_states(hub, event.id, len(layout))
    status = np.frombuffer(states, dtype=np.uint8)
    if want.kind is HoldKind.GROUP:  # bulk bookings: a block, else a band of rows
        ranked = assign_group(
            layout.table, status, want.quantity, sections=want.sections, limit=CANDIDATES
        )
    else:
        ranked = rank_best_available(
            layout.table,
            status,
            want.quantity,
            sections=[want.section] if want.section else None,
            limit=CANDIDATES,
        )
    if not ranked:
        hold_outcome("sold_out").inc()
        raise NoneFree(want.section or "")
    return ranked


def log_placed(
    hub: Hub, hold_id: uuid.UUID, event_id: uuid.UUID, user_id: uuid.UUID, seats: int
) -> None:
    """Queue the hold-log row of a placed hold (batched by the process's writer)."""
    hub.hold_log.add(hold_id, event_id, user_id, seats)


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
