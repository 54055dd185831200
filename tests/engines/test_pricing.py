from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engines.pricing import (
    FACTOR_NAMES,
    MAX_CENTS,
    Factor,
    PricingInputs,
    PricingResult,
    apply_mask,
    price_bounds,
    quote_prices,
    raw_factors,
    realign_velocity,
    settle_prices,
    start_velocity,
    update_velocity,
    velocity_factor,
    velocity_prior,
    waitlist_factor,
)

DAY = 86_400.0

# A single section whose every factor is neutral: half full, a month out, no bookings in the
# window, nobody waiting.
NEUTRAL: dict[str, Any] = {
    "base_cents": 10_000,
    "current_cents": 10_000,
    "capacity": 100,
    "sold": 50,
    "held": 0,
    "seconds_to_start": 30 * DAY,
    "recent_bookings": 0.0,
    "normal_bookings": 0.0,
    "waitlisted": 0,
}


def one(**overrides: Any) -> PricingInputs:
    """One event with one section, NEUTRAL unless overridden."""
    v = {**NEUTRAL, **overrides}
    return PricingInputs(
        event=np.array([0]),
        base_cents=np.array([v["base_cents"]]),
        current_cents=np.array([v["current_cents"]]),
        capacity=np.array([v["capacity"]]),
        sold=np.array([v["sold"]]),
        held=np.array([v["held"]]),
        seconds_to_start=np.array([v["seconds_to_start"]]),
        recent_bookings=np.array([v["recent_bookings"]]),
        normal_bookings=np.array([v["normal_bookings"]]),
        waitlisted=np.array([v["waitlisted"]]),
    )


def half_up(x: float) -> int:
    return math.floor(x + 0.5)


def assert_only(inputs: PricingInputs, factor: Factor, value: float) -> PricingResult:
    """Row 0's factors: `factor` equals `value`, every other one is 0.

    Exactly so before settling; after it, within the half cent by which the factors are
    nudged to explain the rounded price.
    """
    expected = [value if f is factor else 0.0 for f in Factor]
    assert raw_factors(inputs)[0] == pytest.approx(expected, abs=1e-12)
    result = quote_prices(inputs)
    assert result.factors[0] == pytest.approx(expected, abs=0.5 / inputs.base_cents[0])
    return result


# --- each factor alone ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sold", "held", "factor", "cents"),
    [
        (0, 0, -0.15, 8_500),  # empty: the full low-demand discount
        (15, 0, -0.075, 9_250),
        (30, 0, 0.0, 10_000),  # the neutral band starts
        (70, 0, 0.0, 10_000),  # and ends
        (85, 0, 0.125, 11_250),
        (100, 0, 0.25, 12_500),  # full: the full premium
        (50, 50, 0.25, 12_500),  # held seats count as used
        (90, 20, 0.25, 12_500),  # racing counts over capacity read as full
    ],
)
def test_demand_alone(sold: int, held: int, factor: float, cents: int) -> None:
    result = assert_only(one(sold=sold, held=held), Factor.DEMAND, factor)
    assert result.new_cents[0] == cents


@pytest.mark.parametrize(
    ("seconds", "factor", "cents"),
    [
        (30 * DAY, 0.0, 10_000),
        (7 * DAY, 0.0, 10_000),  # the ramp starts a week out
        (3.5 * DAY, 0.05, 10_500),
        (0.0, 0.10, 11_000),
        (-3_600.0, 0.10, 11_000),  # started: still the full premium, never more
    ],
)
def test_time_alone(seconds: float, factor: float, cents: int) -> None:
    result = assert_only(one(seconds_to_start=seconds), Factor.TIME, factor)
    assert result.new_cents[0] == cents


