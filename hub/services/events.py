"""Events: create, update, read and list them, and their seat maps.

Seat status is read in one place, ``seat_states``: one status byte per seat in the venue's
seat order (0 free, 1 held, 2 sold) plus a sequence number. Availability counts and seat
maps both derive from those bytes, so they always agree.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from engines.money import cents_to_decimal
from engines.pricing import FACTOR_NAMES
from engines.seats import count_seats
from hub import jsonenc
from hub.context import Hub
from hub.db import events as events_db
from hub.db import venues as venues_db
from hub.errors import Conflict, NotFound, ValidationError
from hub.records import Event
from hub.services import live_seats, venues

log = structlog.get_logger(__name__)

_STATUS_JSON = (b',"status":"free"}', b',"status":"held"}', b',"status":"sold"}')
DEFAULT_MAX_TICKETS = 10

Filters = events_db.Filters


@dataclass(frozen=True, slots=True)
class NewEvent:
    name: str
    description: str
    category: str
    keywords: Sequence[str]
    venue_id: uuid.UUID
    starts_at: dt.datetime
    section_prices: Mapping[str, int]
    max_tickets_per_user: int | None = None


async def seat_states(hub: Hub, event: Event) -> tuple[int, bytes]:
    """The live status of every seat of the event.

    Args:
        event: the event (its id and its venue's capacity are used).

    Returns:
        ``(seq, states)``: a sequence number that grows with every change, and one byte per
        seat in idx order: 0 free, 1 held, 2 sold.
    """
    # The live inventory in Redis, loaded from PostgreSQL's sales on first use.
    return await live_seats.seat_states(hub, event.id, event.capacity)


async def create_event(
    hub: Hub, new: NewEvent, *, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Create an event with a price for every section of its venue.

    Args:
        new: the event; ``section_prices`` (cents) may leave out sections that have a
            base price at the venue.
        now: the current time (for the "starts in the future" check).

    Returns:
        The event view.

    Raises:
        NotFound: no such venue (422 naming ``venue_id``, since it is part of the body).
        ValidationError: a start in the past, an unknown section, or a section left without
            a price.
    """
    now = now or dt.datetime.now(dt.UTC)
    if new.starts_at <= now:
        raise ValidationError.field("starts_at", "must be in the future")
    async with hub.db.transaction() as con:
        if await venues_db.by_id(con, new.venue_id) is None:
            raise ValidationError.field("venue_id", f"no such venue: {new.venue_id}")
        sections = await venues_db.sections_of(con, [new.venue_id])
        prices = _complete_prices(sections, new.section_prices)
        event_id = await events_db.insert(
            con,
            venue_id=new.venue_id,
            name=new.name,
            description=new.description,
            category=new.category,
            keywords=new.keywords,
            starts_at=new.starts_at,
            max_tickets_per_user=new.max_tickets_per_user or DEFAULT_MAX_TICKETS,
            prices=prices,
        )
    log.info("event_created", event_id=str(event_id), venue_id=str(new.venue_id))
    return await get_event(hub, event_id)


def _complete_prices(sections: Sequence[Any], given: Mapping[str, int]) -> dict[str, int]:
    names = [s["name"] for s in sections]
    _check_sections(names, given)
    prices: dict[str, int] = {}
    missing: list[str] = []
    for section in sections:
        name = section["name"]
        if name in given:
            prices[name] = given[name]
        elif section["base_price_cents"] is not None:
            prices[name] = section["base_price_cents"]
        else:
            missing.append(name)
    if missing:
        raise ValidationError.field(
            "section_prices", f"no price for section(s) {', '.join(missing)} (no base price)"
        )
    return prices


def _check_sections(names: Sequence[str], given: Mapping[str, int]) -> None:
    unknown = [name for name in given if name not in names]
    if unknown:
        raise ValidationError(
            f"section_prices: unknown section(s) {', '.join(unknown)}",
            [
                {"field": f"section_prices.{name}", "message": "no such section at the venue"}
                for name in unknown
            ],
        )


async def update_event(
    hub: Hub, event_id: uuid.UUID, changes: Mapping[str, Any], section_prices: Mapping[str, int]
) -> dict[str, Any]:
    """Change an event's details and/or section prices (base and current).

    Args:
        changes: column values to set (name, description, category, keywords, starts_at,
            max_tickets_per_user).
        section_prices: new prices in cents for some sections.

    Raises:
        NotFound: no such event.
        Conflict: the event is cancelled.
        ValidationError: an unknown section.
    """
    async with hub.db.transaction() as con:
        row = await events_db.by_id(con, event_id, for_update=True)
        if row is None:
            raise NotFound(f"No such event: {event_id}")
        if row["status"] == "cancelled":
            raise Conflict("A cancelled event cannot be changed")
        if section_prices:
            sections = await venues_db.sections_of(con, [row["venue_id"]])
            _check_sections([s["name"] for s in sections], section_prices)
            await events_db.set_prices(con, event_id, section_prices)
        await events_db.update(con, event_id, changes)
    await changed(hub, event_id)
    if section_prices:
        await _announce_set_prices(hub, event_id, section_prices)
    log.info(
        "event_updated",
        event_id=str(event_id),
        fields=sorted(changes),
        sections=sorted(section_prices),
    )
    return await get_event(hub, event_id)


async def _announce_set_prices(
    hub: Hub, event_id: uuid.UUID, section_prices: Mapping[str, int]
) -> None:
    """Prices an admin set reach the live pages as a ``price`` message, as a pricing tick's
    do. The set price is the section's new base, so nothing moved it: every factor is 0."""
    event = await load_event(hub, event_id, fresh=True)
    zero = dict.fromkeys(FACTOR_NAMES, 0.0)
    await hub.inventory.publish(
        event_id,
        {
            "t": "price",
            "prices": {name: cents / 100 for name, cents in event.current_cents.items()},
            "factors": zero,
            "section_factors": {name: dict(zero) for name in section_prices},
        },
    )


async def load_event(hub: Hub, event_id: uuid.UUID, *, fresh: bool = False) -> Event:
    """The stored event, at most ``EVENT_CACHE_SECONDS`` old unless ``fresh`` (the process
    keeps events that long: see ``hub.context``).

    Raises:
        NotFound: no such event.
    """
    return await hub.events.get(event_id, lambda: _read_event(hub, event_id), fresh=fresh)


def forget_event(hub: Hub, event_id: uuid.UUID) -> None:
    """Drop this process's cached copy (after an edit or a cancellation)."""
    hub.events.forget(event_id)


async def changed(hub: Hub, event_id: uuid.UUID) -> None:
    """A change to the event has committed: every process's copy is stale from now on.

    The version bump is what makes that true at once everywhere: holds carry the version
    of the copy they were priced and checked with and the hold script refuses a stale one,
    and event and seat-map reads compare it with the version read beside the seat state.
    """
    await hub.inventory.bump_version(event_id)
    forget_event(hub, event_id)


async def changed_and_announced(
    hub: Hub, items: Sequence[tuple[uuid.UUID, dict[str, object]]]
) -> None:
    """`changed` for many events at once, each with a message for its channel: the
    versions are bumped (each before its event's message is published) in one pipelined
    round trip per chunk of events, so every process's copy of each is stale when this
    returns, as after `changed`; then this process's copies are dropped."""
    await hub.inventory.bump_versions_and_publish(items)
    for event_id, _ in items:
        forget_event(hub, event_id)


async def current_event(hub: Hub, event_id: uuid.UUID) -> tuple[Event, int, bytes]:
    """The event as it is now, with its live ``(seq, states)``: the cached copy unless the
    version read atomically with the seat state says it changed since.

    Raises:
        NotFound: no such event.
    """
    event = await load_event(hub, event_id)
    seq, states, version = await live_seats.versioned_states(hub, event.id, event.capacity)
    if version != event.version:
        event = await load_event(hub, event_id, fresh=True)
    return event, seq, states


async def _read_event(hub: Hub, event_id: uuid.UUID) -> Event:
    # The version first: a change committing meanwhile bumps it after, so this copy can
    # only ever be marked stale too early, never current too late.
    version = await hub.inventory.version(event_id)
    async with hub.db.connection() as con:
        row = await events_db.by_id(con, event_id)
        if row is None:
            raise NotFound(f"No such event: {event_id}")
        prices = await events_db.prices_of(con, [event_id])
    return _event(row, prices, version)


async def get_event(hub: Hub, event_id: uuid.UUID) -> dict[str, Any]:
    """The event view with live availability.

    Raises:
        NotFound: no such event.
    """
    event, _, states = await current_event(hub, event_id)
    return event_view(event, count_seats(states))


async def list_events(
    hub: Hub, filters: Filters, *, available_only: bool, page: int, size: int
) -> dict[str, Any]:
    """Events matching the filters, upcoming first: ``{items, page, size, total}``."""
    offset = (page - 1) * size
    async with hub.db.connection() as con:
        # Availability is live state, not a column: filter on it after the query.
        limit = None if available_only else size
        rows, total = await events_db.search(
            con, filters, limit=limit, offset=0 if available_only else offset
        )
        prices = await events_db.prices_of(con, [row["id"] for row in rows])
    by_event: dict[uuid.UUID, list[Any]] = {}
    for price in prices:
        by_event.setdefault(price["event_id"], []).append(price)
    events = [_event(row, by_event.get(row["id"], [])) for row in rows]
    counts = await asyncio.gather(*(_availability(hub, event) for event in events))
    pairs = list(zip(events, counts, strict=True))
    if available_only:
        pairs = [(e, c) for e, c in pairs if c["available"] > 0]
        total = len(pairs)
        pairs = pairs[offset : offset + size]
    items = [event_view(event, count) for event, count in pairs]
    return {"items": items, "page": page, "size": size, "total": total}


async def _availability(hub: Hub, event: Event) -> dict[str, int]:
    _, states = await seat_states(hub, event)
    return count_seats(states)


async def seat_map(hub: Hub, event_id: uuid.UUID) -> bytes:
    """``{seq, seats:[...]}`` as JSON bytes, seats in idx order with current prices.

    Built from precomputed per-seat JSON fragments: a 20,000-seat map costs a few
    milliseconds, not a round of dict building and encoding.

    Raises:
        NotFound: no such event.
    """
    event, seq, states = await current_event(hub, event_id)
    seats = await venues.venue_seats(hub, event.venue_id)
    prices = [
        jsonenc.dumps(cents_to_decimal(event.current_cents.get(name, 0))) for name in seats.sections
    ]
    status = _STATUS_JSON
    body = b",".join(
        [
            fragment + prices[section] + status[state]
            for fragment, section, state in zip(
                seats.fragments, seats.section_index, states, strict=True
            )
        ]
    )
    return b'{"seq":%d,"seats":[%s]}' % (seq, body)


def event_view(event: Event, counts: Mapping[str, int]) -> dict[str, Any]:
    return {
        "id": event.id,
        "name": event.name,
        "description": event.description,
        "category": event.category,
        "keywords": list(event.keywords),
        "venue_id": event.venue_id,
        "starts_at": jsonenc.isoformat(event.starts_at),
        "status": event.status,
        "max_tickets_per_user": event.max_tickets_per_user,
        "base_prices": {k: cents_to_decimal(v) for k, v in event.base_cents.items()},
        "prices": {k: cents_to_decimal(v) for k, v in event.current_cents.items()},
        "availability": dict(counts),
    }


def _event(row: Any, prices: Sequence[Any], version: int = 0) -> Event:
    return Event(
        id=row["id"],
        venue_id=row["venue_id"],
        name=row["name"],
        description=row["description"],
        category=row["category"],
        keywords=tuple(row["keywords"]),
        starts_at=row["starts_at"],
        status=row["status"],
        max_tickets_per_user=row["max_tickets_per_user"],
        capacity=row["capacity"],
        base_cents={p["section"]: p["base_price_cents"] for p in prices},
        current_cents={p["section"]: p["current_price_cents"] for p in prices},
        version=version,
    )
