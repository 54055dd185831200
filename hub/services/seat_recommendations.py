"""Seat recommendations: the seat engine's best blocks for one buyer, from the live seat state.

Real time, never cached: each call reads the event's seat state from Redis (as best-available
holds do, ``placing``), prices every seat at the event's current section prices, runs the
engine's shared search (``seat_candidates``) and adds the user's similarity on top
(``rank_candidates``). The user's taste comes from their past confirmed bookings at any venue
(``taste_for``), read beside the seat state, their seats' rows ranked on their venues'
layouts. The live ``reco`` messages reuse ``taste_for``,
``seat_prices`` and ``render``, so both faces show the same items.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
import structlog

from engines.money import cents_to_decimal
from engines.seating import (
    SeatPreferences,
    SeatRecommendation,
    Taste,
    rank_candidates,
    seat_candidates,
)
from engines.seats import SeatCode
from hub.auth import Principal
from hub.context import Hub
from hub.db import seat_recommendations as seat_recommendations_db
from hub.errors import Forbidden, ValidationError
from hub.records import Event, Layout
from hub.services import events, live_seats

log = structlog.get_logger(__name__)

#: As many seats as one hold may take.
MAX_QUANTITY = 100
#: Recommendations per answer.
TOP = 5
#: The most recent past tickets a taste is made of, and the most venues they may span.
TASTE_TICKETS = 200
TASTE_VENUES = 8
_SCORE_PLACES = 4


async def recommend_seats(
    hub: Hub,
    caller: Principal,
    event_id: uuid.UUID,
    quantity: int,
    user_id: uuid.UUID | None = None,
    max_price: int | None = None,
    preferred_sections: Sequence[str] = (),
    accessibility_required: bool = False,
) -> dict[str, Any]:
    """The best seat blocks of an event for a user, best first.

    Args:
        caller: who asks; ``user_id`` defaults to them.
        quantity: seats wanted together, 1 to ``MAX_QUANTITY``.
        user_id: whose taste to follow: the caller's own, or anyone's for an admin.
        max_price: the most a seat may cost, in cents.
        preferred_sections: section names to favour (never a filter).
        accessibility_required: at least one accessible seat, with companions beside it.

    Returns:
        ``{"recommendations": [...]}`` (the items of ``render``); empty when nothing fits or
        the event is cancelled or has started.

    Raises:
        Forbidden: ``user_id`` names someone else and the caller is not an admin.
        NotFound: no such event.
        ValidationError: a quantity out of range, a negative budget, an unknown section.
    """
    user_id = user_id or caller.user_id
    if user_id != caller.user_id and not caller.is_admin:
        raise Forbidden("Only an admin may ask for another user's recommendations")
    if not 1 <= quantity <= MAX_QUANTITY:
        raise ValidationError.field("quantity", f"must be 1 to {MAX_QUANTITY}")
    if max_price is not None and max_price < 0:
        raise ValidationError.field("max_price", "must not be negative")
    (event, _, states), taste = await asyncio.gather(
        events.current_event(hub, event_id), taste_for(hub, user_id)
    )
    layout = await live_seats.layout_of(hub, event.venue_id)
    unknown = sorted(set(preferred_sections) - set(layout.table.section_names))
    if unknown:
        raise ValidationError.field("preferred_sections", f"no such sections: {', '.join(unknown)}")
    if event.status != "scheduled" or event.starts_at <= dt.datetime.now(dt.UTC):
        return {"recommendations": []}
    prefs = SeatPreferences(
        quantity, max_price, frozenset(preferred_sections), accessibility_required
    )
    prices = seat_prices(event, layout)
    free = np.frombuffer(states, dtype=np.uint8) == SeatCode.FREE
    names = layout.table.section_names
    candidates = seat_candidates(layout.table, free, prices, names, prefs)
    recs = rank_candidates(layout.table, candidates, names, prices, taste, top=TOP)
    log.debug("seats_recommended", event_id=str(event_id), quantity=quantity, found=len(recs))
    return {"recommendations": render(layout, recs, prices)}


async def taste_for(hub: Hub, user_id: uuid.UUID) -> Taste | None:
    """The user's taste from the seats of their confirmed bookings (any event, any venue);
    None when they have none.

    Each seat's section and row rank come from its venue's layout (``SeatTable.row_rank``),
    the one definition the engine scores candidates with; layouts are built once per process
    and shared with every other use. Only the ``TASTE_VENUES`` venues booked most recently
    count, so an old history cannot make one request build many layouts.
    """
    async with hub.db.connection() as con:
        tickets = await seat_recommendations_db.past_seats(con, user_id, TASTE_TICKETS)
    venues = list(dict.fromkeys(venue_id for venue_id, _, _ in tickets))[:TASTE_VENUES]
    layouts = dict(
        zip(
            venues,
            await asyncio.gather(*(live_seats.layout_of(hub, v) for v in venues)),
            strict=True,
        )
    )
    seats = []
    for venue_id, idx, price in tickets:
        layout = layouts.get(venue_id)
        if layout is not None:
            rank = float(layout.table.row_rank()[idx])
            seats.append((layout.seats[idx].section, rank, price))
    return Taste.from_history(seats)


def seat_prices(event: Event, layout: Layout) -> np.ndarray:
    """The current price of every seat of the event, in cents, in seat order (what a hold
    made now would quote)."""
    by_section = np.array(
        [event.current_cents.get(name, 0) for name in layout.table.section_names],
        dtype=np.int64,
    )
    return by_section[layout.table.section]


def render(
    layout: Layout, recs: Sequence[SeatRecommendation], prices_cents: np.ndarray
) -> list[dict[str, Any]]:
    """The JSON-ready items of DESIGN §4: ``seats[{id, section, row, number, price,
    accessible}], total_price, together, score, scores{similarity, value, location,
    group}``, seat prices from ``prices_cents`` (per seat, in seat order)."""
    items = []
    for rec in recs:
        seats = []
        for idx in rec.seats:
            seat = layout.seats[idx]
            seats.append(
                {
                    "id": seat.id,
                    "section": seat.section,
                    "row": seat.row,
                    "number": seat.number,
                    "price": cents_to_decimal(int(prices_cents[idx])),
                    "accessible": seat.accessible,
                }
            )
        items.append(
            {
                "seats": seats,
                "total_price": cents_to_decimal(rec.total_cents),
                "together": rec.together,
                "score": round(rec.score, _SCORE_PLACES),
                "scores": {
                    "similarity": round(rec.similarity, _SCORE_PLACES),
                    "value": round(rec.value, _SCORE_PLACES),
                    "location": round(rec.location, _SCORE_PLACES),
                    "group": round(rec.group, _SCORE_PLACES),
                },
            }
        )
    return items
