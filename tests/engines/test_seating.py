from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engines.seating import (
    Candidate,
    SeatPreferences,
    SeatRecommendation,
    SeatTable,
    Taste,
    assign_group,
    choose_best_available,
    contiguous_runs,
    rank_best_available,
    rank_candidates,
    seat_candidates,
)
from engines.seats import SeatCode, SeatSpec
from engines.venue_layout import SectionSpec, layout_sections

FREE, HELD, SOLD = SeatCode.FREE, SeatCode.HELD, SeatCode.SOLD


def row_of(
    xs: list[float],
    *,
    section: str = "S",
    row: str = "A",
    y: float = 5.0,
    distances: list[float] | None = None,
    accessible: set[int] | None = None,
    first: int = 1,
) -> list[SeatSpec]:
    """One row of seats numbered from `first`, distance defaulting to hypot(x, y)."""
    dists = distances or [round(float(np.hypot(x, y)), 2) for x in xs]
    acc = accessible or set()
    return [
        SeatSpec(section, row, first + i, x, y, accessible=first + i in acc, distance=d)
        for i, (x, d) in enumerate(zip(xs, dists, strict=True))
    ]


def status_of(pattern: str) -> np.ndarray:
    """'.' free, 'h' held, 's' sold."""
    code = {".": FREE, "h": HELD, "s": SOLD}
    return np.array([code[c] for c in pattern], dtype=np.uint8)


def all_free(n: int) -> np.ndarray:
    return np.full(n, FREE, np.uint8)


def free_mask(pattern: str) -> np.ndarray:
    return status_of(pattern) == FREE


def venue_table(*specs: SectionSpec, aisle_every: int = 14) -> SeatTable:
    return SeatTable.from_seats(layout_sections(list(specs), aisle_every=aisle_every))


# --- table and adjacency ---------------------------------------------------------------


def test_from_seats_codes_sections_and_rows_in_order_of_appearance() -> None:
    seats = row_of([0, 1], section="Floor", row="A") + row_of([0], section="Floor", row="B")
    seats += row_of([0], section="Tier", row="A")
    table = SeatTable.from_seats(seats)
    assert table.section_names == ("Floor", "Tier")
    assert table.section.tolist() == [0, 0, 0, 1]
    assert table.row.tolist() == [0, 0, 1, 2]  # Tier's row A is not Floor's row A
    assert table.number.dtype == np.int32 and table.distance.dtype == np.float64
    assert len(table) == 4


def test_from_seats_reads_each_field_of_the_seat_records() -> None:
    seats = row_of([0.0, 0.5, 1.0], y=2.5, distances=[7.0, 8.0, 9.0], accessible={2}, first=5)
    table = SeatTable.from_seats(seats)
    assert table.number.tolist() == [5, 6, 7]
    assert table.x.tolist() == [0.0, 0.5, 1.0] and table.y.tolist() == [2.5, 2.5, 2.5]
    assert table.distance.tolist() == [7.0, 8.0, 9.0]
    assert table.accessible.tolist() == [False, False, False]  # seat 2 is not in the row
    accessible = SeatTable.from_seats(row_of([0.0, 0.5], accessible={2}))
    assert accessible.accessible.tolist() == [False, True]
    assert SeatTable.from_seats([]).section_names == () and len(SeatTable.from_seats([])) == 0


@pytest.mark.parametrize(
    ("seats", "expected"),
    [
        # even pitch: all side by side
        (row_of([0, 0.5, 1.0, 1.5]), [True, True, True]),
        # an aisle (1.2 m) between seats 3 and 4 breaks adjacency
        (row_of([0, 0.5, 1.0, 2.2, 2.7]), [True, True, False, True]),
        # pitch is inferred per row: a 1 m pitch row with a 2.5 m aisle
        (row_of([0, 1, 2, 4.5, 5.5]), [True, True, False, True]),
        # numbering right to left (x decreasing) still counts
        (row_of([2, 1.5, 1.0, 0.5]), [True, True, True]),
        # a missing number (seat 3 removed) is a break even at normal pitch
        (row_of([0, 0.5]) + row_of([1.0, 1.5], first=4), [True, False, True]),
        # end of one row, start of the next
        (row_of([0, 0.5]) + row_of([1.0, 1.5], row="B", first=3), [True, False, True]),
        # same row label, different section
        (row_of([0, 0.5]) + row_of([1.0, 1.5], section="T", first=3), [True, False, True]),
        # a single seat has no neighbours
        (row_of([0]), []),
    ],
)
def test_adjacency(seats: list[SeatSpec], expected: list[bool]) -> None:
    assert SeatTable.from_seats(seats).adjacency().tolist() == expected


def test_adjacency_on_generated_layout_breaks_at_aisles_and_row_ends() -> None:
    table = venue_table(SectionSpec("S", 2, 10), aisle_every=4)
    breaks = np.flatnonzero(~table.adjacency()).tolist()
    # after seats 4 and 8 in each row (aisles), and after seat 10 of row A (row end)
    assert breaks == [3, 7, 9, 13, 17]


