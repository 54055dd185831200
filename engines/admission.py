"""Admission control for a waiting room: how many waiters to let in, tick by tick.

The leader admits at a fixed rate when the room has one; otherwise at a rate this
controller keeps, a feedback loop on two signals the hub measures:

- ``p99_s``, the hold path's p99 over the last window (None when no hold was placed in it:
  no evidence either way);
- ``idle``, admitted sessions not yet turned into a booking and not yet expired: buyers let
  in who may send holds any moment. They are load in flight that the p99 has not seen yet.

The rule is TCP's congestion control (slow start, then AIMD), with the p99 target as the
congestion signal:

- p99 over target → multiplicative decrease: ``rate * decrease``, and the slow-start
  threshold drops to the new rate (no more doubling until evidence says otherwise);
- otherwise, if ``idle`` exceeds what ``idle_horizon_s`` seconds of admissions would bring
  in (``rate * idle_horizon_s``), or there is no p99 while people are idle, hold steady:
  raising the rate would only pile up buyers the hub has not served yet;
- otherwise increase: below the threshold exponentially (``rate * (1 + dt)`` per step,
  doubling about every second and a half), above it additively (``increase * dt``). Slow
  start ends early, at the rate it has reached, once the p99 passes ``slow_start_exit`` of
  the target (as TCP's HyStart leaves slow start when delay rises, before any loss): the
  p99 window still lags the buyers just let in, and doubling on until the target is
  crossed overshot it at every opening where it was tried (BENCHMARKS.md, issue 17).

Invariants: ``min_rate ≤ rate ≤ max_rate`` always; a p99 over target never raises the rate;
a p99 at or under target with nobody idle never lowers it.

Admissions from a rate (``admit_count``): a credit accumulates ``rate * dt`` per step plus
one for every session given back (admitted, expired unused); whole units of credit admit
waiters, at most as many as are waiting. The credit is capped (a burst of at most
``burst_s`` seconds of rate) so a quiet queue does not save up an avalanche.

Pure: time is a parameter (``dt``), no clock, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class ControllerConfig:
    """Tuning of the adaptive rate (admissions per second)."""

    target_p99_s: float = 0.100
    min_rate: float = 1.0
    max_rate: float = 5_000.0
    start_rate: float = 20.0
    # Added per second of stepping above the slow-start threshold.
    increase: float = 20.0
    # Multiplied into the rate when the p99 is over target.
    decrease: float = 0.7
    # Slow start ends once the p99 is over this share of the target.
    slow_start_exit: float = 0.5
    # How many seconds of admissions may stand idle (admitted, not yet booked) before the
    # rate stops growing.
    idle_horizon_s: float = 15.0


@dataclass(frozen=True, slots=True)
class ControllerState:
    rate: float
    # Slow start below this rate (exponential growth), AIMD above it.
    threshold: float = math.inf


@dataclass(frozen=True, slots=True)
class Observation:
    """What the hub measured over the last window."""

    p99_s: float | None
    idle: int


def initial_state(config: ControllerConfig) -> ControllerState:
    return ControllerState(rate=_clamp(config.start_rate, config))


def next_state(
    state: ControllerState, seen: Observation, dt: float, config: ControllerConfig
) -> ControllerState:
    """The rate after one step of ``dt`` seconds in which ``seen`` was measured.

    Args:
        dt: seconds since the previous step (> 0).
    """
    if dt <= 0:
        return state
    if seen.p99_s is not None and seen.p99_s > config.target_p99_s:
        rate = _clamp(state.rate * config.decrease, config)
        return ControllerState(rate=rate, threshold=rate)
    idle_cap = state.rate * config.idle_horizon_s
    if seen.idle > idle_cap or (seen.p99_s is None and seen.idle > 0):
        return state
    rising = seen.p99_s is not None and seen.p99_s > config.target_p99_s * config.slow_start_exit
    if state.rate < state.threshold and rising:
        return ControllerState(
            rate=_clamp(state.rate + config.increase * dt, config), threshold=state.rate
        )
    if state.rate < state.threshold:
        grown = min(state.rate * (1.0 + min(dt, 1.0)), state.threshold)
        grown = max(grown, state.rate + config.increase * dt)
    else:
        grown = state.rate + config.increase * dt
    return replace(state, rate=_clamp(grown, config))


@dataclass(frozen=True, slots=True)
class Budget:
    """Admissions owed: whole ones are admitted, the fraction carries over."""

    credit: float = 0.0


def admit_count(
    budget: Budget,
    rate: float,
    dt: float,
    waiting: int,
    *,
    returned: int = 0,
    burst_s: float = 2.0,
) -> tuple[int, Budget]:
    """How many of ``waiting`` to admit now, and the budget left.

    Args:
        rate: admissions per second.
        dt: seconds since the previous step (≥ 0).
        waiting: how many are waiting (nobody is admitted beyond them).
        returned: sessions given back since the previous step (admitted, expired unused);
            each one is owed a replacement on top of the rate.
        burst_s: the credit never exceeds this many seconds of ``rate`` plus ``returned``.
    """
    cap = max(rate * burst_s, 1.0) + returned
    credit = min(budget.credit + rate * max(dt, 0.0) + returned, cap)
    count = min(int(credit), max(waiting, 0))
    return count, Budget(credit - count)


def eta_seconds(ahead: int, rate: float) -> int | None:
    """Seconds until a waiter with ``ahead`` people in front is admitted at ``rate``;
    None when nothing is being admitted."""
    if rate <= 0:
        return None
    return math.ceil((ahead + 1) / rate)


def p99_from_buckets(
    bounds: tuple[float, ...], before: tuple[float, ...], after: tuple[float, ...]
) -> float | None:
    """The p99 of the observations between two readings of a cumulative histogram.

    Args:
        bounds: the buckets' upper bounds, ascending, the last one may be ``inf``.
        before, after: cumulative counts per bucket at the two readings (same length).

    Returns:
        The upper bound of the bucket holding the 99th percentile (the histogram's
        resolution; an estimate that errs high), the largest finite bound for the ``inf``
        bucket, or None when nothing was observed in between.
    """
    counts = [a - b for a, b in zip(after, before, strict=True)]
    total = counts[-1]
    if total <= 0:
        return None
    rank = 0.99 * total
    for bound, cumulative in zip(bounds, counts, strict=True):
        if cumulative >= rank:
            if math.isinf(bound):
                return max(b for b in bounds if not math.isinf(b))
            return bound
    return None


def _clamp(rate: float, config: ControllerConfig) -> float:
    return min(max(rate, config.min_rate), config.max_rate)