@pytest.mark.parametrize(
    ("recent", "normal", "factor"),
    [
        (0.0, 0.0, 0.0),  # no history, no sales: neutral
        (0.0, 100.0, 0.0),  # a slow spell is no discount
        (100.0, 100.0, 0.0),  # a big event at its usual pace is not hot
        (2.0, 0.0, 0.20 * math.tanh(0.5)),  # ratio (2+2)/(0+2) = 2
        (6.0, 0.0, 0.20 * math.tanh(1.0)),  # ratio 4: the scale
        (398.0, 98.0, 0.20 * math.tanh(1.0)),  # 4x the event's own normal
        (1e9, 0.0, 0.20),  # saturates
    ],
)
def test_velocity_alone(recent: float, normal: float, factor: float) -> None:
    inputs = one(recent_bookings=recent, normal_bookings=normal)
    result = assert_only(inputs, Factor.VELOCITY, factor)
    assert result.new_cents[0] == half_up(10_000 * (1 + factor))


@pytest.mark.parametrize(
    ("waitlisted", "factor"),
    [
        (0, 0.0),
        (25, 0.15 * math.tanh(0.5)),  # half the 50 remaining seats
        (50, 0.15 * math.tanh(1.0)),  # as many waiting as remain
        (5_000, 0.15),  # saturates
    ],
)
def test_waitlist_alone(waitlisted: int, factor: float) -> None:
    result = assert_only(one(waitlisted=waitlisted), Factor.WAITLIST, factor)
    assert result.new_cents[0] == half_up(10_000 * (1 + factor))


def test_waitlist_pressure_is_against_the_whole_events_remaining_seats() -> None:
    # Two sections: one sold out, one with 40 free. 40 waiting against 40 remaining.
    inputs = PricingInputs(
        event=np.array([0, 0]),
        base_cents=np.array([10_000, 10_000]),
        current_cents=np.array([10_000, 10_000]),
        capacity=np.array([100, 100]),
        sold=np.array([100, 60]),
        held=np.array([0, 0]),
        seconds_to_start=np.array([30 * DAY]),
        recent_bookings=np.array([0.0]),
        normal_bookings=np.array([0.0]),
        waitlisted=np.array([40]),
    )
    pressure = raw_factors(inputs)[:, Factor.WAITLIST]
    assert pressure == pytest.approx([0.15 * math.tanh(1.0)] * 2)


def test_a_sold_out_event_counts_one_remaining_seat() -> None:
    assert waitlist_factor(np.array([3]), np.array([0]))[0] == pytest.approx(0.15 * math.tanh(3))


def test_factors_of_uses_the_contract_names() -> None:
    result = quote_prices(one(sold=100))
    assert result.factors_of(0) == pytest.approx(
        {"demand": 0.25, "time": 0.0, "velocity": 0.0, "waitlist": 0.0}
    )
    assert FACTOR_NAMES == ("demand", "time", "velocity", "waitlist")


# --- bounds, rounding and attribution ----------------------------------------------------------


def test_everything_at_once_is_capped_at_plus_fifty_percent() -> None:
    hot = one(sold=100, seconds_to_start=0.0, recent_bookings=1e6, waitlisted=10_000)
    result = quote_prices(hot)
    assert result.new_cents[0] == 15_000
    # Clamped from about +0.70 by one common scale: each factor keeps its share.
    raw = np.array([0.25, 0.10, 0.20, 0.15])
    assert result.factors[0] == pytest.approx(raw * 0.5 / raw.sum(), abs=1e-6)
    assert result.factors[0].sum() == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("raw", "cents", "factors"),
    [
        ([-0.30, 0.0, 0.0, 0.0], 8_000, [-0.20, 0.0, 0.0, 0.0]),
        ([-0.40, 0.10, 0.0, 0.0], 8_000, [-0.40 * 2 / 3, 0.10 * 2 / 3, 0.0, 0.0]),
        ([0.40, 0.40, 0.0, 0.0], 15_000, [0.25, 0.25, 0.0, 0.0]),
        ([0.30, -0.10, 0.0, 0.0], 12_000, [0.30, -0.10, 0.0, 0.0]),  # inside: unchanged
    ],
)
def test_clamp_scales_every_factor_by_one_number(
    raw: list[float], cents: int, factors: list[float]
) -> None:
    new, got = settle_prices(np.array([10_000]), np.array([raw]))
    assert new[0] == cents
    assert got[0] == pytest.approx(factors)