def test_columns_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="shape"):
        SeatTable(
            section=np.zeros(2),
            row=np.zeros(2),
            number=np.arange(2),
            x=np.zeros(3),
            y=np.zeros(2),
            distance=np.zeros(2),
            accessible=np.zeros(2, bool),
            section_names=("S",),
        )


# --- contiguous runs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("......", [(0, 3), (3, 3)]),  # aisle after seat 3
        ("s.....", [(1, 2), (3, 3)]),
        (".s.h..", [(0, 1), (2, 1), (4, 2)]),
        ("ssssss", []),
        ("..s...", [(0, 2), (3, 3)]),
    ],
)
def test_contiguous_runs(pattern: str, expected: list[tuple[int, int]]) -> None:
    table = SeatTable.from_seats(row_of([0, 0.5, 1.0, 2.2, 2.7, 3.2]))
    assert contiguous_runs(table, free_mask(pattern)) == expected


# --- best available ----------------------------------------------------------------------


def test_front_row_centre_wins_on_an_empty_venue() -> None:
    table = venue_table(SectionSpec("S", 5, 11))
    chosen = choose_best_available(table, all_free(len(table)), 3)
    assert chosen == [4, 5, 6]  # row A, seats 5-7 around the centre seat 6


@pytest.mark.parametrize(
    ("distances", "pattern", "quantity", "expected"),
    [
        # lowest total distance wins
        ([9, 8, 7, 6, 5, 6], "......", 2, [4, 5]),
        # a taken seat splits the best run
        ([9, 8, 7, 6, 5, 6], "....s.", 2, [2, 3]),
        # all equal: the central window would strand seat 1 and seat 5, so take an end
        ([5, 5, 5, 5, 5], ".....", 3, [0, 1, 2]),
        # seats 2 and 3 are equally central; taking 2 would strand seats 1 and 3
        ([5, 5, 5, 5, 5, 5], "s...s.", 1, [3]),
        # no stranding either way: the more central seat
        ([5, 5, 5, 5, 5, 5], "ss.s.s", 1, [2]),
        # distance beats stranding: the closer pair strands seat 0, still chosen
        ([9, 5, 5, 9, 9], ".....", 2, [1, 2]),
        # one seat wanted: the closest free one
        ([9, 8, 7, 6, 5, 6], "....s.", 1, [3]),
    ],
)
def test_contiguous_choice(
    distances: list[float], pattern: str, quantity: int, expected: list[int]
) -> None:
    xs = [float(i) - (len(distances) - 1) / 2 for i in range(len(distances))]
    table = SeatTable.from_seats(row_of(xs, distances=distances))
    assert choose_best_available(table, status_of(pattern), quantity) == expected


def test_a_contiguous_block_further_back_beats_a_split_block_in_front() -> None:
    front = row_of([0, 0.5, 1.0, 1.5], row="A", y=3.0)
    back = row_of([0, 0.5, 1.0, 1.5], row="B", y=10.0)
    table = SeatTable.from_seats(front + back)
    assert choose_best_available(table, status_of("..s....."), 3) == [4, 5, 6]


def test_aisle_is_not_crossed_by_a_block() -> None:
    # front row seats 1-2 | aisle | 3-4 ; back row 4 seats unbroken
    front = row_of([-1.6, -1.1, 1.1, 1.6], row="A", y=3.0)
    back = row_of([-0.75, -0.25, 0.25, 0.75], row="B", y=6.0)
    table = SeatTable.from_seats(front + back)
    assert choose_best_available(table, all_free(8), 3) == [4, 5, 6]


def test_fewest_blocks_when_no_run_is_long_enough() -> None:
    # row A (front): runs of 2, 1 and 2; row B: run of 3. Need 5 -> 3 + 2, two blocks.
    a = row_of([0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0], row="A", y=3.0)
    b = row_of([0, 0.5, 1.0, 1.5, 2.0], row="B", y=4.0)
    table = SeatTable.from_seats(a + b)
    status = status_of("..s.s.." + "...ss")
    chosen = choose_best_available(table, status, 5)
    assert chosen == [0, 1, 7, 8, 9]


def test_fewest_blocks_stay_in_one_section_when_it_can_hold_the_group() -> None:
    # Near holds only a run of 3; Far holds 2 + 2 + 2 in three rows, the last far behind.
    near = row_of([0, 0.5, 1.0, 1.5], section="Near", row="A", y=3.0)
    far = [
        seat
        for row, y in (("A", 9.0), ("B", 10.0), ("C", 30.0))
        for seat in row_of([0, 0.5], section="Far", row=row, y=y)
    ]
    table = SeatTable.from_seats(near + far)
    # Both Far alone and Near + Far need three blocks for 6, so all come from Far, even
    # though Near's longer run is physically closer than Far's back row.
    status = status_of("...s" + "......")
    assert choose_best_available(table, status, 6) == [4, 5, 6, 7, 8, 9]


def _only_free(
    table: SeatTable, seats_per_row: int, runs: list[tuple[int, int, int]]
) -> np.ndarray:
    """Status with every seat sold except (row index, first seat number, length) runs."""
    status = np.full(len(table), SOLD, np.uint8)
    for row, first, length in runs:
        start = row * seats_per_row + first - 1
        status[start : start + length] = FREE
    return status


