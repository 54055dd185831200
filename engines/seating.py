"""Best-available seat choice over a column table of seats, vectorised with numpy.

Seats live in index order (section, row, number). Two seats are *side by side* when they
are neighbours in that order, in the same section and row, with consecutive numbers, and
their x gap is at most `PITCH_SLACK` times the row's normal pitch (the lower median of its
gaps), so an aisle breaks a run whatever the layout. Everything is inferred from the data.

Choice for a group of `quantity`, over the *eligible* seats (free and passing the filters):
  (a) one block: the window of `quantity` side-by-side seats with the lowest total distance
      to the stage; ties go to windows that strand no single free seat beside them, then
      to the most central one, then to the lowest index. Window sums are O(1) differences
      of integer (millimetre) prefix sums, so scores are exact and there is no seat loop.
  (b) otherwise the fewest blocks: largest runs first, which reaches the minimum number of
      blocks; within one section when any section can hold the group in that minimum, and
      ties broken by closeness to the first (anchor) block. The last block is the closest
      run that can finish the group, cut to its best window.
  (c) when no two eligible seats are side by side, the individually best seats.
Invariants: a result is sorted, distinct, eligible, exactly `quantity` long, or None.

Group assignment (`assign_group`, bulk bookings) keeps (a) first, then, before (b), looks
for a *band*: k consecutive rows of one section, one block per row, where k is the fewest
blocks any choice can use (so a band never costs an extra block). Each row offers its
longest run (ties: closest to the stage); among bands whose runs hold the group, the one
with the lowest mean distance to the stage wins, ties to the lowest index. The band's rows
are filled closest first with whole runs; the farthest row takes the best window of what
is left (at least one seat, since k is the minimum). With no band, (b) then (c) as above.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

import numpy as np

from engines.seats import SeatCode, SeatSpec

PITCH_SLACK = 1.5
_EPS = 1e-6
_COLUMNS: dict[str, type[np.generic]] = {
    "section": np.int32,
    "row": np.int32,
    "number": np.int32,
    "x": np.float64,
    "y": np.float64,
    "distance": np.float64,
    "accessible": np.bool_,
}


def _mm_prefix(values: np.ndarray) -> np.ndarray:
    """Prefix sums of values in exact integer millimetres: sum(a..b) = p[b + 1] - p[a]."""
    return np.concatenate(([0], np.cumsum(np.rint(values * 1000).astype(np.int64))))


@dataclass(frozen=True, eq=False)
class SeatTable:
    """Column arrays, one entry per seat, in seat-index order."""

    section: np.ndarray  # int32 section code
    row: np.ndarray  # int32 row code, unique per (section, row label)
    number: np.ndarray  # int32 seat number
    x: np.ndarray
    y: np.ndarray
    distance: np.ndarray  # float64, metres to the stage
    accessible: np.ndarray  # bool
    section_names: tuple[str, ...]  # code -> name
    _adjacent: np.ndarray = field(init=False, repr=False)
    _prefix: dict[str, np.ndarray] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n = len(self.section)
        for name, dtype in _COLUMNS.items():
            array: np.ndarray = np.asarray(getattr(self, name), dtype=dtype)
            if array.shape != (n,):
                raise ValueError(f"column {name!r} has shape {array.shape}, expected ({n},)")
            object.__setattr__(self, name, array)
        if n and not 0 <= self.section.min() <= self.section.max() < len(self.section_names):
            raise ValueError("section codes must index section_names")
        adjacent = _side_by_side(self.section, self.row, self.number, self.x)
        adjacent.flags.writeable = False
        object.__setattr__(self, "_adjacent", adjacent)
        prefix = {name: _mm_prefix(getattr(self, name)) for name in ("distance", "x", "y")}
        object.__setattr__(self, "_prefix", prefix)

    def __len__(self) -> int:
        return int(self.section.size)

    @classmethod
    def from_seats(cls, seats: Sequence[SeatSpec]) -> SeatTable:
        """Build a table from seat records (``SeatSpec`` or anything extending it).

        Args:
            seats: one record per seat, in seat-index order.

        Returns:
            The table; section and row codes are given in order of first appearance.
        """
        n = len(seats)
        # One pass per column with map and attrgetter keeps the per-seat work in C: the
        # layout is built on the request that first needs it, for up to 50,000 seats.
        section_of = list(map(attrgetter("section"), seats))
        row_key = list(zip(section_of, map(attrgetter("row"), seats), strict=True))
        sections = {name: i for i, name in enumerate(dict.fromkeys(section_of))}
        rows = {key: i for i, key in enumerate(dict.fromkeys(row_key))}

        def column(values: Iterable[object], dtype: type[np.generic]) -> np.ndarray:
            return np.fromiter(values, dtype=dtype, count=n)

        return cls(
            section=column(map(sections.__getitem__, section_of), np.int32),
            row=column(map(rows.__getitem__, row_key), np.int32),
            number=column(map(attrgetter("number"), seats), np.int32),
            x=column(map(attrgetter("x"), seats), np.float64),
            y=column(map(attrgetter("y"), seats), np.float64),
            distance=column(map(attrgetter("distance"), seats), np.float64),
            accessible=column(map(attrgetter("accessible"), seats), np.bool_),
            section_names=tuple(sections),
        )

    def adjacency(self) -> np.ndarray:
        """Return a read-only bool array of length n - 1: seats i and i + 1 are side by side."""
        return self._adjacent


def _side_by_side(
    section: np.ndarray, row: np.ndarray, number: np.ndarray, x: np.ndarray
) -> np.ndarray:
    same_row = (section[1:] == section[:-1]) & (row[1:] == row[:-1])
    candidate = same_row & (number[1:] == number[:-1] + 1)
    gaps = np.abs(np.diff(x))
    pair_rows, pair_gaps = row[:-1][candidate], gaps[candidate]
    if pair_rows.size == 0:
        return candidate
    order = np.lexsort((pair_gaps, pair_rows))
    sorted_rows, sorted_gaps = pair_rows[order], pair_gaps[order]
    rows, first, counts = np.unique(sorted_rows, return_index=True, return_counts=True)
    pitch = sorted_gaps[first + (counts - 1) // 2]  # lower median: aisles are the outliers
    limit = pitch[np.searchsorted(rows, pair_rows)] * PITCH_SLACK + _EPS
    adjacent = candidate.copy()
    adjacent[candidate] = pair_gaps <= limit
    return adjacent


def _runs(adjacent: np.ndarray, eligible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and lengths of maximal side-by-side runs of eligible seats."""
    link = adjacent & eligible[:-1] & eligible[1:]
    first = eligible.copy()
    first[1:] &= ~link
    last = eligible.copy()
    last[:-1] &= ~link
    starts = np.flatnonzero(first)
    return starts, np.flatnonzero(last) - starts + 1


