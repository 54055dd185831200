"""The waiting room's figures on known inputs: Spearman, the silences, the sell-out time."""

from __future__ import annotations

import random
from array import array

import pytest

from loadtest.queue_figures import gaps, room, rounds, sold_out_after, spearman, tally_sales
from loadtest.records import FREE, HELD, SOLD


def test_spearman_on_known_orders() -> None:
    assert spearman([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]) == 1.0
    assert spearman([1, 2, 3, 4, 5], [50, 40, 30, 20, 10]) == -1.0
    # 1 - 6 * sum(d^2) / (n (n^2 - 1)) with d = 1, -1, 1, -1, 0: 1 - 24 / 120.
    assert spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8)
    # Ties (one push round admits two at once) share their mean rank: 4 / (2 * sqrt 5).
    assert spearman([1, 2, 3, 4], [7, 7, 9, 9]) == pytest.approx(0.8944, abs=1e-4)


def test_spearman_needs_an_order_on_both_sides() -> None:
    assert spearman([1, 2], [1, 2]) is None
    assert spearman([1, 2, 3], [5, 5, 5]) is None


def test_a_shuffled_crowd_is_uncorrelated_and_a_line_is_not() -> None:
    rng = random.Random(7)
    joined = list(range(5_000))
    admitted = joined[:]
    rng.shuffle(admitted)
    rho = spearman(joined, admitted)
    assert rho is not None and abs(rho) < 0.1
    # First come, first served with a little jitter in when the messages arrived.
    jittered = [t + rng.uniform(0, 3) for t in joined]
    late = spearman(joined, jittered)
    assert late is not None and late > 0.95


def test_admissions_of_one_push_round_share_their_rank() -> None:
    assert list(rounds([0.61, 0.0, 0.02, 1.5, 0.6, 0.01])) == [2, 1, 1, 3, 2, 1]
    assert list(rounds([])) == []
    # Within a round the hub writes in connection (= join) order: that order must not
    # count as admission order: rounds of equal mean join rank show no correlation.
    joined = [1, 2, 3, 4]
    received = [0.001, 0.502, 0.503, 0.004]  # rounds 1, 2, 2, 1; written in join order
    assert spearman(joined, received) == pytest.approx(0.4)  # receipt order: biased
    assert spearman(joined, rounds(received).tolist()) == 0.0


def test_gaps_run_from_the_join_through_each_update_to_the_outcome() -> None:
    assert list(gaps(0.0, [0.5, 1.5, 4.0], 4.25)) == [0.5, 1.0, 2.5, 0.25]
    assert list(gaps(3.0, [], 3.5)) == [0.5]
    # A push round read before the join's own answer: silences in time order, none negative.
    assert list(gaps(1.0, [0.75, 2.0], 2.5)) == [0.25, 1.0, 0.5]