@pytest.mark.parametrize(
    ("runs", "quantity", "expected_rows"),
    [
        # anchor: the 3 in row E; then the nearest pairs (rows D, F), not row A's
        ([(0, 4, 2), (3, 4, 2), (4, 4, 3), (5, 4, 2)], 7, ["D", "E", "F"]),
        # 3 + 2 is two blocks; the single seat in row D is closer but cannot finish
        ([(0, 4, 2), (3, 5, 1), (4, 4, 3)], 5, ["A", "E"]),
    ],
)
def test_blocks_are_few_then_close(
    runs: list[tuple[int, int, int]], quantity: int, expected_rows: list[str]
) -> None:
    table = venue_table(SectionSpec("S", 10, 9))
    chosen = choose_best_available(table, _only_free(table, 9, runs), quantity)
    assert chosen is not None and len(chosen) == quantity
    assert sorted({"ABCDEFGHIJ"[i // 9] for i in chosen}) == expected_rows


def test_closest_blocks_are_preferred_among_equal_sizes() -> None:
    table = venue_table(SectionSpec("S", 10, 9))
    status = np.full(len(table), SOLD, np.uint8)
    # pairs: row A seats 4-5, row B seats 4-5, row J seats 4-5
    for row in (0, 1, 9):
        status[row * 9 + 3 : row * 9 + 5] = FREE
    chosen = choose_best_available(table, status, 4)
    assert chosen == [3, 4, 12, 13]


def test_individual_seats_when_nothing_is_side_by_side() -> None:
    table = SeatTable.from_seats(
        row_of([0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0], distances=[1, 2, 3, 4, 5, 6, 7])
    )
    assert choose_best_available(table, status_of(".s.s.s."), 3) == [0, 2, 4]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"accessible_only": True}, [4, 5]),
        ({"sections": ["Tier"]}, [6, 7]),
        (
            {"max_price_cents": 3000, "price_cents": np.array([5000] * 4 + [2500] * 3 + [9000])},
            [5, 6],
        ),
        ({}, [1, 2]),
    ],
)
def test_filters(kwargs: dict[str, object], expected: list[int]) -> None:
    floor = row_of([0, 0.5, 1.0, 1.5], section="Floor", y=3.0, distances=[4, 3, 3, 4])
    tier = row_of(
        [0, 0.5, 1.0, 1.5], section="Tier", y=9.0, distances=[10, 9, 8, 7], accessible={1, 2}
    )
    table = SeatTable.from_seats(floor + tier)
    assert choose_best_available(table, all_free(8), 2, **kwargs) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pattern", "quantity", "kwargs"),
    [
        ("ss..", 3, {}),
        ("hhhh", 1, {}),
        ("....", 1, {"accessible_only": True}),
        ("....", 5, {}),
    ],
)
def test_none_when_too_few_eligible_seats(
    pattern: str, quantity: int, kwargs: dict[str, object]
) -> None:
    table = SeatTable.from_seats(row_of([0, 0.5, 1.0, 1.5]))
    assert choose_best_available(table, status_of(pattern), quantity, **kwargs) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "quantity", "kwargs", "message"),
    [
        (all_free(4), 0, {}, "quantity"),
        (all_free(3), 1, {}, "status"),
        (all_free(4), 1, {"sections": ["Nope"]}, "unknown sections: Nope"),
        (all_free(4), 1, {"max_price_cents": 100}, "price_cents"),
        (
            all_free(4),
            1,
            {"max_price_cents": 100, "price_cents": np.zeros(2)},
            "price_cents",
        ),
    ],
)
def test_bad_requests_are_refused(
    status: np.ndarray, quantity: int, kwargs: dict[str, object], message: str
) -> None:
    table = SeatTable.from_seats(row_of([0, 0.5, 1.0, 1.5]))
    with pytest.raises(ValueError, match=message):
        choose_best_available(table, status, quantity, **kwargs)  # type: ignore[arg-type]


def test_large_group_on_a_busy_venue_uses_few_blocks() -> None:
    table = venue_table(SectionSpec("Floor", 40, 100), SectionSpec("Tier", 60, 150))
    rng = np.random.default_rng(3)
    status = np.where(rng.random(len(table)) < 0.6, SOLD, FREE).astype(np.uint8)
    chosen = choose_best_available(table, status, 500)
    assert chosen is not None and len(set(chosen)) == 500
    assert (status[chosen] == FREE).all()
    lengths = sorted((n for _, n in contiguous_runs(table, status == FREE)), reverse=True)
    minimum = int(np.searchsorted(np.cumsum(lengths), 500)) + 1
    picked = np.zeros(len(table), bool)
    picked[chosen] = True
    assert len(contiguous_runs(table, picked)) == minimum


# --- properties ----------------------------------------------------------------------------


