from __future__ import annotations

from itertools import pairwise

import pytest

from engines.seats import SeatSpec
from engines.venue_layout import (
    AISLE_GAP_M,
    SEAT_PITCH_M,
    SectionSpec,
    layout_sections,
    row_label,
    stage_distance,
)


@pytest.mark.parametrize(
    ("index", "label"),
    [(0, "A"), (1, "B"), (25, "Z"), (26, "AA"), (27, "AB"), (51, "AZ"), (52, "BA"), (701, "ZZ")],
)
def test_row_label(index: int, label: str) -> None:
    assert row_label(index) == label


def test_row_label_refuses_negative() -> None:
    with pytest.raises(ValueError):
        row_label(-1)


def test_row_labels_are_unique_for_every_allowed_row() -> None:
    labels = [row_label(i) for i in range(200)]
    assert len(set(labels)) == 200


@pytest.mark.parametrize(("x", "y", "expected"), [(0, 0, 0), (3, 4, 5), (-3, 4, 5), (0, 7.5, 7.5)])
def test_stage_distance(x: float, y: float, expected: float) -> None:
    assert stage_distance(x, y) == pytest.approx(expected)


def _by_key(seats: list[SeatSpec]) -> dict[tuple[str, str, int], SeatSpec]:
    return {(s.section, s.row, s.number): s for s in seats}


def test_order_is_section_then_row_then_number() -> None:
    seats = layout_sections([SectionSpec("Floor", 2, 3), SectionSpec("Balcony", 1, 2)])
    assert [(s.section, s.row, s.number) for s in seats] == [
        ("Floor", "A", 1),
        ("Floor", "A", 2),
        ("Floor", "A", 3),
        ("Floor", "B", 1),
        ("Floor", "B", 2),
        ("Floor", "B", 3),
        ("Balcony", "A", 1),
        ("Balcony", "A", 2),
    ]


def test_seat_count_is_rows_times_seats() -> None:
    specs = [SectionSpec("A", 30, 40), SectionSpec("B", 12, 500), SectionSpec("C", 200, 1)]
    assert len(layout_sections(specs)) == 30 * 40 + 12 * 500 + 200 * 1


def test_rows_are_centred_and_numbered_left_to_right() -> None:
    seats = layout_sections([SectionSpec("S", 1, 5)])
    xs = [s.x for s in seats]
    assert xs == sorted(xs)
    assert xs[2] == 0.0
    assert xs[0] == -xs[4]


def test_aisle_is_a_wider_gap_and_numbers_continue_across_it() -> None:
    seats = layout_sections([SectionSpec("S", 1, 10)], aisle_every=4)
    gaps = [round(b.x - a.x, 2) for a, b in pairwise(seats)]
    assert [s.number for s in seats] == list(range(1, 11))
    # seats 4|5 and 8|9 sit either side of an aisle
    expected = [AISLE_GAP_M if i in (3, 7) else SEAT_PITCH_M for i in range(9)]
    assert gaps == pytest.approx(expected, abs=0.011)


def test_no_aisle_when_row_is_shorter_than_aisle_every() -> None:
    seats = layout_sections([SectionSpec("S", 1, 14)], aisle_every=14)
    gaps = [b.x - a.x for a, b in pairwise(seats)]
    assert max(gaps) < AISLE_GAP_M - 0.1


def test_sections_and_rows_recede_from_the_stage() -> None:
    seats = layout_sections([SectionSpec("Near", 3, 7), SectionSpec("Far", 3, 7)])
    seat = _by_key(seats)
    centre_ys = [seat[(sec, row, 4)].y for sec in ("Near", "Far") for row in "ABC"]
    assert centre_ys == sorted(centre_ys)
    assert len(set(centre_ys)) == 6
    # the walkway between sections is wider than the step between rows
    row_step = seat[("Near", "B", 4)].y - seat[("Near", "A", 4)].y
    section_step = seat[("Far", "A", 4)].y - seat[("Near", "C", 4)].y
    assert section_step > row_step
    assert seat[("Near", "A", 4)].distance < seat[("Far", "A", 4)].distance


def test_rows_bow_gently_towards_the_stage() -> None:
    seats = layout_sections([SectionSpec("S", 1, 41)])
    centre, edge = seats[20], seats[0]
    assert edge.y < centre.y
    assert centre.y - edge.y < 2.0
    assert all(s.y > 0 for s in seats)


def test_distance_matches_rounded_coordinates() -> None:
    for s in layout_sections([SectionSpec("S", 5, 33)]):
        assert s.distance == round(stage_distance(s.x, s.y), 2)
        assert s.x == round(s.x, 2)
        assert s.y == round(s.y, 2)


def test_accessible_seats_are_flagged() -> None:
    spec = SectionSpec("S", 3, 4, accessible=frozenset({("A", 1), ("C", 4)}))
    flagged = {(s.row, s.number) for s in layout_sections([spec]) if s.accessible}
    assert flagged == {("A", 1), ("C", 4)}


def test_layout_is_deterministic() -> None:
    specs = [SectionSpec("Floor", 20, 30), SectionSpec("Tier", 10, 60)]
    assert layout_sections(specs) == layout_sections(specs)


@pytest.mark.parametrize(
    ("specs", "aisle_every", "message"),
    [
        ([SectionSpec("A", 1, 1), SectionSpec("A", 2, 2)], 14, "duplicate"),
        ([SectionSpec("", 1, 1)], 14, "empty"),
        ([SectionSpec("A", 0, 10)], 14, "rows"),
        ([SectionSpec("A", 201, 10)], 14, "rows"),
        ([SectionSpec("A", 10, 0)], 14, "seats_per_row"),
        ([SectionSpec("A", 10, 501)], 14, "seats_per_row"),
        ([SectionSpec("A", 2, 5, frozenset({("C", 1)}))], 14, "C1 does not exist"),
        ([SectionSpec("A", 2, 5, frozenset({("A", 6)}))], 14, "A6 does not exist"),
        ([SectionSpec("A", 2, 5, frozenset({("B", 0)}))], 14, "B0 does not exist"),
        ([SectionSpec("A", 2, 5)], 0, "aisle_every"),
    ],
)
def test_bad_specs_are_refused(specs: list[SectionSpec], aisle_every: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        layout_sections(specs, aisle_every=aisle_every)


def test_empty_venue_has_no_seats() -> None:
    assert layout_sections([]) == []