def contiguous_runs(table: SeatTable, eligible: np.ndarray) -> list[tuple[int, int]]:
    """List the maximal side-by-side runs of eligible seats.

    Args:
        table: the seats.
        eligible: bool mask of length n.

    Returns:
        ``(start index, length)`` per run, in index order.

    Raises:
        ValueError: if the mask has the wrong shape.
    """
    mask = np.asarray(eligible, dtype=np.bool_)
    if mask.shape != (len(table),):
        raise ValueError(f"eligible has shape {mask.shape}, expected ({len(table)},)")
    starts, lengths = _runs(table._adjacent, mask)
    return [(int(s), int(n)) for s, n in zip(starts, lengths, strict=True)]


def _best_window(
    table: SeatTable, eligible: np.ndarray, free: np.ndarray, q: int, lo: int, hi: int
) -> int | None:
    """Start of the best window of q side-by-side eligible seats inside [lo, hi), or None."""
    ranked = _ranked_windows(table, eligible, free, q, lo, hi, 1)
    return int(ranked[0]) if ranked.size else None


def _ranked_windows(
    table: SeatTable,
    eligible: np.ndarray,
    free: np.ndarray,
    q: int,
    lo: int,
    hi: int,
    limit: int,
) -> np.ndarray:
    """Starts of the best ``limit`` windows of q side-by-side eligible seats inside
    [lo, hi), best first (windows may overlap)."""
    if hi - lo < q:
        return np.empty(0, dtype=np.int64)
    link = np.concatenate(([0], np.cumsum(table._adjacent & eligible[:-1] & eligible[1:])))
    starts = np.arange(lo, hi - q + 1)
    ok = eligible[starts] & (link[starts + q - 1] - link[starts] == q - 1)
    starts = starts[ok]
    if starts.size == 0:
        return starts
    dist, x = table._prefix["distance"], table._prefix["x"]
    total = dist[starts + q] - dist[starts]
    off_centre = np.abs(x[starts + q] - x[starts])
    # pairs[i] is True when seats i - 1 and i are both free and side by side
    pairs = np.concatenate(([False], table._adjacent & free[:-1] & free[1:], [False, False]))
    ends = starts + q - 1
    strands = (pairs[starts] & ~pairs[starts - 1]).astype(np.int8)  # starts-1 = -1 wraps to a False
    strands += pairs[ends + 1] & ~pairs[ends + 2]
    order = np.lexsort((starts, off_centre, strands, total))
    return starts[order[:limit]]