@pytest.mark.parametrize(
    ("base", "change", "cents"),
    [
        (50, 0.01, 51),  # 50.5 rounds half up
        (250, 0.002, 251),  # 250.5
        (10, 0.04, 10),  # 10.4 rounds down
        (1_003, -0.20, 803),  # 802.4 would be below 0.8 x base: ceil(802.4)
        (1_001, 0.50, 1_501),  # 1501.5 would be above 1.5 x base: floor(1501.5)
        (0, 0.30, 0),  # a free section stays free
    ],
)
def test_rounding_is_half_up_and_never_crosses_a_bound(
    base: int, change: float, cents: int
) -> None:
    new, factors = settle_prices(np.array([base]), np.array([[change, 0.0, 0.0, 0.0]]))
    assert new[0] == cents
    assert 5 * new[0] >= 4 * base and 2 * new[0] <= 3 * base
    # The factors are nudged by the rounding: they explain the cents exactly.
    assert half_up(base * (1 + factors[0].sum())) == cents
    if base:
        assert factors[0].sum() == pytest.approx((cents - base) / base)


def test_price_bounds_are_whole_cents_inside_the_interval() -> None:
    low, high = price_bounds(np.array([10_000, 1_003, 1_001, 1]))
    assert low.tolist() == [8_000, 803, 801, 1]
    assert high.tolist() == [15_000, 1_504, 1_501, 1]


# --- the 1 % rule ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "applied"),
    [
        (10_000, False),  # no move
        (10_090, False),  # 90 is 0.89 % of the current price
        (9_910, False),  # 90 is 0.91 %
        (10_110, True),  # 110 is 1.09 %
        (9_890, True),  # 110 is 1.11 %
    ],
)
def test_a_move_under_one_percent_of_the_current_price_is_not_applied(
    current: int, applied: bool
) -> None:
    result = quote_prices(one(current_cents=current))  # the target is the base, 10 000
    assert result.new_cents[0] == 10_000
    assert bool(result.applied[0]) is applied
    assert result.price_cents[0] == (10_000 if applied else current)


@pytest.mark.parametrize(
    ("new", "current", "applied"),
    [
        (10_100, 10_000, True),  # exactly 1 %: applied
        (10_099, 10_000, False),
        (15_000, 15_050, True),  # current above the bound: pulled in whatever the step
        (8_000, 7_990, True),  # current below the bound
        (15_000, 15_000, False),
        (0, 0, False),
    ],
)
def test_apply_mask_table(new: int, current: int, applied: bool) -> None:
    mask = apply_mask(np.array([new]), np.array([current]), np.array([10_000 if new else 0]))
    assert bool(mask[0]) is applied


# --- vectorised equals one at a time ------------------------------------------------------


def random_inputs(rng: np.random.Generator, n_events: int, sections: int) -> PricingInputs:
    n = n_events * sections
    capacity = rng.integers(1, 500, n)
    sold = (capacity * rng.random(n)).astype(np.int64)
    base = rng.integers(0, 50_000, n)
    return PricingInputs(
        event=np.repeat(np.arange(n_events), sections),
        base_cents=base,
        current_cents=(base * rng.uniform(0.7, 1.6, n)).astype(np.int64),
        capacity=capacity,
        sold=sold,
        held=rng.integers(0, capacity - sold + 1),
        seconds_to_start=rng.uniform(-DAY, 20 * DAY, n_events),
        recent_bookings=rng.integers(0, 200, n_events).astype(np.float64),
        normal_bookings=rng.uniform(0, 100, n_events),
        waitlisted=rng.integers(0, 300, n_events) * (rng.random(n_events) < 0.5),
    )


