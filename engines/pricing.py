"""Dynamic prices for every section of every event at once: pure, vectorised, in cents.

Idea. Each (event, section) row gets a *target* price from its state alone::

    new_cents = round_half_up(base_cents * (1 + clamp(demand + time + velocity + waitlist)))

Every factor is a signed fraction of the BASE price (0.12 = +12 %), and the current price
is no input of the target, only of the decision to apply it. So prices cannot compound (the
seed system multiplied the current price each run: 100 fell to 41 in eight runs) and, with
the state unchanged, the target of tick 2 is the target of tick 1: a fixed point, no drift.

Factors, with u = (sold + held) / capacity; the weights are the module constants below::

    factor    neutral (0) when              extremes
    demand    0.30 <= u <= 0.70             u = 0: -0.15 (linear below 0.30)
                                            u = 1: +0.25 (linear above 0.70)
    time      7 days or more to the start   at (or past) the start: +0.10 (linear ramp)
    velocity  recent bookings at or below   4x the normal rate: +0.152 (tanh of log4 ratio)
              the event's normal rate       saturates at +0.20; never negative
    waitlist  nobody waiting                waiting = remaining seats: +0.114
                                            (tanh of the ratio), saturates at +0.15

Velocity is never negative: when sales stop, the window empties and the factor returns to
0 and stays there however the baseline decays, so a quiet event settles and stays settled.
The only discount is the demand factor (an unsold event starts below base, early-bird).

Clamping and attribution. The raw sum of the factors, in [-0.15, +0.70] with these weights,
is clamped to [MIN_CHANGE, MAX_CHANGE] = [-0.20, +0.50] by scaling every factor by the same
number (clamped / raw), so each keeps its sign and share. Then, in integer arithmetic:

1. the multiplier is the clamped sum rounded to the nearest part per million (ppm);
2. ``new = (base * (10**6 + ppm) + 500_000) // 10**6``: rounded half up to the cent, exact;
3. new is clipped to ``[ceil(0.8 * base), floor(1.5 * base)]`` in cents, so rounding can
   never take a price a cent outside the bounds;
4. the rounding residual ``(new - base) / base - clamped sum`` (under one cent's worth,
   1 / base) is shared among the factors in proportion to their size, so
   ``sum(factors) == (new - base) / base`` and ``round_half_up(base * (1 + sum(factors)))
   == new`` for every row: the factors always add up to the change they explain.

Applying. A target replaces the current price when it differs by at least 1 % of the
CURRENT price (``|new - current| * 100 >= current``, exact) or when the current price lies
outside the bounds (a price set by hand is pulled inside at the next tick, however small the
step). Invariants, checked by property tests in tests/engines/test_pricing.py: the price in
force after any tick is within the bounds whatever it was before, and with unchanged state
no tick after the first applies anything.

Velocity. Recent bookings in a sliding window (VELOCITY_WINDOW_SECONDS) are compared with
the bookings the event's OWN normal rate predicts for that window. The normal rate is an
EWMA of per-interval counts fed with each interval as it *leaves* the window, so the
baseline never contains the burst it is compared with; it starts from a prior (selling out
evenly over PRIOR_SELL_THROUGH_SECONDS) and forgets with VELOCITY_HALF_LIFE_SECONDS. The
ratio is smoothed by a few pseudo-bookings, so two bookings of a tiny event are no surge and
an event without history is neutral: ``ratio = (recent + 2) / (normal + 2)``.

Use (the leader's tick): keep a `VelocityState` (`start_velocity`, `realign_velocity` as
events come and go), call `update_velocity` once per interval with each event's bookings
since the last, build `PricingInputs` with its ``recent_bookings()`` and
``normal_bookings()``, call `quote_prices`, write the rows where ``applied``. An on-demand
update reads the state without advancing it. Nothing here reads a clock: time to the
start comes in as seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

# --- weights: each factor's value at its extreme, as a fraction of the base price ------------

#: Utilisation below which the demand factor discounts, linearly down to -DEMAND_DISCOUNT at 0.
DEMAND_LOW = 0.30
DEMAND_DISCOUNT = 0.15
#: Utilisation above which the demand factor adds, linearly up to +DEMAND_PREMIUM when full.
DEMAND_HIGH = 0.70
DEMAND_PREMIUM = 0.25
#: The time factor ramps linearly from 0 at TIME_RAMP_SECONDS before the start to the premium.
TIME_RAMP_SECONDS = 7 * 86_400.0
TIME_PREMIUM = 0.10
#: Velocity: VELOCITY_PREMIUM * tanh(log(ratio) / log(VELOCITY_RATIO_SCALE)) for ratio > 1.
VELOCITY_PREMIUM = 0.20
VELOCITY_RATIO_SCALE = 4.0
#: Pseudo-bookings added to both sides of the velocity ratio (noise floor and cold start).
VELOCITY_PSEUDO_BOOKINGS = 2.0
#: Waitlist: WAITLIST_PREMIUM * tanh(waitlisted / remaining seats of the event).
WAITLIST_PREMIUM = 0.15

# --- bounds and the minimum step ---------------------------------------------------------------

MAX_CHANGE = 0.50
MIN_CHANGE = -0.20
#: A target is applied only if it moves the current price by at least this percentage.
MIN_STEP_PERCENT = 1
#: Largest base or current price accepted, so every product below fits in int64 exactly.
MAX_CENTS = 10**12

# --- velocity state ------------------------------------------------------------------------------

VELOCITY_WINDOW_SECONDS = 300.0
VELOCITY_HALF_LIFE_SECONDS = 2 * 3600.0
PRIOR_SELL_THROUGH_SECONDS = 30 * 86_400.0

_PPM = 1_000_000
_MIN_PPM = round(MIN_CHANGE * _PPM)
_MAX_PPM = round(MAX_CHANGE * _PPM)
#: Rows per pass of `quote_prices`. Its temporaries stay small enough for the allocator to
#: recycle them: whole-array temporaries at 60,000 rows came back as fresh pages on every
#: call (2,200 page faults a call), which cost more than the arithmetic.
_CHUNK_ROWS = 4_096


class Factor(IntEnum):
    """Column of a factor in `PricingResult.factors`; its lower-case name is the JSON key."""

    DEMAND = 0
    TIME = 1
    VELOCITY = 2
    WAITLIST = 3


FACTOR_NAMES: tuple[str, ...] = tuple(f.name.lower() for f in Factor)

_ROW_COLUMNS = ("event", "base_cents", "current_cents", "capacity", "sold", "held")
_EVENT_INT_COLUMNS = ("waitlisted",)
_EVENT_FLOAT_COLUMNS = ("seconds_to_start", "recent_bookings", "normal_bookings")


def _chunks(n: int) -> list[slice]:
    return [slice(start, start + _CHUNK_ROWS) for start in range(0, n, _CHUNK_ROWS)]


def _int_column(name: str, value: object) -> np.ndarray:
    array = np.asarray(value)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    # An empty list arrives as float64; anything else must already be integral (no cents
    # silently truncated from a float).
    if array.size and array.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integers, got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


def _float_column(name: str, value: object) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    return array


@dataclass(frozen=True, eq=False)
class PricingInputs:
    """The state of every priced section, as flat column arrays.

    Row columns have one entry per (event, section); event columns one entry per event,
    reached from a row through ``event`` (give ``event = np.arange(n)`` and per-row values
    to price rows independently). Integer columns are int64, the others float64.
    """

    event: np.ndarray  # row -> index into the event columns
    base_cents: np.ndarray
    current_cents: np.ndarray
    capacity: np.ndarray  # seats in the section
    sold: np.ndarray
    held: np.ndarray
    seconds_to_start: np.ndarray  # per event; negative once started
    recent_bookings: np.ndarray  # per event: bookings in the velocity window
    normal_bookings: np.ndarray  # per event: bookings the normal rate predicts for it
    waitlisted: np.ndarray  # per event: seats asked for by the waitlist

    def __post_init__(self) -> None:
        for name in (*_ROW_COLUMNS, *_EVENT_INT_COLUMNS):
            object.__setattr__(self, name, _int_column(name, getattr(self, name)))
        for name in _EVENT_FLOAT_COLUMNS:
            object.__setattr__(self, name, _float_column(name, getattr(self, name)))

    @property
    def n_rows(self) -> int:
        return int(self.event.size)

    @property
    def n_events(self) -> int:
        return int(self.waitlisted.size)

    def validate(self) -> None:
        """Check shapes and ranges.

        Raises:
            ValueError: a column of the wrong length, an event index out of range, a
                negative count or price, a capacity under 1, a price over `MAX_CENTS`, or a
                non-finite float. Sold + held above capacity is accepted (counts read from a
                live system can race) and reads as full.
        """
        for group, names, size in (
            ("row", _ROW_COLUMNS, self.n_rows),
            ("event", (*_EVENT_INT_COLUMNS, *_EVENT_FLOAT_COLUMNS), self.n_events),
        ):
            for name in names:
                if getattr(self, name).size != size:
                    raise ValueError(
                        f"{group} column {name} has {getattr(self, name).size}, not {size}"
                    )
        if self.n_rows and not 0 <= self.event.min() <= self.event.max() < self.n_events:
            raise ValueError("event indexes must lie in 0..n_events-1")
        for name in ("base_cents", "current_cents"):
            column = getattr(self, name)
            if column.size and not 0 <= column.min() <= column.max() <= MAX_CENTS:
                raise ValueError(f"{name} must lie in 0..{MAX_CENTS}")
        if self.n_rows and self.capacity.min() < 1:
            raise ValueError("capacity must be at least 1")
        for name in ("sold", "held", "waitlisted"):
            column = getattr(self, name)
            if column.size and column.min() < 0:
                raise ValueError(f"{name} must not be negative")
        for name in _EVENT_FLOAT_COLUMNS:
            column = getattr(self, name)
            if not np.isfinite(column).all():
                raise ValueError(f"{name} must be finite")
        for name in ("recent_bookings", "normal_bookings"):
            column = getattr(self, name)
            if column.size and column.min() < 0:
                raise ValueError(f"{name} must not be negative")


@dataclass(frozen=True, eq=False)
class PricingResult:
    """One tick's outcome per row.

    ``new_cents`` is the target (what the state calls for) and ``factors`` explain it:
    ``round_half_up(base * (1 + factors[i].sum())) == new_cents[i]``. ``applied`` says
    whether it replaces the current price; ``price_cents`` is the price in force after the
    tick (``new_cents`` where applied, the current price elsewhere).
    """

    new_cents: np.ndarray  # int64
    applied: np.ndarray  # bool
    price_cents: np.ndarray  # int64
    factors: np.ndarray  # float64, (n_rows, len(Factor))

    def factors_of(self, row: int) -> dict[str, float]:
        """The factors of one row keyed by name, as the HTTP and WebSocket contracts show them."""
        return {f.name.lower(): float(self.factors[row, f]) for f in Factor}


# --- the factors, each a pure elementwise function --------------------------------------------


def demand_factor(utilisation: np.ndarray) -> np.ndarray:
    """Low-demand discount below `DEMAND_LOW`, high-demand premium above `DEMAND_HIGH`.

    Args:
        utilisation: (sold + held) / capacity; clipped to [0, 1].

    Returns:
        A fraction of the base price in [-DEMAND_DISCOUNT, +DEMAND_PREMIUM].
    """
    # Piecewise linear through these knots; np.interp holds the end values outside [0, 1].
    knots = (0.0, DEMAND_LOW, DEMAND_HIGH, 1.0)
    values = (-DEMAND_DISCOUNT, 0.0, 0.0, DEMAND_PREMIUM)
    out: np.ndarray = np.interp(utilisation, knots, values)
    return out


def time_factor(seconds_to_start: np.ndarray) -> np.ndarray:
    """Closer to the event is dearer: 0 up to `TIME_RAMP_SECONDS` out, then a linear ramp.

    Returns:
        A fraction in [0, TIME_PREMIUM]; the full premium at and after the start.
    """
    out: np.ndarray = np.interp(seconds_to_start, (0.0, TIME_RAMP_SECONDS), (TIME_PREMIUM, 0.0))
    return out


def velocity_factor(recent_bookings: np.ndarray, normal_bookings: np.ndarray) -> np.ndarray:
    """Sales faster than the event's own normal pace add a saturating premium.

    ``ratio = (recent + VELOCITY_PSEUDO_BOOKINGS) / (normal + VELOCITY_PSEUDO_BOOKINGS)``;
    the premium is ``VELOCITY_PREMIUM * tanh(log(ratio) / log(VELOCITY_RATIO_SCALE))`` for a
    ratio above 1 (2x: +0.092, 4x: +0.152, 16x: +0.193) and 0 otherwise: a slow spell is no
    discount, so a price does not creep while an event sells nothing.

    Args:
        recent_bookings: bookings in the velocity window, >= 0.
        normal_bookings: bookings the event's normal rate predicts for that window, >= 0.

    Returns:
        A fraction in [0, VELOCITY_PREMIUM).
    """
    ratio = (np.asarray(recent_bookings) + VELOCITY_PSEUDO_BOOKINGS) / (
        np.asarray(normal_bookings) + VELOCITY_PSEUDO_BOOKINGS
    )
    heat = np.maximum(np.log(ratio), 0.0) / math.log(VELOCITY_RATIO_SCALE)
    out: np.ndarray = VELOCITY_PREMIUM * np.tanh(heat)
    return out


def waitlist_factor(waitlisted: np.ndarray, remaining: np.ndarray) -> np.ndarray:
    """Waitlisted seats against the seats still free: ``WAITLIST_PREMIUM * tanh(ratio)``.

    A sold-out event counts as one remaining seat, so any queue there is full pressure.

    Returns:
        A fraction in [0, WAITLIST_PREMIUM).
    """
    pressure = np.asarray(waitlisted, dtype=np.float64) / np.maximum(remaining, 1)
    out: np.ndarray = WAITLIST_PREMIUM * np.tanh(pressure)
    return out


def _event_factors(inputs: PricingInputs) -> np.ndarray:
    """Time, velocity and waitlist of every event, shape (3, n_events)."""
    remaining = np.zeros(inputs.n_events, dtype=np.float64)
    for rows in _chunks(inputs.n_rows):
        free = inputs.capacity[rows] - inputs.sold[rows]
        free -= inputs.held[rows]
        np.maximum(free, 0, out=free)
        remaining += np.bincount(inputs.event[rows], weights=free, minlength=inputs.n_events)
    out = np.empty((3, inputs.n_events), dtype=np.float64)
    out[0] = time_factor(inputs.seconds_to_start)
    out[1] = velocity_factor(inputs.recent_bookings, inputs.normal_bookings)
    out[2] = waitlist_factor(inputs.waitlisted, remaining)
    return out


def _raw_rows(inputs: PricingInputs, event_factors: np.ndarray, rows: slice) -> np.ndarray:
    """The raw factors of some rows, factor-major: shape (len(Factor), rows)."""
    event = inputs.event[rows]
    out = np.empty((len(Factor), event.size), dtype=np.float64)
    used = inputs.sold[rows] + inputs.held[rows]
    out[Factor.DEMAND] = demand_factor(used / inputs.capacity[rows])
    # The event-level factors (rows of `_event_factors`: TIME, VELOCITY, WAITLIST, the
    # last three in `Factor` order), computed once per event, broadcast to its sections.
    np.take(event_factors, event, axis=1, out=out[Factor.TIME :])
    return out


def raw_factors(inputs: PricingInputs) -> np.ndarray:
    """The unclamped factors of every row, shape (n_rows, len(Factor)), columns in `Factor`
    order (a transposed view: each factor is contiguous, which the row sums need to be fast).
    """
    return _raw_rows(inputs, _event_factors(inputs), slice(None)).T


# --- settling: clamp, round, attribute, apply -----------------------------------------------


def price_bounds(base_cents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The allowed prices in whole cents: ``[ceil(0.8 * base), floor(1.5 * base)]``."""
    low = base_cents * -(_PPM + _MIN_PPM)
    low //= _PPM
    np.negative(low, out=low)  # -floor(-x) == ceil(x)
    high = base_cents * (_PPM + _MAX_PPM)
    high //= _PPM
    return low, high