def _min_blocks(lengths: np.ndarray, q: int) -> int | None:
    """Fewest runs whose lengths add up to q, or None if they cannot."""
    covered = np.cumsum(np.sort(lengths)[::-1])
    k = int(np.searchsorted(covered, q))
    return k + 1 if k < covered.size else None


def _fewest_blocks(
    table: SeatTable, eligible: np.ndarray, free: np.ndarray, q: int
) -> list[int] | None:
    """Seats for q in the fewest, closest blocks; None when no two seats are side by side."""
    starts, lengths = _runs(table._adjacent, eligible)
    if lengths.size == 0 or lengths.max() < 2:
        return None
    k = _min_blocks(lengths, q)
    run_section = table.section[starts]
    in_one = np.zeros(starts.size, dtype=np.bool_)  # runs of sections that fit in k blocks
    for code in np.unique(run_section):
        in_section = run_section == code
        if _min_blocks(lengths[in_section], q) == k:
            in_one |= in_section
    dist, px, py = table._prefix["distance"], table._prefix["x"], table._prefix["y"]
    ends = starts + lengths
    mean_dist = (dist[ends] - dist[starts]) / lengths
    pooled = np.flatnonzero(in_one) if in_one.any() else np.arange(starts.size)
    anchor = pooled[np.lexsort((starts[pooled], mean_dist[pooled], -lengths[pooled]))[0]]
    if in_one.any():
        pool = run_section == run_section[anchor]
    else:
        pool = np.ones(starts.size, dtype=np.bool_)
    pool[anchor] = False
    cx = (px[ends] - px[starts]) / lengths
    cy = (py[ends] - py[starts]) / lengths
    near = np.hypot(cx - cx[anchor], cy - cy[anchor])
    other = run_section != run_section[anchor]
    rest = np.flatnonzero(pool)
    rest = rest[np.lexsort((starts[rest], near[rest], other[rest], -lengths[rest]))]
    need = q - int(lengths[anchor])
    covered = np.cumsum(lengths[rest])
    j = int(np.searchsorted(covered, need))  # rest[:j] are taken whole, one more finishes
    chosen = [anchor, *rest[:j].tolist()]
    last_need = need - (int(covered[j - 1]) if j else 0)
    tail = rest[j:]
    tail = tail[lengths[tail] >= last_need]
    last = tail[np.lexsort((starts[tail], near[tail], other[tail]))[0]]
    seats = [np.arange(starts[i], ends[i]) for i in chosen]
    begin = _best_window(table, eligible, free, last_need, int(starts[last]), int(ends[last]))
    assert begin is not None  # the run is side by side and long enough
    seats.append(np.arange(begin, begin + last_need))
    return np.sort(np.concatenate(seats)).tolist()