@st.composite
def venues(draw: st.DrawFn) -> tuple[SeatTable, np.ndarray, int, bool]:
    """Small explicit venues with uneven pitch and aisles, random status and a request."""
    seats: list[SeatSpec] = []
    for section in ("Floor", "Tier")[: draw(st.integers(1, 2))]:
        for row in "ABC"[: draw(st.integers(1, 3))]:
            x = draw(st.sampled_from([-2.0, 0.0, 1.0]))
            pitch = draw(st.sampled_from([0.5, 0.6]))
            y = draw(st.floats(2.0, 30.0))
            for number in range(1, draw(st.integers(1, 9)) + 1):
                dist = draw(st.sampled_from([5.0, 6.0, 7.5, 9.0]))
                accessible = draw(st.booleans())
                seats.append(SeatSpec(section, row, number, x, y, accessible, dist))
                x += pitch * draw(st.sampled_from([1, 1, 1, 3]))  # 3 x pitch is an aisle
    status = np.array(
        draw(
            st.lists(
                st.sampled_from([FREE, FREE, HELD, SOLD]), min_size=len(seats), max_size=len(seats)
            )
        ),
        dtype=np.uint8,
    )
    return SeatTable.from_seats(seats), status, draw(st.integers(1, 8)), draw(st.booleans())


def _blocks(table: SeatTable, chosen: list[int]) -> int:
    picked = np.zeros(len(table), bool)
    picked[chosen] = True
    return len(contiguous_runs(table, picked))


@settings(max_examples=300, deadline=None)
@given(venues())
def test_choice_is_valid_contiguous_when_possible_and_uses_fewest_blocks(
    venue: tuple[SeatTable, np.ndarray, int, bool],
) -> None:
    table, status, quantity, accessible_only = venue
    eligible = (status == FREE) & (table.accessible if accessible_only else True)
    chosen = choose_best_available(table, status, quantity, accessible_only=accessible_only)
    if eligible.sum() < quantity:
        assert chosen is None
        return
    assert chosen is not None
    assert len(chosen) == quantity == len(set(chosen))
    assert chosen == sorted(chosen)
    assert eligible[chosen].all()
    # brute force: every window of `quantity` side-by-side eligible seats
    adjacent = table.adjacency()
    windows = [
        start
        for start in range(len(table) - quantity + 1)
        if eligible[start : start + quantity].all() and adjacent[start : start + quantity - 1].all()
    ]
    if windows:
        best = min(table.distance[s : s + quantity].sum() for s in windows)
        assert chosen == list(range(chosen[0], chosen[0] + quantity))
        assert chosen[0] in windows
        assert table.distance[chosen].sum() == pytest.approx(best)
    else:
        lengths = sorted((n for _, n in contiguous_runs(table, eligible)), reverse=True)
        fewest = int(np.searchsorted(np.cumsum(lengths), quantity)) + 1
        assert _blocks(table, chosen) == fewest


def test_numpy_integer_quantity_is_accepted() -> None:
    table = SeatTable.from_seats(row_of([0, 0.5, 1.0, 1.5], distances=[4, 3, 3, 4]))
    assert choose_best_available(table, all_free(4), np.int64(2)) == [1, 2]  # type: ignore[arg-type]


def test_ranked_candidates_start_with_the_choice_and_get_no_better() -> None:
    table = venue_table(SectionSpec("Orchestra", rows=4, seats_per_row=20))
    rng = np.random.default_rng(7)
    status = np.where(rng.random(len(table)) < 0.4, SOLD, FREE).astype(np.uint8)
    ranked = rank_best_available(table, status, 3, limit=12)
    assert ranked[0] == choose_best_available(table, status, 3)
    assert 1 < len(ranked) <= 12
    assert len({tuple(c) for c in ranked}) == len(ranked)
    totals = [table.distance[c].sum() for c in ranked]
    assert totals == sorted(totals)  # best (closest to the stage) first
    for candidate in ranked:
        assert len(candidate) == 3 and all(status[i] == FREE for i in candidate)
        assert candidate == list(range(candidate[0], candidate[0] + 3))
        assert all(table.adjacency()[candidate[0] : candidate[-1]])


def test_ranked_candidates_fall_back_to_one_split_choice() -> None:
    table = venue_table(SectionSpec("Orchestra", rows=2, seats_per_row=6))
    status = status_of(".s.s.s" + ".s.s.s")  # nothing side by side
    ranked = rank_best_available(table, status, 3, limit=8)
    assert ranked == [choose_best_available(table, status, 3)]
    assert rank_best_available(table, status_of("ssssss" + "sssss."), 2) == []
    with pytest.raises(ValueError):
        rank_best_available(table, status, 2, limit=0)


# --- group assignment (bulk bookings) ----------------------------------------------------


def _rows_of(table: SeatTable, chosen: list[int]) -> list[int]:
    return sorted({int(table.row[i]) for i in chosen})


def test_group_takes_one_block_in_one_row_when_a_row_holds_it() -> None:
    table = venue_table(SectionSpec("S", 4, 12), aisle_every=50)
    status = all_free(len(table))
    status[5] = SOLD  # row A is split; row B holds the whole group
    ranked = assign_group(table, status, 10, limit=3)
    assert ranked[0] == list(range(12, 22)) or ranked[0] == list(range(13, 23))
    assert _rows_of(table, ranked[0]) == [1]
    assert all(len(_rows_of(table, c)) == 1 for c in ranked)