def _settle(
    base_cents: np.ndarray, factors: np.ndarray, low: np.ndarray, high: np.ndarray
) -> np.ndarray:
    """Settle raw factors, factor-major (len(Factor), n), IN PLACE; return the targets.

    Factor-major, sums over the factors of a row are contiguous vector additions rather
    than a slow reduction over a short axis.
    """
    total = factors.sum(axis=0)
    clamped = np.clip(total, MIN_CHANGE, MAX_CHANGE)

    new = np.rint(clamped * _PPM).astype(np.int64)  # the multiplier in ppm
    new += _PPM
    new *= base_cents
    new += _PPM // 2
    new //= _PPM  # base * (1 + ppm / 10**6), rounded half up, exact
    np.maximum(new, low, out=new)
    np.minimum(new, high, out=new)

    # Clamp: one common scale per row (where the raw sum is 0, so is every scaled factor).
    np.divide(clamped, total, out=total, where=total != 0)
    factors *= total
    # Rounding: share the residual in proportion to each factor's size.
    residual = np.subtract(new, base_cents, dtype=np.float64)
    np.divide(residual, base_cents, out=residual, where=base_cents > 0)  # else 0 - 0
    residual -= factors.sum(axis=0)
    weight = np.abs(factors)
    weight_sum = weight.sum(axis=0)
    np.divide(residual, weight_sum, out=residual, where=weight_sum > 0)
    weight *= residual
    factors += weight
    return new


