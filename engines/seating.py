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

Recommendations (``seat_candidates`` then ``rank_candidates``) score seat sets, each score in
[0, 1]. Per seat, from the table alone: *location* = 0.75 x closeness (1 at the venue's
nearest seat to the stage, 0 at its farthest) + 0.25 x centrality (1 on the centre line
x = 0, 0 at the widest seat); *row rank* = the row's place in its section by mean distance,
0 front .. 1 back. A set's location is its seats' mean. *Value* weighs price against
quality (0.2 + 0.8 x location): the venue's price per unit of quality (all seats) gives a
set its fair price, and value = fair / (fair + asked), 0.5 at exactly the fair price, more
when cheaper. *Group* is 1 for one block that strands no single free seat, 0.6 / 0.45 when
it strands one on one / both sides; a split set of b blocks gets 0.2 x 2 / b, doubled when
its blocks fill consecutive rows of one section one block per row (a band). *Similarity*
compares a set with the user's ``Taste`` (past tickets, any venue): 0.4 x the share of
past tickets in its sections' names (relative to the favourite's), 0.3 x (1 - |row rank
difference|), 0.3 x (1 - relative price difference), renormalised over what the taste
knows; 0.5 for no taste. The *overall score* is base = 0.35 similarity + 0.30 location +
0.20 value + 0.15 group, lifted into tiers so that an order holds whatever the base: a
block in a preferred section beats one outside them, then a block that strands nothing
beats one that does. Score = (2 x preferred + clean + base) / 4 when some candidate is in a
preferred section, else (clean + base) / 2.

Hard filters: free seats only; price per seat at most ``max_price_cents``; with
``accessibility_required`` a set holds an accessible seat with a companion of the set side
by side with it (a set of one: the accessible seat). The search scores every window of q
side-by-side eligible seats at once (prefix sums, as above) and keeps a pool that is half the
best windows overall that share no seat, half each (section, row band) stratum's best rows,
so that a taste for other sections or rows finds candidates in the shared pool. When no
window fits: bands of adjacent rows (of the preferred sections first), then the fewest
blocks, then the individually best seats, all ``together = False``. The re-rank keeps the
best ``top`` sets of which no two share a seat.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

import numpy as np

from engines.seats import SeatCode, SeatSpec

PITCH_SLACK = 1.5
_EPS = 1e-6
# Seat scores (the recommendation part of the module docstring).
CLOSENESS_WEIGHT = 0.75  # location: closeness to the stage; the rest is centrality
QUALITY_FLOOR = 0.2  # value: a seat's quality is this plus the rest times its location
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
    _row_rank: np.ndarray = field(init=False, repr=False)
    _location: np.ndarray = field(init=False, repr=False)
    _sums: dict[str, np.ndarray] = field(init=False, repr=False)

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
        row_rank = _row_ranks(self.section, self.row, self.distance)
        location = _seat_locations(self.distance, self.x)
        for array in (row_rank, location):
            array.flags.writeable = False
        object.__setattr__(self, "_row_rank", row_rank)
        object.__setattr__(self, "_location", location)
        sums = {
            "location": _prefix_sum(location),
            "quality": _prefix_sum(QUALITY_FLOOR + (1.0 - QUALITY_FLOOR) * location),
            "accessible": _prefix_sum(self.accessible.astype(np.int64)),
        }
        object.__setattr__(self, "_sums", sums)

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

    def row_rank(self) -> np.ndarray:
        """Return a read-only float array: each seat's row position in its section, 0 for the
        row nearest the stage (lowest mean distance) to 1 for the farthest; 0 in a section
        of one row."""
        return self._row_rank

    def location(self) -> np.ndarray:
        """Return a read-only float array: each seat's location score in [0, 1] (see the
        module docstring: closeness to the stage and to the centre line)."""
        return self._location


def _prefix_sum(values: np.ndarray) -> np.ndarray:
    """``p[b + 1] - p[a]`` is the sum of values[a..b]."""
    return np.concatenate(([0], np.cumsum(values)))


