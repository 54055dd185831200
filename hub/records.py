"""The records the hub's per-process caches hold: events, venue seats and venue layouts.

They live here, below ``hub.context``, because the hub's caches are typed by them
(``SharedLoads[uuid.UUID, Event]`` ...) while the services that read and build them take
the hub. This module therefore imports nothing that imports the hub. The services
re-export them where callers know them (``events.Event``, ``live_seats.Layout``,
``venues.Seat``, ``venues.VenueSeats``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from engines.seating import SeatTable
from engines.seats import SeatSpec


@dataclass(frozen=True, slots=True)
class Event:
    """An event as stored, prices in cents keyed by section in venue order."""

    id: uuid.UUID
    venue_id: uuid.UUID
    name: str
    description: str
    category: str
    keywords: tuple[str, ...]
    starts_at: dt.datetime
    status: str
    max_tickets_per_user: int
    capacity: int
    base_cents: Mapping[str, int]
    current_cents: Mapping[str, int]
    # The event's version in Redis when this copy was read (``Inventory.version``): a hold
    # made with a copy whose version is no longer current is refused as stale.
    version: int = 0


@dataclass(frozen=True, slots=True)
class Seat(SeatSpec):
    """A stored seat: the venue's seat record with its row id and its position ``idx``.

    It extends ``SeatSpec`` rather than wrapping it so that ``seat.section`` stays one slot
    read on the hold path and a stored seat goes wherever a ``SeatSpec`` is expected
    (``SeatTable.from_seats``). Build it with keywords: the inherited fields come first.
    """

    id: uuid.UUID
    idx: int


@dataclass(frozen=True, slots=True)
class VenueSeats:
    """A venue's seats in idx order, with what seat maps need precomputed.

    ``section_index`` holds, per seat, the position of its section in ``sections``;
    ``fragments`` holds, per seat, its JSON object up to and including ``"price":``.
    """

    venue_id: uuid.UUID
    sections: tuple[str, ...]
    seats: tuple[Seat, ...]
    section_index: bytes
    fragments: tuple[bytes, ...]
    index_of: dict[uuid.UUID, int] = field(repr=False)

    def __len__(self) -> int:
        return len(self.seats)


@dataclass(frozen=True, eq=False)
class Layout:
    """A venue's seats (static once written): rows, the seating table and id <-> idx maps."""

    venue_id: uuid.UUID
    seats: tuple[Seat, ...]  # by idx
    table: SeatTable
    idx_of: dict[uuid.UUID, int]

    def __len__(self) -> int:
        return len(self.seats)