def test_group_fills_consecutive_rows_closest_to_the_stage() -> None:
    table = venue_table(SectionSpec("Floor", 10, 10), aisle_every=50)
    ranked = assign_group(table, all_free(len(table)), 25, limit=4)
    chosen = ranked[0]
    assert len(chosen) == 25 and _rows_of(table, chosen) == [0, 1, 2]
    assert _blocks(table, chosen) == 3
    # rows A and B whole, row C the 5 most central seats
    assert chosen[:20] == list(range(20))
    assert [int(table.number[i]) for i in chosen[20:]] in ([3, 4, 5, 6, 7], [4, 5, 6, 7, 8])
    # the next bands start one row further back each
    assert [_rows_of(table, c)[0] for c in ranked] == [0, 1, 2, 3]


def test_group_band_skips_a_row_that_cannot_take_part() -> None:
    table = venue_table(SectionSpec("Floor", 6, 8), aisle_every=50)
    status = all_free(len(table))
    status[8:16] = SOLD  # row B sold out: rows A and C are not adjacent
    chosen = assign_group(table, status, 12)[0]
    assert _rows_of(table, chosen) == [2, 3]


def test_group_band_stays_inside_one_section() -> None:
    table = venue_table(SectionSpec("Front", 1, 8), SectionSpec("Back", 3, 8), aisle_every=50)
    chosen = assign_group(table, all_free(len(table)), 12)[0]
    # Front row + Back row A would be two blocks closer to the stage, but not one band
    assert {table.section_names[int(table.section[i])] for i in chosen} == {"Back"}
    assert _rows_of(table, chosen) == [1, 2]


def test_group_without_a_band_uses_the_fewest_blocks() -> None:
    table = venue_table(SectionSpec("S", 6, 10), aisle_every=50)
    # rows A and F have runs of 8; rows B-E only pairs: a band of two rows cannot hold 16
    status = _only_free(table, 10, [(0, 1, 8), (5, 1, 8), (1, 1, 2), (2, 1, 2), (3, 1, 2)])
    chosen = assign_group(table, status, 16)[0]
    assert _rows_of(table, chosen) == [0, 5] and _blocks(table, chosen) == 2


def test_group_within_preferred_sections() -> None:
    table = venue_table(SectionSpec("Floor", 3, 10), SectionSpec("Tier", 3, 10), aisle_every=50)
    chosen = assign_group(table, all_free(len(table)), 15, sections=["Tier"])[0]
    assert {table.section_names[int(table.section[i])] for i in chosen} == {"Tier"}
    assert assign_group(table, all_free(len(table)), 31, sections=["Tier"]) == []
    with pytest.raises(ValueError, match="unknown sections"):
        assign_group(table, all_free(len(table)), 2, sections=["Pit"])


@pytest.mark.parametrize(("quantity", "limit"), [(0, 1), (2, 0), (True, 1)])
def test_group_bad_requests_are_refused(quantity: int, limit: int) -> None:
    table = venue_table(SectionSpec("S", 2, 4))
    with pytest.raises(ValueError):
        assign_group(table, all_free(len(table)), quantity, limit=limit)


def _band_exists(table: SeatTable, eligible: np.ndarray, quantity: int, k: int) -> bool:
    """Brute force: k consecutive rows of one section whose longest runs hold the group."""
    longest: dict[int, int] = {}
    for start, length in contiguous_runs(table, eligible):
        row = int(table.row[start])
        longest[row] = max(longest.get(row, 0), length)
    section_of = {int(r): int(s) for r, s in zip(table.row, table.section, strict=True)}
    for first in range(int(table.row.max()) + 2 - k):
        rows = range(first, first + k)
        if all(r in longest for r in rows) and len({section_of[r] for r in rows}) == 1:
            if sum(longest[r] for r in rows) >= quantity:
                return True
    return False


@settings(max_examples=300, deadline=None)
@given(venues())
def test_group_is_valid_one_block_when_possible_and_fewest_blocks_in_a_band_when_possible(
    venue: tuple[SeatTable, np.ndarray, int, bool],
) -> None:
    table, status, quantity, _ = venue
    eligible = status == FREE
    ranked = assign_group(table, status, quantity, limit=4)
    if eligible.sum() < quantity:
        assert ranked == []
        return
    assert 1 <= len(ranked) <= 4
    for chosen in ranked:
        assert len(chosen) == quantity == len(set(chosen))
        assert chosen == sorted(chosen)
        assert eligible[chosen].all()
    chosen = ranked[0]
    assert chosen == choose_best_available(table, status, quantity) or _blocks(table, chosen) > 1
    lengths = sorted((n for _, n in contiguous_runs(table, eligible)), reverse=True)
    fewest = int(np.searchsorted(np.cumsum(lengths), quantity)) + 1
    if lengths and lengths[0] > 1:
        assert _blocks(table, chosen) == fewest
    if fewest > 1 and _band_exists(table, eligible, quantity, fewest):
        rows = _rows_of(table, chosen)
        assert rows == list(range(rows[0], rows[0] + fewest))
        assert len({int(table.section[i]) for i in chosen}) == 1


