"""The history's inputs (a plan, venues, what exists already) and its output rows."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True, eq=False)
class VenuePlan:
    """A venue the history sells seats of: its seats in ``idx`` order (the venue's order)."""

    id: bytes  # 16 bytes
    seat_ids: np.ndarray  # (n, 16) uint8
    rows: np.ndarray  # a row number per seat, distinct across sections
    distance: np.ndarray  # distance to the stage per seat
    sections: np.ndarray  # per seat: its section, an index into section_names
    section_names: tuple[str, ...]
    section_cents: np.ndarray  # base price per section, cents

    @property
    def capacity(self) -> int:
        return int(self.seat_ids.shape[0])

    def sale_order(self) -> np.ndarray:
        """Seat positions, rows nearest the stage first, each row from one end to the other
        (so a booking's seats mostly sit together)."""
        row_distance = np.bincount(self.rows, weights=self.distance) / np.maximum(
            np.bincount(self.rows), 1
        )
        return np.lexsort((np.arange(self.capacity), row_distance[self.rows]))


def venue_plan(
    venue_id: uuid.UUID, seats: Sequence[Mapping[str, Any]], sections: Sequence[Mapping[str, Any]]
) -> VenuePlan:
    """A venue's plan from its seat rows (``id, section, row_label, distance``, in idx
    order) and section rows (``name, base_price_cents``, in order)."""
    names = tuple(str(s["name"]) for s in sections)
    position = {name: i for i, name in enumerate(names)}
    row_keys = [(s["section"], s["row_label"]) for s in seats]
    row_number = {key: i for i, key in enumerate(dict.fromkeys(row_keys))}
    return VenuePlan(
        id=venue_id.bytes,
        seat_ids=np.frombuffer(b"".join(s["id"].bytes for s in seats), np.uint8).reshape(-1, 16),
        rows=np.array([row_number[key] for key in row_keys], dtype=np.int64),
        distance=np.array([s["distance"] for s in seats], dtype=np.float64),
        sections=np.array([position[s["section"]] for s in seats], dtype=np.int64),
        section_names=names,
        section_cents=np.array([s["base_price_cents"] or 0 for s in sections], dtype=np.int64),
    )


@dataclass(frozen=True, slots=True, eq=False)
class KnownEvent:
    """An event on sale that exists already: the history sells some of it before ``now``."""

    id: bytes  # 16 bytes
    venue: VenuePlan
    category: str
    starts_at: int  # epoch seconds
    prices: np.ndarray  # cents per section of the venue, in the venue's section order


@dataclass(frozen=True, slots=True)
class KnownCustomer:
    """A user who exists already and books in the history too (with a stable taste)."""

    id: bytes  # 16 bytes
    categories: tuple[str, str]  # favourite, then second


@dataclass(frozen=True, slots=True)
class Plan:
    """What to generate. Times are epoch seconds."""

    now: int
    bookings: int  # exact total, before ``now``
    customers: int  # new users
    past_events: int  # new events that started before ``now``
    # New events on sale, starting in the next ``AHEAD`` days: by default as many as the
    # past events' pace gives, less the known ones.
    upcoming_events: int | None = None
    days: int = 730  # how far back the history goes
    seed: int = 2015
    hit_share: float = 0.04
    cancel_rate: float = 0.06
    conversion: float = 0.68  # bookings / holds
    venues: tuple[VenuePlan, ...] = field(default=())  # where new events take place


Table = dict[str, np.ndarray]


@dataclass(frozen=True, slots=True, eq=False)
class History:
    """The rows to write, one dict of equal-length columns per table, named as the table's
    columns: ids as (n, 16) uint8, times as ``datetime64[s]`` (NaT for NULL), text as
    bytes (``S``) arrays, NULLs of other types as masked entries. ``events`` has an object
    column (``keywords``, lists of str). ``on_sale`` is the opening of sales of each known
    event (``id``, ``created_at``)."""

    users: Table
    events: Table
    event_prices: Table
    bookings: Table
    tickets: Table
    hold_log: Table
    payments: Table
    on_sale: Table

    def tables(self) -> dict[str, Table]:
        """The rows per table, in an order that keeps foreign keys satisfied."""
        return {
            "users": self.users,
            "events": self.events,
            "event_prices": self.event_prices,
            "bookings": self.bookings,
            "tickets": self.tickets,
            "hold_log": self.hold_log,
            "payments": self.payments,
        }


def uuids(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` random (version 4) UUIDs as (n, 16) uint8 rows."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    return raw
