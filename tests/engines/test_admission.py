"""The admission controller and the admission budget: table-driven cases and invariants."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engines.admission import (
    Budget,
    ControllerConfig,
    ControllerState,
    Observation,
    admit_count,
    eta_seconds,
    initial_state,
    next_state,
    p99_from_buckets,
)

CONFIG = ControllerConfig(target_p99_s=0.1, min_rate=1, max_rate=1000, start_rate=10)


def test_low_p99_raises_the_rate_fast_in_slow_start_then_additively() -> None:
    fast = next_state(ControllerState(rate=100.0), Observation(p99_s=0.02, idle=0), 1.0, CONFIG)
    assert fast.rate == pytest.approx(200.0)  # doubled in one second of slow start
    start = next_state(initial_state(CONFIG), Observation(p99_s=0.02, idle=0), 1.0, CONFIG)
    assert start.rate == pytest.approx(10.0 + CONFIG.increase)  # never less than additive
    after_cut = ControllerState(rate=50.0, threshold=50.0)
    slow = next_state(after_cut, Observation(p99_s=0.02, idle=0), 1.0, CONFIG)
    assert slow.rate == pytest.approx(50.0 + CONFIG.increase)


def test_a_rising_p99_ends_slow_start_before_the_target_is_crossed() -> None:
    rising = Observation(p99_s=CONFIG.target_p99_s * 0.8, idle=0)  # over half, under target
    after = next_state(ControllerState(rate=100.0), rising, 1.0, CONFIG)
    assert after.rate == pytest.approx(100.0 + CONFIG.increase)  # additive, not doubled
    assert after.threshold == pytest.approx(100.0)
    # from there on additive, even when the p99 falls back
    calm = next_state(after, Observation(p99_s=0.01, idle=0), 1.0, CONFIG)
    assert calm.rate == pytest.approx(100.0 + 2 * CONFIG.increase)
    # at exactly half the target slow start goes on
    half = Observation(p99_s=CONFIG.target_p99_s * CONFIG.slow_start_exit, idle=0)
    assert next_state(ControllerState(rate=100.0), half, 1.0, CONFIG).rate == pytest.approx(200.0)


def test_high_p99_cuts_the_rate_multiplicatively_and_ends_slow_start() -> None:
    state = ControllerState(rate=200.0)
    cut = next_state(state, Observation(p99_s=0.4, idle=0), 1.0, CONFIG)
    assert cut.rate == pytest.approx(200.0 * CONFIG.decrease)
    assert cut.threshold == pytest.approx(cut.rate)
    grown = next_state(cut, Observation(p99_s=0.01, idle=0), 0.5, CONFIG)
    assert grown.rate == pytest.approx(cut.rate + CONFIG.increase * 0.5)


def test_idle_sessions_beyond_the_horizon_hold_the_rate() -> None:
    state = ControllerState(rate=10.0)
    many_idle = Observation(p99_s=0.01, idle=int(10.0 * CONFIG.idle_horizon_s) + 1)
    assert next_state(state, many_idle, 1.0, CONFIG) == state
    # nobody has held yet but people were let in: no evidence, no growth
    assert next_state(state, Observation(p99_s=None, idle=3), 1.0, CONFIG) == state
    # nobody idle and no holds at all (an empty room): grow
    assert next_state(state, Observation(p99_s=None, idle=0), 1.0, CONFIG).rate > 10.0


def test_the_rate_converges_under_a_service_that_slows_down_with_load() -> None:
    """A toy hub whose hold p99 grows with the admission rate (p99 = rate / 4000 s): the
    controller settles around the rate where the p99 meets the target (400/s)."""
    state = initial_state(CONFIG)
    rates = []
    for _ in range(300):
        p99 = state.rate / 4000
        state = next_state(state, Observation(p99_s=p99, idle=0), 1.0, CONFIG)
        rates.append(state.rate)
    tail = rates[-100:]
    assert 250 <= sum(tail) / len(tail) <= 400
    assert max(tail) <= 400 + CONFIG.increase


@given(
    rate=st.floats(1, 1000),
    threshold=st.floats(1, 2000) | st.just(math.inf),
    p99=st.none() | st.floats(0, 5),
    idle=st.integers(0, 100_000),
    dt=st.floats(0.01, 5),
)
def test_controller_invariants(
    rate: float, threshold: float, p99: float | None, idle: int, dt: float
) -> None:
    state = ControllerState(rate=rate, threshold=threshold)
    after = next_state(state, Observation(p99_s=p99, idle=idle), dt, CONFIG)
    assert CONFIG.min_rate <= after.rate <= CONFIG.max_rate
    if p99 is not None and p99 > CONFIG.target_p99_s:
        assert after.rate <= rate
    if p99 is not None and p99 <= CONFIG.target_p99_s and idle == 0:
        assert after.rate >= rate


def test_admit_count_carries_fractions_and_never_exceeds_the_waiters() -> None:
    budget = Budget()
    admitted = 0
    for _ in range(10):  # 2.5/s for 4 s in steps of 0.4 s
        count, budget = admit_count(budget, 2.5, 0.4, waiting=100)
        admitted += count
    assert admitted == 10
    count, _ = admit_count(Budget(), 100.0, 1.0, waiting=7)
    assert count == 7


def test_sessions_given_back_are_admitted_on_top_of_the_rate() -> None:
    count, _ = admit_count(Budget(), 1.0, 1.0, waiting=100, returned=5)
    assert count == 6


def test_a_quiet_queue_does_not_save_up_a_burst() -> None:
    budget = Budget()
    for _ in range(100):
        _, budget = admit_count(budget, 10.0, 1.0, waiting=0)
    count, _ = admit_count(budget, 10.0, 0.0, waiting=1000)
    assert count <= 20


@given(
    credit=st.floats(0, 100),
    rate=st.floats(0, 1000),
    dt=st.floats(0, 5),
    waiting=st.integers(0, 10_000),
    returned=st.integers(0, 100),
)
def test_admit_count_invariants(
    credit: float, rate: float, dt: float, waiting: int, returned: int
) -> None:
    count, left = admit_count(Budget(credit), rate, dt, waiting, returned=returned)
    assert 0 <= count <= waiting
    assert left.credit >= 0
    if waiting > count:  # whatever was owed and could be admitted was admitted
        assert left.credit < 1


def test_eta() -> None:
    assert eta_seconds(0, 10.0) == 1
    assert eta_seconds(99, 10.0) == 10
    assert eta_seconds(5, 0.0) is None


def test_p99_from_bucket_deltas() -> None:
    bounds = (0.01, 0.05, 0.1, 0.5, math.inf)
    before = (10.0, 10.0, 10.0, 10.0, 10.0)
    # 100 new holds: 98 under 10 ms, one at 50 ms, one at 500 ms
    after = (108.0, 109.0, 109.0, 110.0, 110.0)
    assert p99_from_buckets(bounds, before, after) == 0.05
    slow = (10.0, 10.0, 10.0, 10.0, 110.0)
    assert p99_from_buckets(bounds, before, slow) == 0.5
    assert p99_from_buckets(bounds, before, before) is None
