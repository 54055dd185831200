"""Bulk group bookings: seats for a whole group, assigned by the seat engine, in one booking.

All or nothing (DESIGN.md §3): the group's seats are chosen under the event's short
assignment lock (``assign_group``: one block in one row, else a band of adjacent rows) and
held by one hold-script call; then the hold is confirmed as one booking with the group
rate and the code. Any failure after the hold — a declined card, a code gone bad, a
crash of this request — frees every seat through ``releases``; a process that dies with
the hold in place leaves it to expire (or, if it was being confirmed, to the leader's
reconciler), so a group never ends with part of its seats. Checks that need nothing held
come first: the size (2 to ``EVENTLY_MAX_GROUP_SIZE``), the sections and the code.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from engines.discounts import group_rate_bp
from hub import payments
from hub.context import Hub
from hub.errors import LimitExceeded, ValidationError
from hub.inventory import HoldKind
from hub.services import (
    bookings,
    discounts,
    events,
    holds,
    idempotency,
    live_seats,
    releases,
    waiting_room,
)
from hub.services.idempotency import Claim, Replay

log = structlog.get_logger(__name__)

MIN_GROUP_SIZE = 2


@dataclass(frozen=True, slots=True)
class GroupRequest:
    """``{event_id, quantity, group_name, discount_code?, preferred_sections?}``; the user
    is the caller's own or, for an admin, the one named."""

    event_id: uuid.UUID
    quantity: int
    group_name: str
    discount_code: str | None = None
    preferred_sections: Sequence[str] | None = None
    # ``X-Admission-Token`` of the user booked for: needed while the event's waiting room
    # is on, ignored otherwise.
    admission_token: str | None = None


async def book_group(
    hub: Hub,
    user_id: uuid.UUID,
    request: GroupRequest,
    *,
    idempotency_key: str | None = None,
    request_hash: str = "",
) -> dict[str, Any] | Replay:
    """Book seats for a group in one booking; honours an idempotency key.

    Returns:
        The booking view with its ``receipt``, or the ``Replay`` of the first response.

    Raises:
        LimitExceeded: more than ``EVENTLY_MAX_GROUP_SIZE`` seats (``limit`` names it).
        NotAdmitted: the event's waiting room is on and the token is not the user's.
        ValidationError: fewer than 2 seats, an unknown section, an invalid code.
        NotFound: no such event. Conflict: the event is cancelled or has started.
        SoldOut: fewer free seats (in the preferred sections) than the group.
        Busy: the event's assignment lock stayed busy (``Retry-After``).
        PaymentFailed: the card was declined; every seat is free again.
        ServiceUnavailable: payments are down (the breaker is open, or the provider failed
            or timed out); every seat is free again.
        IdempotencyConflict: the key was used with another body.
    """
    _check_size(hub, request.quantity)
    await waiting_room.require_admission(hub, user_id, request.event_id, request.admission_token)

    async def work(claim: Claim | None) -> dict[str, Any]:
        # An open payment breaker answers at once, before any seat is held.
        payments.ensure_available(hub.breakers.payments)
        return await _book(hub, user_id, request, claim)

    return await idempotency.once(hub, user_id, idempotency_key, request_hash, work)


def _check_size(hub: Hub, quantity: int) -> None:
    if quantity < MIN_GROUP_SIZE:
        raise ValidationError.field("quantity", f"a group has at least {MIN_GROUP_SIZE} seats")
    limit = hub.settings.max_group_size
    if quantity > limit:
        raise LimitExceeded(f"A group booking takes at most {limit} seats", limit=limit)


async def _book(
    hub: Hub, user_id: uuid.UUID, request: GroupRequest, claim: Claim | None
) -> dict[str, Any]:
    event = await events.load_event(hub, request.event_id)
    if request.preferred_sections is not None:
        layout = await live_seats.layout_of(hub, event.venue_id)
        unknown = sorted(set(request.preferred_sections) - set(layout.table.section_names))
        if unknown:
            raise ValidationError.field(
                "preferred_sections", f"no such sections: {', '.join(unknown)}"
            )
    if request.discount_code is not None:  # before anything is held
        await discounts.code_rate_bp(hub, request.discount_code, event.id)
    placed = await holds.hold_seats(
        hub,
        user_id,
        event.id,
        quantity=request.quantity,
        kind=HoldKind.GROUP,
        sections=request.preferred_sections,
    )
    try:
        view = await bookings.confirm(
            hub,
            user_id,
            placed.event,
            placed.layout,
            placed.hold_id,
            request.discount_code,
            claim,
            group_name=request.group_name,
            group_bp=group_rate_bp(request.quantity),
            with_receipt=True,
        )
    except BaseException:
        # Every seat goes back on sale (and down the waitlist) unless PostgreSQL sold them.
        await hub.cleanups.settle(
            releases.release_hold(hub, placed.event.id, placed.hold_id, user_id=user_id),
            "release_failed_group_booking",
        )
        raise
    log.info("group_booked", event_id=str(event.id), seats=request.quantity)
    return view