# --- recommendations -----------------------------------------------------------------------


def priced(table: SeatTable, **by_section: int) -> np.ndarray:
    """Price per seat (cents) from a price per section name; 10 000 for sections not named."""
    return np.array([by_section.get(name, 10_000) for name in table.section_names], dtype=np.int64)[
        table.section
    ]


def recommend(
    table: SeatTable,
    free: np.ndarray,
    quantity: int,
    *,
    prices: np.ndarray | None = None,
    taste: Taste | None = None,
    top: int = 5,
    **prefs: object,
) -> list[SeatRecommendation]:
    prices = priced(table) if prices is None else prices
    wanted = SeatPreferences(quantity, **prefs)  # type: ignore[arg-type]
    found = seat_candidates(table, free, prices, table.section_names, wanted)
    return rank_candidates(table, found, table.section_names, prices, taste, top=top)


def section_of(table: SeatTable, seats: tuple[int, ...]) -> set[str]:
    return {table.section_names[int(table.section[i])] for i in seats}


def test_a_gap_of_exactly_n_beats_a_closer_one_that_would_strand_a_seat() -> None:
    table = venue_table(SectionSpec("S", 3, 10), aisle_every=50)
    # row A (front): a gap of 3 (seats 1-3); row C (back): a gap of exactly 2 (seats 5-6)
    free = free_mask(".ssssssss" + "s" + "s" * 10 + "ssss..ssss")
    free[1:3] = True
    best, *rest = recommend(table, free, 2)
    assert best.seats == (24, 25) and best.together and best.group == 1.0
    # the front row's windows both strand a seat: they come after, with a lower group score
    assert [r.seats for r in rest] == [(1, 2)] or [r.seats for r in rest] == [(0, 1)]
    assert rest[0].group == 0.6 and rest[0].location > best.location
    assert best.score > rest[0].score
    # when nothing else fits, the stranding block is offered
    free[24:26] = False
    (only,) = recommend(table, free, 2, top=1)
    assert only.seats in {(0, 1), (1, 2)} and only.group == 0.6 and only.together


def test_windows_never_cross_an_aisle() -> None:
    table = venue_table(SectionSpec("S", 1, 8), aisle_every=4)  # an aisle after seat 4
    free = np.ones(len(table), bool)
    for rec in recommend(table, free, 3):
        assert rec.together
        assert all(s < 4 for s in rec.seats) or all(s >= 4 for s in rec.seats)
    # 5 side by side do not exist: the answer is split, one block each side of the aisle
    (split,) = recommend(table, free, 5)
    assert not split.together and len(split.seats) == 5 and split.group < 0.45


def test_accessibility_needs_an_accessible_seat_with_a_companion_beside_it() -> None:
    seats = row_of([0.0, 0.5, 1.0, 1.5, 2.0, 2.5], accessible={2, 6}, y=4.0)
    seats += row_of([0.0, 0.5, 1.0, 1.5], row="B", y=5.0, first=1)
    table = SeatTable.from_seats(seats)
    free = free_mask("sss..." + "....")  # seat 2 (idx 1) sold around; seat 6 (idx 5) free
    found = recommend(table, free, 2, accessibility_required=True)
    assert [r.seats for r in found] == [(4, 5)]  # the only pair with an accessible seat
    single = recommend(table, free, 1, accessibility_required=True)
    assert [r.seats for r in single] == [(5,)]
    free[4] = False  # seat 6's only neighbour is taken: no companion can sit beside it
    assert recommend(table, free, 2, accessibility_required=True) == []
    assert recommend(table, free, 1, accessibility_required=True) != []


def test_accessibility_when_no_block_fits_keeps_a_companion_beside_the_accessible_seat() -> None:
    table = SeatTable.from_seats(
        row_of([0.0, 0.5, 1.0], accessible={3}, y=4.0)
        + row_of([0.0, 0.5, 1.0], row="B", y=5.0)
        + row_of([0.0, 0.5, 1.0], row="C", y=6.0)
    )
    free = np.ones(len(table), bool)
    (rec,) = recommend(table, free, 5, accessibility_required=True)
    assert not rec.together and len(rec.seats) == 5 and 2 in rec.seats and 1 in rec.seats


def test_the_budget_is_a_hard_filter_per_seat() -> None:
    table = venue_table(SectionSpec("Floor", 2, 10), SectionSpec("Tier", 2, 10), aisle_every=50)
    prices = priced(table, Floor=12_000, Tier=4_000)
    free = np.ones(len(table), bool)
    cheap = recommend(table, free, 3, prices=prices, max_price_cents=5_000)
    assert cheap and all(section_of(table, r.seats) == {"Tier"} for r in cheap)
    assert all(r.total_cents == 3 * 4_000 for r in cheap)
    anywhere = recommend(table, free, 3, prices=prices)
    assert section_of(table, anywhere[0].seats) == {"Floor"}  # closer, and the budget allows
    assert recommend(table, free, 3, prices=prices, max_price_cents=3_999) == []
    assert recommend(table, free, 3, prices=prices, max_price_cents=12_000)[0] == anywhere[0]


