"""What a seat is, defined once for every layer: its live status code and its static record.

``SeatCode`` is the one byte per seat that the live seat state is made of: the Redis
inventory stores it, the WebSocket contract sends it (snapshots and ``changes``), the
engines filter on it and the load-test clients mirror it. ``SeatSpec`` is a seat as the
venue describes it (where it is and whether it is accessible); its field order is also the
order of a venue's seat columns after ``idx``.
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
