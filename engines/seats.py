"""What a seat is, defined once for every layer: its live status code and its static record.

``SeatCode`` is the one byte per seat that the live seat state is made of: the Redis
inventory stores it, the WebSocket contract sends it (snapshots and ``changes``), the
engines filter on it and the load-test clients mirror it. ``SeatSpec`` is a seat as the
venue describes it (where it is and whether it is accessible); its field order is also the
order of a venue's seat columns after ``idx``. ``count_seats`` turns the state bytes into
the counts buyers are shown.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class SeatCode(enum.IntEnum):
    """A seat's live status; the values are part of the WebSocket contract."""

    FREE = 0
    HELD = 1
    SOLD = 2


@dataclass(frozen=True, slots=True)
class SeatSpec:
    """One seat of a venue; ``distance`` is its distance to the stage point in metres."""

    section: str
    row: str
    number: int
    x: float
    y: float
    accessible: bool
    distance: float


def count_seats(states: bytes | bytearray) -> dict[str, int]:
    """How many seats there are in each status, from one byte per seat.

    This is the one shape of the counts buyers are shown: an event's ``availability`` over
    HTTP, and the ``counts`` of the WebSocket snapshot and ``counts`` messages.

    Args:
        states: the live state, one ``SeatCode`` byte per seat.

    Returns:
        ``{"total", "available", "held", "sold"}``; ``available`` is every seat neither
        held nor sold, so the last three always add up to ``total``.
    """
    held = states.count(SeatCode.HELD)
    sold = states.count(SeatCode.SOLD)
    total = len(states)
    return {"total": total, "available": total - held - sold, "held": held, "sold": sold}