def test_preferred_sections_come_first_but_do_not_exclude_the_others() -> None:
    table = venue_table(SectionSpec("Floor", 2, 10), SectionSpec("Tier", 2, 10), aisle_every=50)
    free = np.ones(len(table), bool)
    found = recommend(table, free, 4, preferred_sections=frozenset({"Tier"}))
    # one block per row (each row's best block takes its middle seats): Tier's two rows
    # first, although Floor is closer to the stage, then Floor's
    assert [section_of(table, r.seats) for r in found] == [{"Tier"}] * 2 + [{"Floor"}] * 2
    assert found[1].score > found[2].score and found[2].location > found[1].location
    # Tier full: Floor blocks are still recommended
    free[20:] = False
    fallback = recommend(table, free, 4, preferred_sections=frozenset({"Tier"}))
    assert fallback and section_of(table, fallback[0].seats) == {"Floor"}
    with pytest.raises(ValueError, match="unknown sections"):
        recommend(table, free, 2, preferred_sections=frozenset({"Pit"}))


def test_a_group_larger_than_any_row_takes_adjacent_rows_then_splits() -> None:
    table = venue_table(SectionSpec("S", 4, 6), aisle_every=50)
    free = np.ones(len(table), bool)
    best = recommend(table, free, 10)[0]
    rows = sorted({int(table.row[i]) for i in best.seats})
    assert not best.together and rows == [0, 1] and best.group == 0.4  # a band of two rows
    # rows A and C only: no band of adjacent rows, so two separate blocks
    free[6:12] = False
    free[18:] = False
    (split,) = recommend(table, free, 10)
    assert sorted({int(table.row[i]) for i in split.seats}) == [0, 2]
    assert not split.together and split.group == 0.2
    # nothing side by side at all: the individually best seats
    scattered = np.zeros(len(table), bool)
    scattered[0:6:2] = True  # row A's seats 1, 3 and 5
    scattered[19] = True  # and one in row D
    (single_seats,) = recommend(table, scattered, 3)
    assert single_seats.seats == (0, 2, 4) and not single_seats.together
    assert single_seats.group == pytest.approx(0.4 / 3)


def test_similarity_follows_the_taste() -> None:
    table = venue_table(SectionSpec("Floor", 6, 10), SectionSpec("Balcony", 6, 10))
    prices = priced(table, Floor=15_000, Balcony=5_000)
    free = np.ones(len(table), bool)
    anonymous = recommend(table, free, 2, prices=prices)
    assert all(r.similarity == 0.5 for r in anonymous)
    assert section_of(table, anonymous[0].seats) == {"Floor"}
    balcony_back = Taste.from_history([("Balcony", 1.0, 5_000)] * 4)
    liked = recommend(table, free, 2, prices=prices, taste=balcony_back)
    assert all(section_of(table, r.seats) == {"Balcony"} for r in liked)
    floor_front = Taste.from_history([("Floor", 0.0, 15_000)])
    front = recommend(table, free, 2, prices=prices, taste=floor_front)
    assert section_of(table, front[0].seats) == {"Floor"} and front[0].similarity == 1.0
    assert table.row_rank()[front[0].seats[0]] == 0.0
    # the same section and price, rows further back: closer to a back-row taste
    rows = [(64, 65), (84, 85), (114, 115)]  # Balcony rows A, C and F, middle seats
    picked = [Candidate(s, 10_000, True, 0.5, 0.5, 1.0, False) for s in rows]
    ranked = rank_candidates(table, picked, table.section_names, prices, balcony_back)
    similarity = {r.seats: r.similarity for r in ranked}
    assert similarity[(64, 65)] < similarity[(84, 85)] < similarity[(114, 115)] == 1.0


def test_shared_candidates_cover_every_section_and_row_band() -> None:
    table = venue_table(SectionSpec("A", 9, 10), SectionSpec("B", 9, 10), SectionSpec("C", 9, 10))
    free = np.ones(len(table), bool)
    found = seat_candidates(
        table, free, priced(table), table.section_names, SeatPreferences(2), pool=40
    )
    assert 20 <= len(found) <= 40
    rank = table.row_rank()
    bands = {(section_of(table, c.seats).pop(), min(int(rank[c.seats[0]] * 3), 2)) for c in found}
    assert bands == {(s, b) for s in "ABC" for b in range(3)}
    # the best for a neutral taste come first, and the re-rank agrees with that order
    ranked = rank_candidates(table, found, table.section_names, priced(table), None)
    assert ranked[0].seats == found[0].seats


def test_taste_from_history() -> None:
    assert Taste.from_history([]) is None
    taste = Taste.from_history(
        [("Floor", 0.0, 10_000), ("Floor", 0.5, 12_000), ("Tier", 1.0, 5_000)]
    )
    assert taste is not None
    assert taste.sections == pytest.approx({"Floor": 2 / 3, "Tier": 1 / 3})
    assert taste.row_rank == pytest.approx(0.5) and taste.price_cents == pytest.approx(9_000)