def _row_ranks(section: np.ndarray, row: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """Per seat: its row's rank in its section by mean distance to the stage, over 0..1."""
    if row.size == 0:
        return np.zeros(0, dtype=np.float64)
    n_rows = int(row.max()) + 1
    counts = np.bincount(row, minlength=n_rows)
    mean = np.bincount(row, weights=distance, minlength=n_rows) / np.maximum(counts, 1)
    row_section = np.zeros(n_rows, dtype=np.int64)
    row_section[row] = section
    present = counts > 0
    rows = np.flatnonzero(present)
    rows = rows[np.lexsort((rows, mean[rows], row_section[rows]))]  # by section, then depth
    sections = row_section[rows]
    first = np.concatenate(([True], sections[1:] != sections[:-1]))
    group_start = np.maximum.accumulate(np.where(first, np.arange(rows.size), 0))
    position = np.arange(rows.size) - group_start
    in_section = np.bincount(sections, minlength=int(sections.max()) + 1)[sections]
    rank = np.zeros(n_rows, dtype=np.float64)
    rank[rows] = position / np.maximum(in_section - 1, 1)
    return rank[row]


def _seat_locations(distance: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Per seat: ``CLOSENESS_WEIGHT`` x closeness + the rest x centrality, each in [0, 1]."""
    if distance.size == 0:
        return np.zeros(0, dtype=np.float64)
    near, far = float(distance.min()), float(distance.max())
    closeness = 1.0 - (distance - near) / (far - near) if far > near else np.ones(distance.size)
    wide = float(np.abs(x).max())
    centrality = 1.0 - np.abs(x) / wide if wide > 0 else np.ones(x.size)
    location = CLOSENESS_WEIGHT * closeness + (1.0 - CLOSENESS_WEIGHT) * centrality
    return np.clip(location, 0.0, 1.0)


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
    # link[j] counts the side-by-side eligible pairs among seats lo .. lo + j
    inside = eligible[lo:hi]
    link = _prefix_sum(table._adjacent[lo : hi - 1] & inside[:-1] & inside[1:])
    local = np.arange(hi - lo - q + 1)
    starts = local[inside[local] & (link[local + q - 1] - link[local] == q - 1)] + lo
    if starts.size == 0:
        return starts
    dist, x = table._prefix["distance"], table._prefix["x"]
    total = dist[starts + q] - dist[starts]
    off_centre = np.abs(x[starts + q] - x[starts])
    strands = _strands(table, free, starts, q)
    order = np.lexsort((starts, off_centre, strands, total))
    return starts[order[:limit]]


def _strands(table: SeatTable, free: np.ndarray, starts: np.ndarray, q: int) -> np.ndarray:
    """Per window of q seats from each start: how many of its two sides (0, 1 or 2) it would
    leave a single free seat stranded on (free, side by side with the window, and with no
    free seat side by side beyond it)."""
    n = len(table)
    if starts.size == 0:
        return np.zeros(0, dtype=np.int8)
    ends = starts + q - 1
    # pairs[i - first] is True when seats i - 1 and i are both free and side by side, for i
    # over the span the windows need (False off the ends of the table)
    first, last = int(starts.min()) - 1, int(ends.max()) + 2
    lo, hi = max(first, 1), min(last, n - 1)
    pairs = np.zeros(last - first + 1, dtype=np.bool_)
    if hi >= lo:
        pairs[lo - first : hi - first + 1] = (
            table._adjacent[lo - 1 : hi] & free[lo - 1 : hi] & free[lo : hi + 1]
        )
    at, to = starts - first, ends - first
    strands = (pairs[at] & ~pairs[at - 1]).astype(np.int8)
    strands += pairs[to + 1] & ~pairs[to + 2]
    return strands


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
    pooled = pooled[lengths[pooled] == lengths[pooled].max()]  # the anchor is a longest run
    anchor = pooled[np.lexsort((starts[pooled], mean_dist[pooled]))[0]]
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
    need = q - int(lengths[anchor])
    # the runs in order (longest, same section, nearest the anchor, first): the first j are
    # taken whole and one more finishes. Only the lengths decide j, so the order is needed
    # only among the runs of the j-th length; the rest need no sort.
    descending = np.sort(lengths[rest])[::-1]
    covered = np.cumsum(descending)
    j = int(np.searchsorted(covered, need))
    left = pool.copy()
    chosen = [int(anchor)]
    if j:
        shortest = descending[j - 1]
        longer = rest[lengths[rest] > shortest]
        level = rest[lengths[rest] == shortest]
        level = level[np.lexsort((starts[level], near[level], other[level]))[: j - longer.size]]
        taken = np.concatenate((longer, level))
        left[taken] = False
        chosen += taken.tolist()
    last_need = need - (int(covered[j - 1]) if j else 0)
    tail = np.flatnonzero(left & (lengths >= last_need))
    # the finishing run: same section first, then nearest the anchor, then first
    tail = tail[other[tail] == other[tail].min()]
    tail = tail[near[tail] == near[tail].min()]
    last = tail[np.argmin(starts[tail])]
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
    return _best_sets(table, eligible, free, quantity, limit)


def _best_sets(
    table: SeatTable, eligible: np.ndarray, free: np.ndarray, q: int, limit: int
) -> list[list[int]]:
    """``rank_best_available`` over a mask of at least q eligible seats."""
    starts = _ranked_windows(table, eligible, free, q, 0, len(table), limit)
    if starts.size:
        return [list(range(int(start), int(start) + q)) for start in starts]
    blocks = _fewest_blocks(table, eligible, free, q)
    if blocks is not None:
        return [blocks]
    return [_individually_best(table, eligible, q)]


def _bands(
    table: SeatTable,
    eligible: np.ndarray,
    free: np.ndarray,
    q: int,
    limit: int,
    *,
    disjoint: bool = False,
) -> list[list[int]]:
    """Up to ``limit`` bands (see the module docstring), best first; empty when the fewest
    blocks cannot all lie in consecutive rows of one section. ``disjoint``: only bands that
    share no row with a better one (alternatives to offer side by side)."""
    starts, lengths = _runs(table._adjacent, eligible)
    k = _min_blocks(lengths, q) if lengths.size else None
    n_rows = int(table.row.max()) + 1 if len(table) else 0
    if k is None or k > n_rows:
        return []
    dist = table._prefix["distance"]
    run_dist = dist[starts + lengths] - dist[starts]  # exact integer millimetres
    run_row = table.row[starts]
    best = np.full(n_rows, -1, dtype=np.int64)
    rows, first = _best_run_per_row(run_row, lengths, run_dist, starts)
    best[rows] = first
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
    ranked = lo[np.lexsort((lo, mean))]
    if disjoint:
        kept: list[int] = []
        apart: list[int] = []  # kept, sorted: a band is the window of k rows from its first
        for r in ranked.tolist():
            if not _overlaps(apart, r, k):
                kept.append(r)
                bisect.insort(apart, r)
                if len(kept) == limit:
                    break
        ranked = np.array(kept, dtype=np.int64)
    chosen = ranked[:limit]
    return [_fill_band(table, eligible, free, q, best[r : r + k], starts, lengths) for r in chosen]


def _best_run_per_row(
    run_row: np.ndarray, lengths: np.ndarray, run_dist: np.ndarray, starts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, run)``: each row's best run — longest, then closest to the stage, then first."""
    if run_row.size and bool(np.all(run_row[1:] >= run_row[:-1])):
        # runs come in row order (rows are contiguous in seat order): reduce per row
        head = np.flatnonzero(np.concatenate(([True], run_row[1:] != run_row[:-1])))
        size = np.diff(np.append(head, run_row.size))
        longest = lengths == np.repeat(np.maximum.reduceat(lengths, head), size)
        far = np.iinfo(np.int64).max
        gap = np.where(longest, run_dist, far)
        best = longest & (gap == np.repeat(np.minimum.reduceat(gap, head), size))
        at = np.where(best, np.arange(run_row.size), run_row.size)
        return run_row[head], np.minimum.reduceat(at, head)
    order = np.lexsort((starts, run_dist, -lengths, run_row))
    rows, first = np.unique(run_row[order], return_index=True)
    return rows, order[first]


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


# --- recommendations -------------------------------------------------------------------------

# Overall score: the weights of the four named scores (they add up to 1).
WEIGHTS = {"similarity": 0.35, "location": 0.30, "value": 0.20, "group": 0.15}
# Similarity: the weights of its parts (renormalised over the parts the taste has).
TASTE_WEIGHTS = {"sections": 0.4, "rows": 0.3, "price": 0.3}
NEUTRAL_SIMILARITY = 0.5
# Group: one block that strands nothing, then by strands (0, 1 or 2 sides) ...
GROUP_TOGETHER = (1.0, 0.6, 0.45)
# ... and a split set of b blocks: GROUP_SPLIT * 2 / b, doubled in a band of adjacent rows.
GROUP_SPLIT = 0.2
# The candidate pool: at most half from the best blocks overall, the rest the best blocks of
# each (section, row band) so that a taste for other sections or rows finds some.
ROW_BANDS = 3
# When no one block fits, the most bands of adjacent rows scored (of the preferred sections,
# then of all), each sharing no row with a better one: as many as an answer shows.
SPLIT_BANDS = 5


def _is_int(value: object, minimum: int) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        return False
    return bool(value >= minimum)


@dataclass(frozen=True)
class SeatPreferences:
    """What a buyer asks for; equal preferences share one candidate search."""

    quantity: int
    max_price_cents: int | None = None  # per seat, hard filter
    preferred_sections: frozenset[str] = frozenset()  # section names: raise, never exclude
    accessibility_required: bool = False  # >= 1 accessible seat, with companions beside it

    def __post_init__(self) -> None:
        if not _is_int(self.quantity, 1):
            raise ValueError(f"quantity must be an int >= 1, got {self.quantity!r}")
        price = self.max_price_cents
        if price is not None and not _is_int(price, 0):
            raise ValueError(f"max_price_cents must be an int >= 0 or None, got {price!r}")
        object.__setattr__(self, "quantity", int(self.quantity))
        object.__setattr__(self, "max_price_cents", None if price is None else int(price))
        object.__setattr__(self, "preferred_sections", frozenset(self.preferred_sections))
        object.__setattr__(self, "accessibility_required", bool(self.accessibility_required))

    def key(self) -> tuple[int, int | None, tuple[str, ...], bool]:
        """A hashable canonical key: equal for equal preferences, whatever the order of the
        sections."""
        return (
            self.quantity,
            self.max_price_cents,
            tuple(sorted(self.preferred_sections)),
            self.accessibility_required,
        )


@dataclass(frozen=True)
class Taste:
    """What a user's past tickets (at any venue) say about the seats they like."""

    sections: Mapping[str, float]  # share of past tickets per section name
    row_rank: float | None  # mean relative row position, 0 front .. 1 back
    price_cents: float | None  # mean past price per seat

    @classmethod
    def from_history(cls, tickets: Iterable[tuple[str, float, int]]) -> Taste | None:
        """The taste of ``(section name, row rank 0..1, price cents)`` per past ticket; None
        for no tickets."""
        counts: dict[str, int] = {}
        ranks: list[float] = []
        prices: list[float] = []
        for section, rank, price in tickets:
            counts[section] = counts.get(section, 0) + 1
            ranks.append(min(max(float(rank), 0.0), 1.0))
            prices.append(float(price))
        if not ranks:
            return None
        total = len(ranks)
        return cls(
            sections={name: count / total for name, count in counts.items()},
            row_rank=sum(ranks) / total,
            price_cents=sum(prices) / total,
        )


@dataclass(frozen=True)
class Candidate:
    """A seat set and its non-personal scores, shared by every user with the same
    preferences. ``group`` is 1 exactly when the seats are one block that strands no seat."""

    seats: tuple[int, ...]  # seat indices in table order
    total_cents: int
    together: bool
    value: float
    location: float
    group: float
    preferred: bool  # every seat in a preferred section (False when none were named)


@dataclass(frozen=True)
class SeatRecommendation:
    """A recommended seat set, its overall score and the four scores it is made of."""

    seats: tuple[int, ...]
    total_cents: int
    together: bool
    score: float
    similarity: float
    value: float
    location: float
    group: float


def seat_candidates(
    table: SeatTable,
    free: np.ndarray,
    prices_cents: np.ndarray,
    section_names: Sequence[str],
    prefs: SeatPreferences,
    pool: int = 40,
) -> tuple[Candidate, ...]:
    """The non-personal search: up to ``pool`` candidate seat sets for ``prefs``, best first
    for a neutral taste (see the module docstring); they may overlap.

    Args:
        table: the seats.
        free: bool per seat, False for held and sold seats.
        prices_cents: int per seat, its current price.
        section_names: name of each section code of ``table.section``.
        prefs: the quantity, filters and preferred sections.
        pool: the most candidates returned, >= 1.

    Returns:
        The candidates; empty when nothing passes the filters.

    Raises:
        ValueError: an array of the wrong shape, section names that do not match the table,
            an unknown preferred section, or a pool below 1.
    """
    n = len(table)
    free = np.asarray(free, dtype=np.bool_)
    prices = np.asarray(prices_cents, dtype=np.int64)
    for name, array in (("free", free), ("prices_cents", prices)):
        if array.shape != (n,):
            raise ValueError(f"{name} has shape {array.shape}, expected ({n},)")
    if len(section_names) != len(table.section_names):
        raise ValueError("section_names must name every section code of the table")
    unknown = sorted(prefs.preferred_sections - set(section_names))
    if unknown:
        raise ValueError(f"unknown sections: {', '.join(unknown)}")
    if pool < 1:
        raise ValueError(f"pool must be >= 1, got {pool!r}")
    q = prefs.quantity
    eligible = free.copy()
    if prefs.max_price_cents is not None:
        eligible &= prices <= prefs.max_price_cents
    if int(np.count_nonzero(eligible)) < q:
        return ()
    codes = [i for i, name in enumerate(section_names) if name in prefs.preferred_sections]
    preferred = np.isin(table.section, codes)
    search = _Search(table, free, eligible, prices, preferred, prefs, bool(codes))
    found = search.windows(pool)
    if found:
        return found
    return search.split(pool)


def rank_candidates(
    table: SeatTable,
    candidates: Sequence[Candidate],
    section_names: Sequence[str],
    prices_cents: np.ndarray,
    taste: Taste | None,
    top: int = 5,
) -> list[SeatRecommendation]:
    """The personal re-rank: add the user's similarity to shared candidates, score them,
    and keep the best ``top`` of them of which no two share a seat, best first.

    Args:
        table: the seats the candidates were chosen from.
        candidates: from ``seat_candidates``.
        section_names: name of each section code of ``table.section``.
        prices_cents: int per seat, the prices to show (and to compare with the taste).
        taste: the user's taste; None gives every candidate a neutral similarity (0.5).
        top: the most recommendations returned.

    Returns:
        The recommendations, best first (ties: the lowest first seat).
    """
    if not candidates or top < 1:
        return []
    prices = np.asarray(prices_cents, dtype=np.int64)
    seats = np.concatenate([np.asarray(c.seats, dtype=np.int64) for c in candidates])
    sizes = np.fromiter((len(c.seats) for c in candidates), dtype=np.int64, count=len(candidates))
    owner = np.repeat(np.arange(len(candidates)), sizes)
    totals = np.add.reduceat(prices[seats], np.cumsum(sizes) - sizes)  # exact cents
    similarity = _similarity(table, section_names, taste, seats, owner, sizes, totals / sizes)
    columns = {
        name: np.fromiter((getattr(c, name) for c in candidates), np.float64, len(candidates))
        for name in ("value", "location", "group")
    }
    base = WEIGHTS["similarity"] * similarity
    for name, column in columns.items():
        base += WEIGHTS[name] * column
    together = np.fromiter((c.together for c in candidates), np.bool_, len(candidates))
    clean = together & (columns["group"] >= GROUP_TOGETHER[0])
    preferred = np.fromiter((c.preferred for c in candidates), np.bool_, len(candidates))
    tiers = 4.0 if preferred.any() else 2.0
    score = np.clip((2.0 * preferred + clean + np.clip(base, 0.0, 1.0)) / tiers, 0.0, 1.0)
    first = np.fromiter((c.seats[0] for c in candidates), np.int64, len(candidates))
    taken: set[int] = set()
    chosen: list[SeatRecommendation] = []
    for i in np.lexsort((first, -score)).tolist():
        candidate = candidates[i]
        if taken.intersection(candidate.seats):
            continue
        taken.update(candidate.seats)
        chosen.append(
            SeatRecommendation(
                seats=candidate.seats,
                total_cents=int(totals[i]),
                together=candidate.together,
                score=float(score[i]),
                similarity=float(similarity[i]),
                value=candidate.value,
                location=candidate.location,
                group=candidate.group,
            )
        )
        if len(chosen) == top:
            break
    return chosen


def _similarity(
    table: SeatTable,
    section_names: Sequence[str],
    taste: Taste | None,
    seats: np.ndarray,
    owner: np.ndarray,
    sizes: np.ndarray,
    mean_price: np.ndarray,
) -> np.ndarray:
    """Per candidate: how much its seats look like the taste's, in [0, 1]."""
    count = sizes.size
    if taste is None:
        return np.full(count, NEUTRAL_SIMILARITY)
    parts: list[tuple[float, np.ndarray]] = []
    if taste.sections:
        best = max(taste.sections.values())
        share = np.array([taste.sections.get(name, 0.0) for name in section_names]) / (
            best if best > 0 else 1.0
        )
        in_liked = np.bincount(owner, weights=share[table.section[seats]], minlength=count)
        parts.append((TASTE_WEIGHTS["sections"], in_liked / sizes))
    if taste.row_rank is not None:
        rank = np.bincount(owner, weights=table._row_rank[seats], minlength=count) / sizes
        parts.append((TASTE_WEIGHTS["rows"], 1.0 - np.abs(rank - taste.row_rank)))
    if taste.price_cents is not None:
        usual = taste.price_cents
        scale = np.maximum(np.maximum(mean_price, usual), 1.0)
        parts.append((TASTE_WEIGHTS["price"], 1.0 - np.abs(mean_price - usual) / scale))
    if not parts:
        return np.full(count, NEUTRAL_SIMILARITY)
    weight = sum(w for w, _ in parts)
    return np.clip(sum(w * part for w, part in parts) / weight, 0.0, 1.0)


class _Search:
    """One ``seat_candidates`` call: the filters applied, and the per-seat arrays its
    candidates are scored from."""

    def __init__(
        self,
        table: SeatTable,
        free: np.ndarray,
        eligible: np.ndarray,
        prices: np.ndarray,
        preferred: np.ndarray,
        prefs: SeatPreferences,
        boost: bool,
    ) -> None:
        self.table, self.free, self.eligible, self.prices = table, free, eligible, prices
        self.preferred, self.prefs, self.boost = preferred, prefs, boost
        self.q = prefs.quantity
        self.price_sum = _prefix_sum(prices)
        # value: a seat set's fair price is the venue's price per unit of quality times its
        # quality; value = fair / (fair + asked), 0.5 when it asks exactly the fair price
        quality = table._sums["quality"]
        self.per_quality = float(prices.sum()) / max(float(quality[-1]), _EPS)

    def _value(self, quality: np.ndarray, asked: np.ndarray) -> np.ndarray:
        fair = self.per_quality * quality
        both = fair + asked
        return np.clip(np.where(both > 0, fair / np.where(both > 0, both, 1.0), 0.5), 0.0, 1.0)

    def windows(self, pool: int) -> tuple[Candidate, ...]:
        """Candidates of one block each: every window of q side-by-side eligible seats
        (holding an accessible seat, if asked) is scored; the pool is picked from them."""
        table, q, eligible = self.table, self.q, self.eligible
        n = len(table)
        link = _prefix_sum(table._adjacent & eligible[:-1] & eligible[1:])
        starts = np.flatnonzero(eligible[: n - q + 1])
        starts = starts[link[starts + q - 1] - link[starts] == q - 1]
        if self.prefs.accessibility_required:
            accessible = table._sums["accessible"]
            starts = starts[accessible[starts + q] > accessible[starts]]
        if starts.size == 0:
            return ()
        ends = starts + q
        sums = table._sums
        # (prefix-sum differences can stray past 1 by a rounding error)
        location = np.clip((sums["location"][ends] - sums["location"][starts]) / q, 0.0, 1.0)
        asked = self.price_sum[ends] - self.price_sum[starts]
        value = self._value(sums["quality"][ends] - sums["quality"][starts], asked)
        strands = _strands(table, self.free, starts, q)
        group = np.asarray(GROUP_TOGETHER)[strands]
        preferred = self.preferred[starts]
        key = _neutral_score(location, value, group, strands == 0, preferred, self.boost)
        picked = np.asarray(_pick_pool(table, starts, key, q, pool), dtype=np.int64)
        columns = zip(
            starts[picked].tolist(),
            asked[picked].tolist(),
            value[picked].tolist(),
            location[picked].tolist(),
            group[picked].tolist(),
            preferred[picked].tolist(),
            strict=True,
        )
        return tuple(
            Candidate(tuple(range(start, start + q)), cents, True, v, loc, g, pref)
            for start, cents, v, loc, g, pref in columns
        )

    def split(self, pool: int) -> tuple[Candidate, ...]:
        """Candidates when no one block fits: bands of adjacent rows (of the preferred
        sections first), else the fewest blocks, else the individually best seats."""
        table, q, eligible, free = self.table, self.q, self.eligible, self.free
        sets: list[list[int]] = []
        if self.boost:
            in_preferred = eligible & self.preferred
            if int(np.count_nonzero(in_preferred)) >= q:
                sets += _bands(table, in_preferred, free, q, min(pool, SPLIT_BANDS), disjoint=True)
        sets += _bands(table, eligible, free, q, min(pool, SPLIT_BANDS), disjoint=True)
        if not sets:
            blocks = _fewest_blocks(table, eligible, free, q)
            sets = [blocks] if blocks is not None else [_individually_best(table, eligible, q)]
        if self.prefs.accessibility_required:
            sets = [s for s in sets if _accompanied(table, s)]
            if not sets:
                fallback = _accessible_split(table, eligible, free, q)
                sets = [fallback] if fallback is not None else []
        unique = list({tuple(s): None for s in sets})[:pool]
        found = [self._split_candidate(np.asarray(s, dtype=np.int64)) for s in unique]
        found.sort(key=lambda c: (-(2.0 * c.preferred + _neutral_base(c)), c.seats[0]))
        return tuple(found)

    def _split_candidate(self, seats: np.ndarray) -> Candidate:
        table = self.table
        location = float(table._location[seats].mean())
        quality = float((QUALITY_FLOOR + (1.0 - QUALITY_FLOOR) * table._location[seats]).sum())
        asked = int(self.prices[seats].sum())
        value = float(self._value(np.array([quality]), np.array([asked]))[0])
        joined = (np.diff(seats) == 1) & table._adjacent[seats[:-1]]
        blocks = 1 + int(np.count_nonzero(~joined))
        # rows and sections are contiguous in seat order, so sorted seats visit each once
        row = table.row[seats]
        rows = 1 + int(np.count_nonzero(np.diff(row)))
        band = (
            blocks == rows
            and int(row[-1] - row[0]) + 1 == rows
            and table.section[seats[0]] == table.section[seats[-1]]
        )
        group = min(GROUP_SPLIT * (2.0 if band else 1.0) * 2.0 / max(blocks, 2), GROUP_TOGETHER[2])
        return Candidate(
            seats=tuple(seats.tolist()),
            total_cents=asked,
            together=False,
            value=min(max(value, 0.0), 1.0),
            location=min(max(location, 0.0), 1.0),
            group=group,
            preferred=self.boost and bool(self.preferred[seats].all()),
        )


def _neutral_base(c: Candidate) -> float:
    return float(
        WEIGHTS["similarity"] * NEUTRAL_SIMILARITY
        + WEIGHTS["location"] * c.location
        + WEIGHTS["value"] * c.value
        + WEIGHTS["group"] * c.group
    )


def _neutral_score(
    location: np.ndarray,
    value: np.ndarray,
    group: np.ndarray,
    clean: np.ndarray,
    preferred: np.ndarray,
    boost: bool,
) -> np.ndarray:
    """The order ``rank_candidates`` gives a neutral taste (its score up to a factor)."""
    base = (
        WEIGHTS["similarity"] * NEUTRAL_SIMILARITY
        + WEIGHTS["location"] * location
        + WEIGHTS["value"] * value
        + WEIGHTS["group"] * group
    )
    key: np.ndarray = clean + base
    if boost:
        key = key + 2.0 * preferred
    return key


def _pick_pool(
    table: SeatTable, starts: np.ndarray, key: np.ndarray, q: int, pool: int
) -> list[int]:
    """Positions in ``starts`` of up to ``pool`` windows of q seats: first the best windows
    overall that do not overlap (half the pool), then, round by round, the next best row of
    each (section, row band) stratum, each row offering its best window."""
    overall = _disjoint_best(starts, key, q, max(1, pool // 2))
    picked = list(overall)
    taken = sorted(int(starts[i]) for i in picked)
    # each row's best window: rows are contiguous in index order, so are their windows
    row = table.row[starts]
    head = np.flatnonzero(np.concatenate(([True], row[1:] != row[:-1])))
    best_in_row = np.maximum.reduceat(key, head)
    size = np.diff(np.append(head, starts.size))
    is_best = key == np.repeat(best_in_row, size)
    firsts = np.minimum.reduceat(np.where(is_best, np.arange(starts.size), starts.size), head)
    rank = table._row_rank[starts[firsts]]
    stratum = table.section[starts[firsts]].astype(np.int64) * ROW_BANDS + np.minimum(
        (rank * ROW_BANDS).astype(np.int64), ROW_BANDS - 1
    )
    by_key = np.lexsort((starts[firsts], -key[firsts], stratum))
    order, by_stratum = firsts[by_key], stratum[by_key]
    head_of = np.flatnonzero(np.concatenate(([True], by_stratum[1:] != by_stratum[:-1])))
    bounds = np.append(head_of, order.size)
    depth = 0
    while len(picked) < pool:
        added = False
        for s in range(head_of.size):
            at = bounds[s] + depth
            if at >= bounds[s + 1]:
                continue
            added = True
            i = int(order[at])
            if _overlaps(taken, int(starts[i]), q):
                continue
            picked.append(i)
            bisect.insort(taken, int(starts[i]))
            if len(picked) == pool:
                break
        if not added:
            break
        depth += 1
    return sorted(picked, key=lambda i: (-float(key[i]), int(starts[i])))


def _disjoint_best(starts: np.ndarray, key: np.ndarray, q: int, count: int) -> list[int]:
    """Positions of the ``count`` best windows (by key, then start) that share no seat,
    chosen greedily."""
    # each window taken can rule out at most 2q - 2 others: this many always suffice
    reach = min(starts.size, count * (2 * q - 1))
    top = np.argpartition(-key, reach - 1)[:reach] if reach < starts.size else np.arange(reach)
    top = top[np.lexsort((starts[top], -key[top]))]
    chosen: list[int] = []
    taken: list[int] = []
    for i in top.tolist():
        start = int(starts[i])
        if _overlaps(taken, start, q):
            continue
        chosen.append(i)
        bisect.insort(taken, start)
        if len(chosen) == count:
            break
    return chosen


def _overlaps(taken: list[int], start: int, q: int) -> bool:
    """Whether a window of q seats from ``start`` overlaps one of the sorted ``taken``."""
    at = bisect.bisect_left(taken, start - q + 1)
    return at < len(taken) and taken[at] < start + q


def _individually_best(table: SeatTable, eligible: np.ndarray, q: int) -> list[int]:
    """The q eligible seats closest to the stage (ties: nearest the centre line, then index)."""
    candidates = np.flatnonzero(eligible)
    order = np.lexsort((candidates, np.abs(table.x[candidates]), table.distance[candidates]))
    return np.sort(candidates[order[:q]]).tolist()


def _accompanied(table: SeatTable, seats: Sequence[int]) -> bool:
    """Whether some seat of the set is accessible with a companion of the set beside it (a
    set of one needs only the accessible seat)."""
    chosen = set(seats)
    for seat in seats:
        if not table.accessible[seat]:
            continue
        if len(chosen) == 1:
            return True
        if seat + 1 in chosen and table._adjacent[seat]:
            return True
        if seat - 1 in chosen and seat > 0 and table._adjacent[seat - 1]:
            return True
    return False


def _accessible_split(
    table: SeatTable, eligible: np.ndarray, free: np.ndarray, q: int
) -> list[int] | None:
    """q seats whose first block is the closest run holding an accessible seat (as much of
    it as the group needs, around that seat), the rest the fewest blocks of what is left."""
    starts, lengths = _runs(table._adjacent, eligible)
    accessible = table._sums["accessible"]
    holds = (lengths >= 2) & (accessible[starts + lengths] > accessible[starts])
    if not holds.any():
        return None
    dist = table._prefix["distance"]
    runs = np.flatnonzero(holds)
    mean = (dist[starts[runs] + lengths[runs]] - dist[starts[runs]]) / lengths[runs]
    run = int(runs[np.lexsort((starts[runs], mean))[0]])
    lo, hi = int(starts[run]), int(starts[run] + lengths[run])
    k = min(q, hi - lo)
    seat = lo + int(np.flatnonzero(table.accessible[lo:hi])[0])
    begin = min(max(seat - k // 2, lo), hi - k)
    first = list(range(begin, begin + k))
    if k == q:
        return first
    rest = eligible.copy()
    rest[begin : begin + k] = False
    if int(np.count_nonzero(rest)) < q - k:
        return None
    return sorted(first + _best_sets(table, rest, free, q - k, 1)[0])