def event_slice(inputs: PricingInputs, e: int) -> PricingInputs:
    rows = inputs.event == e
    return PricingInputs(
        event=np.zeros(int(rows.sum()), dtype=np.int64),
        base_cents=inputs.base_cents[rows],
        current_cents=inputs.current_cents[rows],
        capacity=inputs.capacity[rows],
        sold=inputs.sold[rows],
        held=inputs.held[rows],
        seconds_to_start=inputs.seconds_to_start[[e]],
        recent_bookings=inputs.recent_bookings[[e]],
        normal_bookings=inputs.normal_bookings[[e]],
        waitlisted=inputs.waitlisted[[e]],
    )


@pytest.mark.parametrize("sections", [1, 5])
def test_vectorised_equals_one_event_at_a_time(sections: int) -> None:
    rng = np.random.default_rng(7)
    # Over 4,096 rows, so quote_prices works in several passes and one event straddles two.
    inputs = random_inputs(rng, n_events=5_000 // sections, sections=sections)
    # Put every other current price within 0.5 % of its target, so both outcomes occur.
    near = (quote_prices(inputs).new_cents * rng.uniform(0.995, 1.005, inputs.n_rows)).astype(int)
    odd = np.arange(inputs.n_rows) % 2 == 1
    inputs = replace(inputs, current_cents=np.where(odd, near, inputs.current_cents))
    whole = quote_prices(inputs)
    assert whole.applied.any() and not whole.applied.all()
    for e in range(inputs.n_events):
        rows = inputs.event == e
        alone = quote_prices(event_slice(inputs, e))
        assert alone.new_cents.tolist() == whole.new_cents[rows].tolist()
        assert alone.applied.tolist() == whole.applied[rows].tolist()
        assert alone.price_cents.tolist() == whole.price_cents[rows].tolist()
        np.testing.assert_allclose(alone.factors, whole.factors[rows], rtol=0, atol=1e-12)


# --- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"base_cents": np.array([100.5])},  # cents must be integers
        {"capacity": np.array([0])},
        {"sold": np.array([-1])},
        {"event": np.array([1])},  # only one event
        {"current_cents": np.array([1, 2])},  # length mismatch
        {"seconds_to_start": np.array([np.nan])},
        {"recent_bookings": np.array([-1.0])},
        {"base_cents": np.array([MAX_CENTS + 1])},
        {"waitlisted": np.array([[1]])},
    ],
)
def test_invalid_inputs_are_refused(bad: dict[str, np.ndarray]) -> None:
    with pytest.raises(ValueError):
        quote_prices(replace(one(), **bad))


def test_no_rows_is_no_prices() -> None:
    none, nothing = np.zeros(0, dtype=np.int64), np.zeros(0)
    empty = PricingInputs(
        event=none, base_cents=none, current_cents=none, capacity=none, sold=none, held=none,
        seconds_to_start=nothing, recent_bookings=nothing, normal_bookings=nothing,
        waitlisted=none,
    )  # fmt: skip
    result = quote_prices(empty)
    assert result.new_cents.shape == (0,) and result.factors.shape == (0, 4)


# --- never compounding, never drifting, never out of bounds -------------------------------


def test_the_seed_systems_fall_from_100_to_41_cannot_happen() -> None:
    # Low demand: 9 of 100 seats sold, a month out, no sales, nobody waiting. The seed
    # system applied the change to the CURRENT price on every run.
    state = one(sold=9)
    change = quote_prices(state).factors[0].sum()
    assert change == pytest.approx(-0.105)
    compounded = 10_000 * (1 + change) ** 8
    assert half_up(compounded) == 4_117  # 100.00 -> 41.17 in eight runs: the seed's bug
    prices = []
    for _ in range(8):
        result = quote_prices(state)
        prices.append(int(result.price_cents[0]))
        state = replace(state, current_cents=result.price_cents)
    assert prices == [8_950] * 8


SECTIONS = st.integers(1, 3)