def test_preferences_key_and_validation() -> None:
    one = SeatPreferences(2, 5_000, frozenset({"B", "A"}), True)
    other = SeatPreferences(np.int64(2), np.int64(5_000), frozenset(["A", "B"]), True)  # type: ignore[arg-type]
    assert one.key() == other.key() == (2, 5_000, ("A", "B"), True)
    assert hash(one.key()) == hash(other.key())
    assert SeatPreferences(2).key() != SeatPreferences(3).key()
    for bad in ({"quantity": 0}, {"quantity": True}, {"quantity": 2, "max_price_cents": -1}):
        with pytest.raises(ValueError):
            SeatPreferences(**bad)  # type: ignore[arg-type]


def test_row_rank_orders_rows_by_distance_within_each_section() -> None:
    table = venue_table(SectionSpec("Floor", 3, 2), SectionSpec("Solo", 1, 2))
    assert table.row_rank().tolist() == [0.0, 0.0, 0.5, 0.5, 1.0, 1.0, 0.0, 0.0]
    location = table.location()
    assert location.min() >= 0.0 and location.max() <= 1.0
    assert location[0] > location[4]  # the front row is closer to the stage


def test_candidates_refuse_bad_input() -> None:
    table = venue_table(SectionSpec("S", 2, 4))
    free = np.ones(len(table), bool)
    with pytest.raises(ValueError, match="shape"):
        seat_candidates(table, free[:-1], priced(table), table.section_names, SeatPreferences(1))
    with pytest.raises(ValueError, match="section_names"):
        seat_candidates(table, free, priced(table), ("S", "T"), SeatPreferences(1))
    assert (
        seat_candidates(table, free, priced(table), table.section_names, SeatPreferences(9)) == ()
    )


@st.composite
def reco_requests(
    draw: st.DrawFn,
) -> tuple[SeatTable, np.ndarray, np.ndarray, SeatPreferences, Taste | None]:
    table, status, quantity, accessible = draw(venues())
    prices = np.array(
        draw(
            st.lists(
                st.sampled_from([2_000, 5_000, 9_000]), min_size=len(table), max_size=len(table)
            )
        ),
        dtype=np.int64,
    )
    names = table.section_names
    prefs = SeatPreferences(
        quantity,
        draw(st.sampled_from([None, 5_000, 9_000])),
        frozenset(draw(st.lists(st.sampled_from(names), max_size=1))),
        accessible,
    )
    taste = draw(
        st.none()
        | st.builds(
            Taste.from_history,
            st.lists(
                st.tuples(
                    st.sampled_from(["Floor", "Tier", "Gone"]),
                    st.floats(0, 1),
                    st.integers(0, 20_000),
                ),
                min_size=1,
                max_size=5,
            ),
        )
    )
    return table, status, prices, prefs, taste


@settings(max_examples=300, deadline=None)
@given(reco_requests())
def test_recommendations_keep_every_rule(
    request: tuple[SeatTable, np.ndarray, np.ndarray, SeatPreferences, Taste | None],
) -> None:
    table, status, prices, prefs, taste = request
    free = status == FREE
    names = table.section_names
    candidates = seat_candidates(table, free, prices, names, prefs, pool=12)
    ranked = rank_candidates(table, candidates, names, prices, taste, top=5)
    q = prefs.quantity
    eligible = free & (
        prices <= (prefs.max_price_cents if prefs.max_price_cents is not None else 10**9)
    )
    if not prefs.accessibility_required:
        assert bool(ranked) == (eligible.sum() >= q)  # something fits whenever enough is free
    adjacent = table.adjacency()
    windows = [
        s for s in range(len(table) - q + 1)
        if eligible[s : s + q].all() and adjacent[s : s + q - 1].all()
        and (not prefs.accessibility_required or table.accessible[s : s + q].any())
    ]  # fmt: skip
    seen: set[int] = set()
    for rec in ranked:
        assert len(rec.seats) == q == len(set(rec.seats)) and list(rec.seats) == sorted(rec.seats)
        assert eligible[list(rec.seats)].all()  # never held, sold or over budget
        assert not seen.intersection(rec.seats)  # no two share a seat
        seen.update(rec.seats)
        assert rec.total_cents == int(prices[list(rec.seats)].sum())
        for score in (rec.score, rec.similarity, rec.value, rec.location, rec.group):
            assert 0.0 <= score <= 1.0
        if taste is None:
            assert rec.similarity == 0.5
        if prefs.accessibility_required:
            accessible = [i for i in rec.seats if table.accessible[i]]
            assert accessible
            if q > 1:
                assert any(
                    (i + 1 in rec.seats and adjacent[i]) or (i - 1 in rec.seats and adjacent[i - 1])
                    for i in accessible
                )
        assert rec.together == bool(windows)  # one block whenever one fits
    scores = [r.score for r in ranked]
    assert scores == sorted(scores, reverse=True)
    # within one preference class, a block that strands nothing is never behind one that does
    preferred = [section_of(table, r.seats) <= prefs.preferred_sections for r in ranked]
    clean = [r.group == 1.0 for r in ranked]
    for i in range(len(ranked) - 1):
        if preferred[i] == preferred[i + 1] and prefs.preferred_sections:
            assert clean[i] >= clean[i + 1]
        if not prefs.preferred_sections:
            assert clean[i] >= clean[i + 1]