def _eligible(
    table: SeatTable,
    status: np.ndarray,
    sections: Sequence[str] | None,
    accessible_only: bool,
    max_price_cents: int | None,
    price_cents: np.ndarray | None,
) -> np.ndarray:
    n = len(table)
    status = np.asarray(status)
    if status.shape != (n,):
        raise ValueError(f"status has shape {status.shape}, expected ({n},)")
    eligible = status == SeatCode.FREE
    if sections is not None:
        unknown = sorted(set(sections) - set(table.section_names))
        if unknown:
            raise ValueError(f"unknown sections: {', '.join(unknown)}")
        codes = [table.section_names.index(name) for name in sections]
        eligible &= np.isin(table.section, codes)
    if accessible_only:
        eligible &= table.accessible
    if max_price_cents is not None:
        if price_cents is None:
            raise ValueError("max_price_cents needs price_cents")
        prices = np.asarray(price_cents)
        if prices.shape != (n,):
            raise ValueError(f"price_cents has shape {prices.shape}, expected ({n},)")
        eligible &= prices <= max_price_cents
    return eligible


def choose_best_available(
    table: SeatTable,
    status: np.ndarray,
    quantity: int,
    *,
    sections: Sequence[str] | None = None,
    accessible_only: bool = False,
    max_price_cents: int | None = None,
    price_cents: np.ndarray | None = None,
) -> list[int] | None:
    """Choose the best free seats for a group (see the module docstring for the order).

    Args:
        table: the seats.
        status: uint8 per seat: 0 free, 1 held, 2 sold.
        quantity: group size, >= 1.
        sections: only seats in these sections (names), if given.
        accessible_only: only accessible seats.
        max_price_cents: only seats priced at most this; needs ``price_cents``.
        price_cents: price per seat, in cents.

    Returns:
        Sorted seat indices, or None when fewer than ``quantity`` eligible free seats exist.

    Raises:
        ValueError: on a quantity below 1, an array of the wrong length, an unknown
            section, or ``max_price_cents`` without ``price_cents``.
    """
    ranked = rank_best_available(
        table,
        status,
        quantity,
        sections=sections,
        accessible_only=accessible_only,
        max_price_cents=max_price_cents,
        price_cents=price_cents,
        limit=1,
    )
    return ranked[0] if ranked else None


def rank_best_available(
    table: SeatTable,
    status: np.ndarray,
    quantity: int,
    *,
    sections: Sequence[str] | None = None,
    accessible_only: bool = False,
    max_price_cents: int | None = None,
    price_cents: np.ndarray | None = None,
    limit: int = 16,
) -> list[list[int]]:
    """Up to ``limit`` candidate seat sets for a group, best first (same order and filters
    as ``choose_best_available``, whose answer is the first). When one block fits, these
    are the best windows (they may overlap); otherwise there is a single candidate.

    A surge has many buyers choosing from the same picture at once: handing the hold
    script several candidates lets each take the best one still free, atomically, instead
    of all colliding on the single best window.

    Returns:
        Candidates (sorted seat indices each); empty when too few eligible seats are free.

    Raises:
        ValueError: as ``choose_best_available``, or a ``limit`` below 1.
    """
    if isinstance(quantity, bool) or not isinstance(quantity, int | np.integer) or quantity < 1:
        raise ValueError(f"quantity must be an int >= 1, got {quantity!r}")
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit!r}")
    quantity = int(quantity)
    eligible = _eligible(table, status, sections, accessible_only, max_price_cents, price_cents)
    if int(np.count_nonzero(eligible)) < quantity:
        return []
    free = np.asarray(status) == SeatCode.FREE
    starts = _ranked_windows(table, eligible, free, quantity, 0, len(table), limit)
    if starts.size:
        return [list(range(int(start), int(start) + quantity)) for start in starts]
    blocks = _fewest_blocks(table, eligible, free, quantity)
    if blocks is not None:
        return [blocks]
    candidates = np.flatnonzero(eligible)
    order = np.lexsort((candidates, np.abs(table.x[candidates]), table.distance[candidates]))
    return [np.sort(candidates[order[:quantity]]).tolist()]