def settle_prices(base_cents: np.ndarray, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Turn raw factors into target prices and the factors that explain them exactly.

    Args:
        base_cents: int64 base prices, 0..MAX_CENTS.
        raw: float64 (n, len(Factor)) unclamped factors (not modified).

    Returns:
        ``(new_cents, factors)``: int64 targets within `price_bounds`, and the factors
        scaled to the clamp and nudged by the rounding residual, so that each row's sum is
        ``(new - base) / base`` (0 for a base of 0). See the module docstring.
    """
    factors = np.array(raw.T, dtype=np.float64, order="C")
    new = _settle(base_cents, factors, *price_bounds(base_cents))
    return new, factors.T


def _apply(
    new_cents: np.ndarray, current_cents: np.ndarray, low: np.ndarray, high: np.ndarray
) -> np.ndarray:
    step = np.abs(new_cents - current_cents)
    outside = current_cents < low
    outside |= current_cents > high
    big_enough = step * 100 >= current_cents * MIN_STEP_PERCENT
    big_enough |= outside
    big_enough &= step > 0
    return big_enough


def apply_mask(
    new_cents: np.ndarray, current_cents: np.ndarray, base_cents: np.ndarray
) -> np.ndarray:
    """Which targets replace the current price.

    Returns:
        True where the target differs from the current price by at least
        `MIN_STEP_PERCENT` % of the current price, or where the current price lies outside
        `price_bounds` (and the target differs from it).
    """
    return _apply(new_cents, current_cents, *price_bounds(base_cents))


def quote_prices(inputs: PricingInputs) -> PricingResult:
    """Price every row of ``inputs``, vectorised (in passes of `_CHUNK_ROWS` rows).

    Args:
        inputs: the state of every priced section (validated here).

    Returns:
        Targets, the apply decision, the price in force after the tick and the factors.

    Raises:
        ValueError: if ``inputs`` fails `PricingInputs.validate`.
    """
    inputs.validate()
    n = inputs.n_rows
    event_factors = _event_factors(inputs)
    new = np.empty(n, dtype=np.int64)
    applied = np.empty(n, dtype=np.bool_)
    factors = np.empty((len(Factor), n), dtype=np.float64)
    for rows in _chunks(n):
        base = inputs.base_cents[rows]
        low, high = price_bounds(base)
        chunk = _raw_rows(inputs, event_factors, rows)
        new[rows] = _settle(base, chunk, low, high)
        factors[:, rows] = chunk
        applied[rows] = _apply(new[rows], inputs.current_cents[rows], low, high)
    return PricingResult(
        new_cents=new,
        applied=applied,
        price_cents=np.where(applied, new, inputs.current_cents),
        factors=factors.T,
    )


# --- velocity: per-event sliding window and EWMA of the normal rate ------------------------


@dataclass(frozen=True, eq=False)
class VelocityState:
    """Booking counts per event: a ring of the last intervals and the normal rate.

    ``window[:, cursor]`` is the oldest interval, overwritten by the next update. An event's
    ``filled`` counts the real intervals in its ring (a new event's ring starts empty), so
    its recent bookings are compared with ``normal_rate * filled`` intervals. The arrays
    are made read-only: a state is a value, and `update_velocity` returns a new one.
    """

    window: np.ndarray  # (n_events, n_intervals) int64 bookings per interval
    filled: np.ndarray  # (n_events,) int64, 0..n_intervals
    normal_rate: np.ndarray  # (n_events,) float64 bookings per interval, the EWMA
    cursor: int
    alpha: float  # EWMA weight of one interval

    def __post_init__(self) -> None:
        for array in (self.window, self.filled, self.normal_rate):
            array.flags.writeable = False

    @property
    def n_events(self) -> int:
        return int(self.normal_rate.size)

    def recent_bookings(self) -> np.ndarray:
        """Bookings per event in the window (the `PricingInputs.recent_bookings` column)."""
        return self.window.sum(axis=1).astype(np.float64)

    def normal_bookings(self) -> np.ndarray:
        """What the normal rate predicts for the same intervals (`normal_bookings`)."""
        out: np.ndarray = self.normal_rate * self.filled
        return out


def velocity_prior(
    capacity: np.ndarray,
    *,
    interval_seconds: float,
    sell_through_seconds: float = PRIOR_SELL_THROUGH_SECONDS,
) -> np.ndarray:
    """A cold-start normal rate: the event selling out evenly over `sell_through_seconds`.

    Args:
        capacity: seats per event.
        interval_seconds: the length of one update interval.

    Returns:
        Bookings per interval, float64.
    """
    out: np.ndarray = np.asarray(capacity, dtype=np.float64) * (
        interval_seconds / sell_through_seconds
    )
    return out


def start_velocity(
    prior_rate: np.ndarray,
    *,
    interval_seconds: float,
    window_seconds: float = VELOCITY_WINDOW_SECONDS,
    half_life_seconds: float = VELOCITY_HALF_LIFE_SECONDS,
) -> VelocityState:
    """A state with no history: empty windows, the normal rate at its prior.

    Args:
        prior_rate: bookings per interval per event (see `velocity_prior`), >= 0.
        interval_seconds: the time between two `update_velocity` calls, > 0.
        window_seconds: the sliding window; rounded to whole intervals, at least one.
        half_life_seconds: after this long an interval weighs half in the normal rate.

    Raises:
        ValueError: on a non-positive duration or a negative prior.
    """
    if min(interval_seconds, window_seconds, half_life_seconds) <= 0:
        raise ValueError("interval, window and half-life must be positive")
    prior = np.array(prior_rate, dtype=np.float64)
    if prior.ndim != 1 or (prior.size and not (np.isfinite(prior).all() and prior.min() >= 0)):
        raise ValueError("prior_rate must be a 1-D array of finite rates >= 0")
    n_intervals = max(1, round(window_seconds / interval_seconds))
    return VelocityState(
        window=np.zeros((prior.size, n_intervals), dtype=np.int64),
        filled=np.zeros(prior.size, dtype=np.int64),
        normal_rate=prior,
        cursor=0,
        alpha=1.0 - 0.5 ** (interval_seconds / half_life_seconds),
    )


def update_velocity(state: VelocityState, counts: np.ndarray) -> VelocityState:
    """Advance one interval: its bookings enter the window, the oldest leaves into the EWMA.

    Args:
        state: the state before the interval (not modified).
        counts: int bookings per event during the interval, >= 0, in the state's order.

    Returns:
        The new state.

    Raises:
        ValueError: if ``counts`` has the wrong length, is not integral or is negative.
    """
    counts = _int_column("counts", counts)
    if counts.size != state.n_events or (counts.size and counts.min() < 0):
        raise ValueError(f"counts must be {state.n_events} non-negative integers")
    n_intervals = state.window.shape[1]
    leaving = state.window[:, state.cursor]
    # Only an interval that really happened may teach the baseline: a young event's ring
    # still holds empty slots, and feeding those zeros would drag its normal rate down.
    full = state.filled >= n_intervals
    normal = np.where(
        full, state.normal_rate + state.alpha * (leaving - state.normal_rate), state.normal_rate
    )
    window = state.window.copy()
    window[:, state.cursor] = counts
    return VelocityState(
        window=window,
        filled=np.minimum(state.filled + 1, n_intervals),
        normal_rate=normal,
        cursor=(state.cursor + 1) % n_intervals,
        alpha=state.alpha,
    )


def realign_velocity(
    state: VelocityState, source: np.ndarray, prior_rate: np.ndarray
) -> VelocityState:
    """Follow the set of priced events as it changes between ticks.

    Args:
        state: the current state.
        source: for each event of the new order, its index in ``state``, or -1 for an
            event new to pricing.
        prior_rate: per event of the new order, the cold-start rate used where
            ``source`` is -1 (other entries are ignored).

    Returns:
        A state in the new order; dropped events are forgotten.

    Raises:
        ValueError: on mismatched lengths or an index out of range.
    """
    source = _int_column("source", source)
    prior = np.asarray(prior_rate, dtype=np.float64)
    if prior.shape != source.shape:
        raise ValueError("source and prior_rate must have the same length")
    if source.size and not -1 <= source.min() <= source.max() < state.n_events:
        raise ValueError(f"source must lie in -1..{state.n_events - 1}")
    known = source >= 0
    window = np.zeros((source.size, state.window.shape[1]), dtype=np.int64)
    window[known] = state.window[source[known]]
    filled = np.zeros(source.size, dtype=np.int64)
    filled[known] = state.filled[source[known]]
    normal = prior.copy()
    normal[known] = state.normal_rate[source[known]]
    return VelocityState(
        window=window,
        filled=filled,
        normal_rate=normal,
        cursor=state.cursor,
        alpha=state.alpha,
    )