@st.composite
def events(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Per-row event index, base prices and capacities of 1 to 3 events."""
    per_event = draw(st.lists(SECTIONS, min_size=1, max_size=3))
    event = np.repeat(np.arange(len(per_event)), per_event)
    n = int(event.size)
    base = np.array(draw(st.lists(st.integers(0, 10**9), min_size=n, max_size=n)))
    capacity = np.array(draw(st.lists(st.integers(1, 5_000), min_size=n, max_size=n)))
    return event, base, capacity, len(per_event)


@st.composite
def ticks_state(
    draw: st.DrawFn, event: np.ndarray, capacity: np.ndarray, n_events: int
) -> dict[str, np.ndarray]:
    n = int(event.size)
    fraction = st.floats(0, 1.2)
    sold = (capacity * np.array(draw(st.lists(fraction, min_size=n, max_size=n)))).astype(int)
    held = (capacity * np.array(draw(st.lists(fraction, min_size=n, max_size=n)))).astype(int)
    floats = st.floats(0, 1e7, allow_nan=False)
    return {
        "sold": sold,
        "held": held,
        "seconds_to_start": np.array(
            draw(st.lists(st.floats(-1e7, 1e8), min_size=n_events, max_size=n_events))
        ),
        "recent_bookings": np.array(draw(st.lists(floats, min_size=n_events, max_size=n_events))),
        "normal_bookings": np.array(draw(st.lists(floats, min_size=n_events, max_size=n_events))),
        "waitlisted": np.array(
            draw(st.lists(st.integers(0, 10**6), min_size=n_events, max_size=n_events))
        ),
    }


def build(
    event: np.ndarray, base: np.ndarray, capacity: np.ndarray, current: np.ndarray, **state: Any
) -> PricingInputs:
    return PricingInputs(
        event=event, base_cents=base, current_cents=current, capacity=capacity, **state
    )


@settings(max_examples=150, deadline=None)
@given(data=st.data(), shape=events(), start=st.floats(0, 3))
def test_no_sequence_of_ticks_leaves_the_bounds(
    data: st.DataObject, shape: tuple[np.ndarray, np.ndarray, np.ndarray, int], start: float
) -> None:
    event, base, capacity, n_events = shape
    # Start anywhere, even far outside the bounds (a price set by hand).
    price = (base * start).astype(np.int64)
    for _ in range(data.draw(st.integers(1, 8), label="ticks")):
        state = data.draw(ticks_state(event, capacity, n_events))
        result = quote_prices(build(event, base, capacity, price, **state))
        price = result.price_cents
        # Whole cents inside [0.8, 1.5] x base, in exact integers.
        assert (5 * price >= 4 * base).all() and (2 * price <= 3 * base).all()
        assert (5 * result.new_cents >= 4 * base).all()
        assert (2 * result.new_cents <= 3 * base).all()
        # The factors explain each target: round_half_up(base * (1 + sum)) == new.
        explained = np.floor(base * (1 + result.factors.sum(axis=1)) + 0.5).astype(np.int64)
        assert explained.tolist() == result.new_cents.tolist()


@settings(max_examples=25, deadline=None)
@given(data=st.data(), shape=events(), start=st.floats(0, 3))
def test_a_thousand_ticks_without_new_demand_do_not_drift(
    data: st.DataObject, shape: tuple[np.ndarray, np.ndarray, np.ndarray, int], start: float
) -> None:
    event, base, capacity, n_events = shape
    state = data.draw(ticks_state(event, capacity, n_events))
    price = (base * start).astype(np.int64)
    after: list[np.ndarray] = []
    for tick in range(1_000):
        result = quote_prices(build(event, base, capacity, price, **state))
        price = result.price_cents
        after.append(price)
        if tick:
            assert not result.applied.any()
    assert after[0].tolist() == after[-1].tolist()


# --- velocity state -------------------------------------------------------------------------------


def test_a_new_state_has_empty_windows_and_the_prior_rate() -> None:
    state = start_velocity(np.array([0.5, 2.0]), interval_seconds=10, window_seconds=300)
    assert state.window.shape == (2, 30)
    assert state.recent_bookings().tolist() == [0.0, 0.0]
    assert state.normal_bookings().tolist() == [0.0, 0.0]  # no interval seen yet
    assert state.normal_rate.tolist() == [0.5, 2.0]


def test_the_half_life_halves_an_intervals_weight() -> None:
    state = start_velocity(np.array([1.0]), interval_seconds=10, half_life_seconds=600)
    assert (1 - state.alpha) ** 60 == pytest.approx(0.5)


def test_the_window_slides_and_the_baseline_learns_only_from_intervals_leaving_it() -> None:
    state = start_velocity(np.array([5.0]), interval_seconds=10, window_seconds=30)
    before = state
    for count in (1, 2, 3):
        state = update_velocity(state, np.array([count]))
    assert before.recent_bookings().tolist() == [0.0]  # the old state is untouched
    assert state.recent_bookings().tolist() == [6.0]
    assert state.normal_rate.tolist() == [5.0]  # nothing has left the window yet
    assert state.normal_bookings().tolist() == [15.0]
    state = update_velocity(state, np.array([4]))
    assert state.recent_bookings().tolist() == [9.0]
    assert state.normal_rate[0] == pytest.approx(5.0 + state.alpha * (1 - 5.0))


def test_a_slow_event_that_suddenly_sells_is_hot_a_big_one_at_its_pace_is_not() -> None:
    # Event 0 sells one ticket every 10 intervals; event 1 sells 50 every interval.
    prior = velocity_prior(np.array([500, 50_000]), interval_seconds=10)
    state = start_velocity(prior, interval_seconds=10, half_life_seconds=600)
    for i in range(2_000):
        state = update_velocity(state, np.array([int(i % 10 == 0), 50]))
    calm = velocity_factor(state.recent_bookings(), state.normal_bookings())
    assert calm.tolist() == pytest.approx([0.0, 0.0], abs=0.01)
    for _ in range(30):  # one window: event 0 sells 5 per interval, event 1 as usual
        state = update_velocity(state, np.array([5, 50]))
    hot = velocity_factor(state.recent_bookings(), state.normal_bookings())
    assert hot[0] > 0.18  # 150 against a normal 3
    assert hot[1] < 0.01  # 1 500 against a normal 1 500


def test_cold_start_the_prior_pace_is_neutral_and_a_launch_rush_is_hot() -> None:
    # 100 000 seats selling out over 30 days: 0.386 per 10 s, 11.6 per 5-minute window.
    prior = velocity_prior(np.array([100_000, 100_000]), interval_seconds=10)
    state = start_velocity(prior, interval_seconds=10)
    for i in range(30):
        state = update_velocity(state, np.array([int(i % 5 < 2), 40]))  # 12 vs 1 200
    factor = velocity_factor(state.recent_bookings(), state.normal_bookings())
    assert factor[0] == pytest.approx(0.0, abs=0.01)
    assert factor[1] > 0.19


def test_update_refuses_counts_that_do_not_fit() -> None:
    state = start_velocity(np.array([1.0, 1.0]), interval_seconds=10)
    for bad in (np.array([1]), np.array([1, -1]), np.array([1.5, 1.0])):
        with pytest.raises(ValueError):
            update_velocity(state, bad)


def test_realign_keeps_known_events_and_starts_new_ones_at_their_prior() -> None:
    state = start_velocity(np.array([1.0, 2.0, 3.0]), interval_seconds=10, window_seconds=20)
    state = update_velocity(state, np.array([7, 8, 9]))
    # Event 1 is gone, event 2 moves first, event 0 stays, a new event arrives last.
    moved = realign_velocity(state, np.array([2, 0, -1]), np.array([0.0, 0.0, 4.0]))
    assert moved.recent_bookings().tolist() == [9.0, 7.0, 0.0]
    assert moved.normal_rate.tolist() == [3.0, 1.0, 4.0]
    assert moved.filled.tolist() == [1, 1, 0]
    moved = update_velocity(moved, np.array([1, 1, 1]))
    assert moved.recent_bookings().tolist() == [10.0, 8.0, 1.0]
    with pytest.raises(ValueError):
        realign_velocity(state, np.array([3]), np.array([0.0]))
