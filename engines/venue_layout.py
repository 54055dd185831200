"""Generate a venue's seats, with coordinates, from a few section specs.

The stage is the point (0, 0); the audience sits at y > 0. Sections are stacked away from
the stage in the order given (the first is nearest), separated by a walkway. Inside a
section, row 0 ("A") is nearest the stage; seats in a row are centred on x = 0 at a fixed
pitch, with a wider aisle gap after every `aisle_every` seats, and numbered 1..n left to
right, continuing across aisles. Rows bow gently towards the stage (a capped parabola in x),
the same curve for every row, so rows never cross and y grows monotonically with the row.

Invariants: the returned order (section, row, number) is the seat index used everywhere;
coordinates and distances are rounded to centimetres and the output is deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from engines.seats import SeatSpec

SEAT_PITCH_M = 0.5
ROW_DEPTH_M = 0.9
AISLE_GAP_M = 1.2
STAGE_FRONT_M = 3.0  # from the stage point to the first row of the first section
SECTION_GAP_M = 2.0  # walkway between the last row of a section and the next section
ARC_PER_M2 = 0.002  # how much a row bows towards the stage, per square metre of x
ARC_MAX_M = 1.5  # the bow never exceeds this, however wide the row

MAX_ROWS = 200
MAX_SEATS_PER_ROW = 500


@dataclass(frozen=True, slots=True)
class SectionSpec:
    """A rectangular block of seats: ``rows`` rows of ``seats_per_row`` seats."""

    name: str
    rows: int  # 1..200
    seats_per_row: int  # 1..500
    accessible: frozenset[tuple[str, int]] = frozenset()  # (row label, seat number) pairs


def row_label(index: int) -> str:
    """Return the spreadsheet-style label of a 0-based row index.

    Args:
        index: the row index, >= 0.

    Returns:
        ``0 -> "A"``, ``25 -> "Z"``, ``26 -> "AA"``, ``27 -> "AB"``, ``702 -> "AAA"``.

    Raises:
        ValueError: if ``index`` is negative.
    """
    if index < 0:
        raise ValueError(f"row index must be >= 0, got {index}")
    letters: list[str] = []
    n = index + 1  # bijective base 26: there is no zero digit
    while n:
        n, rem = divmod(n - 1, 26)
        letters.append(chr(ord("A") + rem))
    return "".join(reversed(letters))


def stage_distance(x: float, y: float) -> float:
    """Return the Euclidean distance from (x, y) to the stage point (0, 0), in metres."""
    return math.hypot(x, y)


def _seat_offsets(seats_per_row: int, aisle_every: int) -> list[float]:
    """x of each seat in a row, centred on 0, with an aisle after every `aisle_every`."""
    raw = [
        i * SEAT_PITCH_M + (i // aisle_every) * (AISLE_GAP_M - SEAT_PITCH_M)
        for i in range(seats_per_row)
    ]
    centre = (raw[0] + raw[-1]) / 2
    return [value - centre for value in raw]


def _bow(x: float) -> float:
    return min(ARC_MAX_M, ARC_PER_M2 * x * x)


def _round(value: float) -> float:
    return round(value, 2) + 0.0  # + 0.0 turns -0.0 into 0.0


def _validate(sections: Sequence[SectionSpec], aisle_every: int) -> None:
    if isinstance(aisle_every, bool) or not isinstance(aisle_every, int) or aisle_every < 1:
        raise ValueError(f"aisle_every must be an int >= 1, got {aisle_every!r}")
    seen: set[str] = set()
    for spec in sections:
        if not spec.name:
            raise ValueError("section name must not be empty")
        if spec.name in seen:
            raise ValueError(f"duplicate section name {spec.name!r}")
        seen.add(spec.name)
        for field, value, high in (
            ("rows", spec.rows, MAX_ROWS),
            ("seats_per_row", spec.seats_per_row, MAX_SEATS_PER_ROW),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
                raise ValueError(f"section {spec.name!r}: {field} must be 1..{high}, got {value!r}")
        labels = {row_label(i) for i in range(spec.rows)}
        for label, number in sorted(spec.accessible):
            if label not in labels or not 1 <= number <= spec.seats_per_row:
                raise ValueError(
                    f"section {spec.name!r}: accessible seat {label}{number} does not exist "
                    f"(rows A..{row_label(spec.rows - 1)}, seats 1..{spec.seats_per_row})"
                )


def layout_sections(sections: Sequence[SectionSpec], *, aisle_every: int = 14) -> list[SeatSpec]:
    """Lay out every seat of a venue.

    Args:
        sections: the sections, nearest to the stage first.
        aisle_every: put an aisle after every this many seats in a row (>= 1).

    Returns:
        All seats ordered by section (as given), then row (nearest first), then number.

    Raises:
        ValueError: on an empty or duplicate section name, rows or seats_per_row out of
            range, an accessible seat that does not exist in its section, or a bad
            ``aisle_every``.
    """
    _validate(sections, aisle_every)
    seats: list[SeatSpec] = []
    front = STAGE_FRONT_M
    for spec in sections:
        offsets = _seat_offsets(spec.seats_per_row, aisle_every)
        for row_index in range(spec.rows):
            label = row_label(row_index)
            row_y = front + row_index * ROW_DEPTH_M
            for number, offset in enumerate(offsets, start=1):
                x = _round(offset)
                y = _round(row_y - _bow(offset))
                seats.append(
                    SeatSpec(
                        section=spec.name,
                        row=label,
                        number=number,
                        x=x,
                        y=y,
                        accessible=(label, number) in spec.accessible,
                        distance=_round(stage_distance(x, y)),
                    )
                )
        front += (spec.rows - 1) * ROW_DEPTH_M + SECTION_GAP_M
    return seats
