"""Monitoring arithmetic: percentiles from histogram buckets, and alert transitions.

Pure: plain data in, plain data out; the caller supplies ``now``.

Percentiles. A Prometheus histogram keeps, per upper bound ``le``, how many observations
were at most ``le`` (cumulative; the last count is every observation, the +inf bucket).
``quantile`` answers the way PromQL's ``histogram_quantile`` does: find the bucket where
the rank ``q * count`` falls and interpolate linearly inside it (from 0 for the first
bucket); a rank in the +inf bucket answers the highest finite bound, which is a floor, not
a guess. Window counts are differences of two cumulative snapshots (``delta``), so they
are exact per bucket.

Alerts. A rule fires while its value is past its threshold (``value > threshold``) and
resolves when it is not; ``advance`` returns the new states and only the transitions, so
the caller logs once per change, however often it evaluates. A value of None (not
measured this time) keeps the rule as it was.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


def delta(now: Sequence[float], then: Sequence[float] | None) -> list[float]:
    """Per-position ``now - then`` of two cumulative series (``then`` None: ``now``).

    A counter never goes backwards within one process, so a negative difference means the
    series was restarted: the whole of ``now`` is the window then.
    """
    if then is None or len(then) != len(now):
        return list(now)
    diff = [a - b for a, b in zip(now, then, strict=True)]
    if any(d < 0 for d in diff):
        return list(now)
    return diff


def quantile(bounds: Sequence[float], cumulative: Sequence[float], q: float) -> float | None:
    """The ``q``-quantile (0..1) of a histogram, or None with no observations.

    Args:
        bounds: the finite upper bounds, ascending (the +inf bucket is implied).
        cumulative: counts at or below each bound, then the total (len(bounds) + 1 values).

    Raises:
        ValueError: the counts do not match the bounds, or ``q`` is outside [0, 1].
    """
    if len(cumulative) != len(bounds) + 1:
        raise ValueError("cumulative must hold one count per bound and the total")
    if not 0.0 <= q <= 1.0:
        raise ValueError("q is a fraction in [0, 1]")
    total = cumulative[-1]
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in zip(bounds, cumulative, strict=False):
        if count >= rank and count > lower_count:
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = float(bound), float(count)
    return float(bounds[-1]) if bounds else math.nan


class AlertState(enum.StrEnum):
    OK = "ok"
    FIRING = "firing"


@dataclass(frozen=True, slots=True)
class Alert:
    """One rule's state: since when it has been in it, and the value and threshold that
    put it there (or that last kept it there)."""

    name: str
    state: AlertState
    since: float
    value: float | None
    threshold: float


@dataclass(frozen=True, slots=True)
class Transition:
    alert: Alert
    previous: AlertState


def advance(
    previous: Mapping[str, Alert],
    values: Mapping[str, float | None],
    thresholds: Mapping[str, float],
    now: float,
) -> tuple[dict[str, Alert], list[Transition]]:
    """Evaluate every rule of ``thresholds`` on ``values``.

    Returns:
        The states of every rule (a new rule starts ``ok``), and the rules that changed
        state this time, in the order of ``thresholds``. A rule whose value is None keeps
        its state and value.
    """
    states: dict[str, Alert] = {}
    changed: list[Transition] = []
    for name, threshold in thresholds.items():
        before = previous.get(name)
        value = values.get(name)
        if value is None:
            states[name] = before or Alert(name, AlertState.OK, now, None, threshold)
            continue
        state = AlertState.FIRING if value > threshold else AlertState.OK
        was = before.state if before is not None else AlertState.OK
        since = before.since if before is not None and was is state else now
        states[name] = Alert(name, state, since, value, threshold)
        if state is not was:
            changed.append(Transition(states[name], was))
    return states, changed