def _bands(
    table: SeatTable, eligible: np.ndarray, free: np.ndarray, q: int, limit: int
) -> list[list[int]]:
    """Up to ``limit`` bands (see the module docstring), best first; empty when the fewest
    blocks cannot all lie in consecutive rows of one section."""
    starts, lengths = _runs(table._adjacent, eligible)
    k = _min_blocks(lengths, q) if lengths.size else None
    n_rows = int(table.row.max()) + 1 if len(table) else 0
    if k is None or k > n_rows:
        return []
    dist = table._prefix["distance"]
    run_dist = dist[starts + lengths] - dist[starts]  # exact integer millimetres
    run_row = table.row[starts]
    # each row's best run: longest, then closest to the stage, then first
    order = np.lexsort((starts, run_dist, -lengths, run_row))
    rows, first = np.unique(run_row[order], return_index=True)
    best = np.full(n_rows, -1, dtype=np.int64)
    best[rows] = order[first]
    has = best >= 0
    row_len = np.where(has, lengths[best], 0)
    row_dist = np.where(has, run_dist[best], 0)
    row_section = np.zeros(n_rows, dtype=np.int32)
    row_section[table.row] = table.section
    cum_len = np.concatenate(([0], np.cumsum(row_len)))
    cum_dist = np.concatenate(([0], np.cumsum(row_dist)))
    cum_gap = np.concatenate(([0], np.cumsum(~has)))
    lo = np.arange(n_rows - k + 1)
    hi = lo + k  # rows lo .. hi - 1
    capacity = cum_len[hi] - cum_len[lo]
    # row codes of one section are consecutive, so equal end sections mean one section
    ok = (capacity >= q) & (cum_gap[hi] == cum_gap[lo]) & (row_section[lo] == row_section[hi - 1])
    lo = lo[ok]
    if lo.size == 0:
        return []
    mean = (cum_dist[lo + k] - cum_dist[lo]) / capacity[ok]
    chosen = lo[np.lexsort((lo, mean))[:limit]]
    return [_fill_band(table, eligible, free, q, best[r : r + k], starts, lengths) for r in chosen]


def _fill_band(
    table: SeatTable,
    eligible: np.ndarray,
    free: np.ndarray,
    q: int,
    runs: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
) -> list[int]:
    """Whole runs of the band's rows, closest to the stage first; the farthest row's run
    cut to its best window of the seats still needed."""
    dist = table._prefix["distance"]
    ends = starts[runs] + lengths[runs]
    mean = (dist[ends] - dist[starts[runs]]) / lengths[runs]
    runs = runs[np.lexsort((starts[runs], mean))]
    whole, last = runs[:-1], int(runs[-1])
    need = q - int(lengths[whole].sum())
    lo, hi = int(starts[last]), int(starts[last] + lengths[last])
    begin = _best_window(table, eligible, free, need, lo, hi)
    assert begin is not None  # 1 <= need <= the run's length, all side by side
    seats = [np.arange(starts[i], starts[i] + lengths[i]) for i in whole]
    seats.append(np.arange(begin, begin + need))
    return np.sort(np.concatenate(seats)).tolist()


def assign_group(
    table: SeatTable,
    status: np.ndarray,
    quantity: int,
    *,
    sections: Sequence[str] | None = None,
    limit: int = 16,
) -> list[list[int]]:
    """Up to ``limit`` candidate seat sets for a bulk group booking, best first: one block
    in one row (the best windows, as ``rank_best_available``), else the best bands of
    consecutive rows (module docstring), else the single fewest-blocks choice, else the
    individually best seats.

    Args:
        table: the seats.
        status: uint8 per seat: 0 free, 1 held, 2 sold.
        quantity: group size, >= 1.
        sections: only seats in these sections (names), if given.
        limit: the most candidates returned, >= 1.

    Returns:
        Candidates (sorted seat indices each); empty when too few eligible seats are free.

    Raises:
        ValueError: on a quantity or limit below 1, a status of the wrong length, or an
            unknown section.
    """
    if isinstance(quantity, bool) or not isinstance(quantity, int | np.integer) or quantity < 1:
        raise ValueError(f"quantity must be an int >= 1, got {quantity!r}")
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit!r}")
    q = int(quantity)
    eligible = _eligible(table, status, sections, False, None, None)
    if int(np.count_nonzero(eligible)) < q:
        return []
    free = np.asarray(status) == SeatCode.FREE
    starts = _ranked_windows(table, eligible, free, q, 0, len(table), limit)
    if starts.size:
        return [list(range(int(start), int(start) + q)) for start in starts]
    bands = _bands(table, eligible, free, q, limit)
    if bands:
        return bands
    return rank_best_available(table, status, q, sections=sections, limit=1)
