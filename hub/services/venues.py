"""Venues: create one from section specs or an explicit seat list, read them, and the
in-process cache of each venue's static seat rows (they never change once written).

The seat order (``idx``) is fixed at creation: for generated venues it is the layout order
of ``engines.venue_layout`` (section, row, number); for an explicit list it is the order
given, grouped by section in order of first appearance. Everything that addresses a seat
by position (seat maps, live state bytes) relies on that order.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog

from engines.money import cents_to_decimal
from engines.seats import SeatSpec
from engines.venue_layout import SectionSpec, layout_sections, row_label, stage_distance
from hub.context import Hub
from hub.db import venues as venues_db
from hub.errors import NotFound, ValidationError
from hub.records import Seat, VenueSeats

log = structlog.get_logger(__name__)

MAX_SECTIONS = 50
MAX_ROWS = 200
MAX_SEATS_PER_ROW = 500
MAX_SEATS = 50_000


@dataclass(frozen=True, slots=True)
class NewSection:
    """A generated section: ``rows`` x ``seats_per_row`` seats."""

    name: str
    rows: int
    seats_per_row: int
    base_cents: int | None = None
    accessible: Sequence[tuple[str, int]] = ()


@dataclass(frozen=True, slots=True)
class NewSeat:
    """One seat of an explicit seat list."""

    section: str
    row: str
    number: int
    x: float
    y: float
    accessible: bool = False


async def create_venue(
    hub: Hub,
    name: str,
    city: str,
    *,
    sections: Sequence[NewSection] | None = None,
    seats: Sequence[NewSeat] | None = None,
) -> dict[str, Any]:
    """Create a venue from generated sections or from an explicit seat list.

    Args:
        name, city: what the venue is called and where it is.
        sections: generated sections, nearest the stage first (exclusive with ``seats``).
        seats: an explicit seat list; its sections get no base price.

    Returns:
        The venue view (``id, name, city, capacity, sections``).

    Raises:
        ValidationError: neither or both of sections/seats, duplicate sections or seats,
            an accessible seat that does not exist, or a limit exceeded.
    """
    if (sections is None) == (seats is None):
        raise ValidationError(
            "Give exactly one of sections and seats",
            [
                {"field": "sections", "message": "give exactly one of sections and seats"},
                {"field": "seats", "message": "give exactly one of sections and seats"},
            ],
        )
    if sections is not None:
        section_rows, seat_rows = _plan_sections(sections)
    else:
        assert seats is not None
        section_rows, seat_rows = _plan_seats(seats)
    async with hub.db.transaction() as con:
        venue_id = await venues_db.insert(con, name, city, section_rows, seat_rows)
    log.info("venue_created", venue_id=str(venue_id), seats=len(seat_rows))
    return await get_venue(hub, venue_id)


def _plan_sections(
    sections: Sequence[NewSection],
) -> tuple[list[tuple[str, int | None]], list[SeatSpec]]:
    _check_count("sections", len(sections), 1, MAX_SECTIONS)
    seen: set[str] = set()
    total = 0
    specs: list[SectionSpec] = []
    for i, section in enumerate(sections):
        where = f"sections.{i}"
        if section.name in seen:
            raise ValidationError.field(f"{where}.name", f"duplicate section {section.name!r}")
        seen.add(section.name)
        if not 1 <= section.rows <= MAX_ROWS:
            raise ValidationError.field(f"{where}.rows", f"must be 1..{MAX_ROWS}")
        if not 1 <= section.seats_per_row <= MAX_SEATS_PER_ROW:
            raise ValidationError.field(f"{where}.seats_per_row", f"must be 1..{MAX_SEATS_PER_ROW}")
        labels = {row_label(r) for r in range(section.rows)}
        for j, (label, number) in enumerate(section.accessible):
            if label not in labels or not 1 <= number <= section.seats_per_row:
                raise ValidationError.field(
                    f"{where}.accessible_seats.{j}",
                    f"seat {label}{number} is not in the section (rows A.."
                    f"{row_label(section.rows - 1)}, seats 1..{section.seats_per_row})",
                )
        total += section.rows * section.seats_per_row
        specs.append(
            SectionSpec(
                section.name, section.rows, section.seats_per_row, frozenset(section.accessible)
            )
        )
    if total > MAX_SEATS:
        raise ValidationError.field("sections", f"{total} seats; a venue holds at most {MAX_SEATS}")
    return [(s.name, s.base_cents) for s in sections], layout_sections(specs)


def _plan_seats(
    seats: Sequence[NewSeat],
) -> tuple[list[tuple[str, int | None]], list[SeatSpec]]:
    _check_count("seats", len(seats), 1, MAX_SEATS)
    by_section: dict[str, list[SeatSpec]] = {}
    taken: set[tuple[str, str, int]] = set()
    per_row: dict[tuple[str, str], int] = {}
    rows_of: dict[str, set[str]] = {}
    for i, seat in enumerate(seats):
        key = (seat.section, seat.row, seat.number)
        if key in taken:
            raise ValidationError.field(
                f"seats.{i}", f"duplicate seat {seat.section} {seat.row}{seat.number}"
            )
        taken.add(key)
        if not (math.isfinite(seat.x) and math.isfinite(seat.y)):
            raise ValidationError.field(f"seats.{i}", "x and y must be finite")
        if seat.section not in by_section and len(by_section) == MAX_SECTIONS:
            raise ValidationError.field(
                f"seats.{i}.section", f"a venue has at most {MAX_SECTIONS} sections"
            )
        rows = rows_of.setdefault(seat.section, set())
        rows.add(seat.row)
        if len(rows) > MAX_ROWS:
            raise ValidationError.field(f"seats.{i}.row", f"a section has at most {MAX_ROWS} rows")
        count = per_row[(seat.section, seat.row)] = per_row.get((seat.section, seat.row), 0) + 1
        if count > MAX_SEATS_PER_ROW:
            raise ValidationError.field(
                f"seats.{i}.number", f"a row has at most {MAX_SEATS_PER_ROW} seats"
            )
        distance = round(stage_distance(seat.x, seat.y), 2)
        by_section.setdefault(seat.section, []).append(
            SeatSpec(seat.section, seat.row, seat.number, seat.x, seat.y, seat.accessible, distance)
        )
    ordered = [row for rows in by_section.values() for row in rows]
    return [(name, None) for name in by_section], ordered


def _check_count(name: str, count: int, low: int, high: int) -> None:
    if not low <= count <= high:
        raise ValidationError.field(name, f"give {low} to {high} items, not {count}")


async def get_venue(hub: Hub, venue_id: uuid.UUID) -> dict[str, Any]:
    """The venue view.

    Raises:
        NotFound: no such venue.
    """
    async with hub.db.connection() as con:
        row = await venues_db.by_id(con, venue_id)
        if row is None:
            raise NotFound(f"No such venue: {venue_id}")
        sections = await venues_db.sections_of(con, [venue_id])
    return _venue_view(row, sections)


async def list_venues(hub: Hub, page: int, size: int) -> dict[str, Any]:
    """One page of venues, oldest first: ``{items, page, size, total}``."""
    async with hub.db.connection() as con:
        rows, total = await venues_db.page(con, size, (page - 1) * size)
        sections = await venues_db.sections_of(con, [row["id"] for row in rows])
    by_venue: dict[uuid.UUID, list[Any]] = {}
    for section in sections:
        by_venue.setdefault(section["venue_id"], []).append(section)
    items = [_venue_view(row, by_venue.get(row["id"], [])) for row in rows]
    return {"items": items, "page": page, "size": size, "total": total}


def _venue_view(row: Any, sections: Iterable[Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "city": row["city"],
        "capacity": row["capacity"],
        "sections": [
            {
                "name": s["name"],
                "rows": s["rows"],
                "seats": s["seats"],
                "base_price": None
                if s["base_price_cents"] is None
                else cents_to_decimal(s["base_price_cents"]),
                "accessible": s["accessible"],
            }
            for s in sections
        ],
    }


async def venue_seats(hub: Hub, venue_id: uuid.UUID) -> VenueSeats:
    """The venue's seats in idx order, from the in-process cache when possible.

    Raises:
        NotFound: the venue has no seats (it does not exist).
    """
    return await hub.venue_seats.get(venue_id, lambda: _read_venue_seats(hub, venue_id))


async def _read_venue_seats(hub: Hub, venue_id: uuid.UUID) -> VenueSeats:
    async with hub.db.connection() as con:
        rows = await venues_db.seats_of(con, venue_id)
        sections = await venues_db.sections_of(con, [venue_id])
    if not rows:
        raise NotFound(f"No such venue: {venue_id}")
    return _venue_seats(venue_id, [s["name"] for s in sections], rows)


def _venue_seats(venue_id: uuid.UUID, sections: list[str], rows: Sequence[Any]) -> VenueSeats:
    position = {name: i for i, name in enumerate(sections)}
    seats = tuple(
        Seat(
            section=r["section"],
            row=r["row_label"],
            number=r["number"],
            x=r["x"],
            y=r["y"],
            accessible=r["accessible"],
            distance=r["distance"],
            id=r["id"],
            idx=r["idx"],
        )
        for r in rows
    )
    encode = msgspec.json.encode
    fragments = tuple(
        b'{"id":"%s","section":%s,"row":%s,"number":%d,"x":%s,"y":%s,"accessible":%s,"price":'
        % (
            str(s.id).encode(),
            encode(s.section),
            encode(s.row),
            s.number,
            encode(s.x),
            encode(s.y),
            b"true" if s.accessible else b"false",
        )
        for s in seats
    )
    return VenueSeats(
        venue_id=venue_id,
        sections=tuple(sections),
        seats=seats,
        section_index=bytes(position[s.section] for s in seats),
        fragments=fragments,
        index_of={s.id: s.idx for s in seats},
    )