def test_room_figures_of_known_waits() -> None:
    opening = 10.0

    def updates(*t: float) -> array[float]:
        return array("d", t)

    waits = [
        # number, late, join sent, join answered, outcome, outcome at, fallback, updates
        (0, False, 0.9, 1.0, "admitted", 11.0, False, updates(*range(2, 11))),
        (1, False, 4.9, 5.0, "admitted", 12.0, False, updates(6.0, 9.0)),
        (2, True, 14.9, 15.0, "admitted", 15.5, False, updates()),
        (3, False, 2.0, 2.1, "sold_out", 30.0, True, updates()),
        (4, True, 16.0, 16.1, "join_failed", None, False, updates()),
        (5, False, 3.0, 3.5, "unresolved", None, False, updates(4.0, 5.0)),
    ]
    figures = room(waits, opening, ended=6.0)
    assert figures["outcomes"] == {"admitted": 3, "sold_out": 1, "join_failed": 1, "unresolved": 1}
    assert (figures["pre_opening"], figures["late"], figures["socket_fallbacks"]) == (4, 2, 1)
    # From the later of the opening and the join: 1.0, 2.0 and 0.5 s.
    assert figures["time_to_admission_s"]["n"] == 3
    assert figures["time_to_admission_s"]["max"] == 2.0
    assert figures["time_to_admission_s"]["p50"] == 1.0
    # Silences: waiter 0 at most 1 s, waiter 1 3 s (5 -> 6 -> 9 -> 12), waiter 2 0.5 s,
    # waiter 5 (still waiting when the phase ended at 6 s) 1 s; the poller is left out.
    gap = figures["longest_gap_s"]
    assert (gap["n"], gap["max"], gap["over_target"]) == (4, 3.0, 1)
    assert figures["every_waiter_updated_within_target"] is False
    # Silences: waiter 0 1.0 x 9 and 1.0 (10 -> 11), waiter 1 1.0, 3.0, 3.0, waiter 2 0.5,
    # waiter 5 0.5, 1.0, 1.0.
    histogram = {k: v for k, v in gap["histogram"].items() if v}
    assert histogram == {"0.50": 2, "1.00": 13, "3.00": 2}
    # Waiter 1's two silences over 2 s began at 6 and 9 s: 4 s and 1 s before the opening.
    assert gap["over_target_began_s"] == {"n": 2, "min": -4.0, "median": -2.5, "max": -1.0}
    # Rates over waits of 2 s or more: 9 in 10 s, 2 in 7 s, 2 in 2.5 s.
    rates = figures["updates_per_waiter_per_s"]
    assert rates["waiters"] == 3
    assert rates["min"] == round(2 / 7, 3)
    assert rates["mean"] == round((0.9 + 2 / 7 + 0.8) / 3, 3)
    # Two of the early crowd and one late arrival admitted: too few for a rank correlation.
    assert figures["fairness"]["pre_opening_rho"] is None
    assert figures["fairness"]["pre_opening_admitted"] == 2


def _changes(
    *rows: tuple[int, int, float] | tuple[int, int, float, float],
) -> tuple[array[int], array[int], array[float], array[float]]:
    """Rows of (seat, code, answered) sent 10 ms before, or (seat, code, answered, sent)."""
    return (
        array("i", [r[0] for r in rows]),
        array("b", [r[1] for r in rows]),
        array("d", [r[3] if len(r) == 4 else r[2] - 0.01 for r in rows]),
        array("d", [r[2] for r in rows]),
    )


def test_sold_out_when_the_bookings_cover_every_seat() -> None:
    one = _changes((0, HELD, 1.0), (0, SOLD, 2.0), (0, FREE, 2.5))  # booked, then cancelled
    two = _changes((1, HELD, 1.5), (1, SOLD, 3.0), (0, HELD, 3.5), (0, SOLD, 4.0))
    assert sold_out_after([one, two], seats=2, since=0.5) == 3.5
    assert sold_out_after([one], seats=2, since=0.0) is None


def test_a_release_answered_after_its_seat_was_sold_again_does_not_unsell_it() -> None:
    """Buyer one releases seat 0 (sent at 1.0, its answer held up in a busy client process
    until 3.0); buyer two meanwhile held it at 1.2 and bought it at 2.0. The release
    happened before the sale, so the seat stays sold; the cancel of a sale, sent after it
    was answered, still gives it back."""
    one = _changes((0, HELD, 0.5), (0, FREE, 3.0, 1.0))
    two = _changes((0, HELD, 1.2), (0, SOLD, 2.0), (1, HELD, 2.1), (1, SOLD, 2.5))
    assert tally_sales([one, two], seats=2, since=0.0) == (2.5, {})
    cancelled = _changes((0, HELD, 1.2), (0, SOLD, 2.0), (0, FREE, 2.6, 2.05))
    assert tally_sales([cancelled], seats=1, since=0.0) == (2.0, {})
    assert tally_sales([cancelled], seats=2, since=0.0) == (
        None,
        {"held": 0, "free": 1, "never": 1},
    )


def test_the_seats_left_untold_are_counted_by_what_buyers_heard_last() -> None:
    one = _changes((0, HELD, 1.0), (1, HELD, 1.0), (1, SOLD, 2.0), (2, HELD, 1.0), (2, FREE, 1.5))
    assert tally_sales([one], seats=4, since=0.0) == (None, {"held": 1, "free": 1, "never": 1})
