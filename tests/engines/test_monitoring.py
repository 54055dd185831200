"""engines.monitoring: histogram quantiles, window deltas and alert transitions."""

from __future__ import annotations

import pytest

from engines.monitoring import Alert, AlertState, advance, delta, quantile

BOUNDS = (0.01, 0.1, 1.0)


@pytest.mark.parametrize(
    ("cumulative", "q", "expected"),
    [
        ((0, 0, 0, 0), 0.5, None),  # nothing observed
        ((10, 10, 10, 10), 0.5, 0.005),  # all in the first bucket: from zero
        ((0, 10, 10, 10), 0.5, 0.055),  # halfway through the second bucket
        ((0, 0, 4, 4), 1.0, 1.0),  # the top of the last finite bucket
        ((0, 0, 0, 5), 0.99, 1.0),  # all above every bound: the last bound, a floor
        ((50, 90, 99, 100), 0.99, 1.0),  # rank 99 reached exactly at the third bound
        ((50, 90, 99, 100), 0.5, 0.01),
    ],
)
def test_quantile_interpolates_inside_the_bucket_of_the_rank(
    cumulative: tuple[int, ...], q: float, expected: float | None
) -> None:
    found = quantile(BOUNDS, cumulative, q)
    if expected is None:
        assert found is None
    else:
        assert found == pytest.approx(expected)


def test_quantile_refuses_mismatched_counts_and_bad_fractions() -> None:
    with pytest.raises(ValueError, match="one count per bound"):
        quantile(BOUNDS, (1, 2, 3), 0.5)
    with pytest.raises(ValueError, match="fraction"):
        quantile(BOUNDS, (1, 2, 3, 4), 1.5)


def test_delta_is_the_window_and_a_restart_takes_the_whole_series() -> None:
    assert delta([5, 7, 9], [1, 2, 3]) == [4, 5, 6]
    assert delta([5, 7, 9], None) == [5, 7, 9]
    assert delta([1, 1, 1], [4, 4, 4]) == [1, 1, 1]  # counters went back: restarted


def test_an_alert_fires_once_and_resolves_once_with_the_since_of_each_state() -> None:
    rules = {"error_rate": 0.05}
    states, changed = advance({}, {"error_rate": 0.01}, rules, now=0.0)
    assert changed == [] and states["error_rate"].state is AlertState.OK

    states, changed = advance(states, {"error_rate": 0.2}, rules, now=10.0)
    assert [(t.alert.state, t.previous) for t in changed] == [(AlertState.FIRING, AlertState.OK)]
    assert states["error_rate"] == Alert("error_rate", AlertState.FIRING, 10.0, 0.2, 0.05)

    for now in (20.0, 30.0):  # still past the threshold: no new transition, since kept
        states, changed = advance(states, {"error_rate": 0.3}, rules, now=now)
        assert changed == []
    assert states["error_rate"].since == 10.0 and states["error_rate"].value == 0.3

    states, changed = advance(states, {"error_rate": 0.05}, rules, now=40.0)  # at, not over
    assert [(t.alert.state, t.previous) for t in changed] == [(AlertState.OK, AlertState.FIRING)]
    assert states["error_rate"].since == 40.0


def test_an_unmeasured_value_keeps_the_state() -> None:
    rules = {"outbox_backlog": 100.0}
    states, _ = advance({}, {"outbox_backlog": 500}, rules, now=1.0)
    states, changed = advance(states, {"outbox_backlog": None}, rules, now=2.0)
    assert changed == [] and states["outbox_backlog"].state is AlertState.FIRING
    assert states["outbox_backlog"].since == 1.0
