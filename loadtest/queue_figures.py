"""The waiting room's figures, from the waiters' records (``loadtest.waiters.Wait``).

- time to admission: ``admitted`` received minus the later of the opening and the
  waiter's join answer (nobody can be admitted before either);
- updates: per waiter that waited by socket, the ``queue`` messages it received; the
  rate is over its wait (join answered to outcome, or to the end of the phase), for
  waiters that waited at least ``RATE_MIN_WAIT_S``; the gaps are between consecutive
  moments of [join answered, each ``queue`` message, the outcome], so a waiter that heard
  nothing for 3 s shows a 3 s gap wherever it fell;
- fairness: Spearman's rank correlation between join order (join answered) and admission
  order, separately for the pre-opening crowd (places drawn at random: about 0) and the
  late arrivals (first come, first served: about 1). Admission order is the push round
  that brought ``admitted``, not the moment within it: the leader admits a batch per tick
  and each hub process then writes to its connections in the order they came, which is
  join order, so receipt times inside a round would show a correlation the queue does
  not have. Receipts less than ``ROUND_GAP_S`` after the previous one (admission ticks
  are 0.5 s apart) share a round, and so their mean rank;
- time to sell out: the first moment the seats the buyers were told they bought (bookings
  less cancellations) cover every seat of the event.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from loadtest.records import HELD, SOLD

RATE_MIN_WAIT_S = 2.0
GAP_TARGET_S = 2.0
ROUND_GAP_S = 0.25
HISTOGRAM_BIN_S = 0.25
HISTOGRAM_BINS = 16


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rho (ties ranked by their mean); None with fewer than 3 pairs or when
    either side is constant (no order to compare)."""
    if len(x) < 3 or len(x) != len(y):
        return None
    xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if np.ptp(xs) == 0 or np.ptp(ys) == 0:
        return None
    return round(float(stats.spearmanr(xs, ys).statistic), 4)


def rounds(times: Sequence[float]) -> np.ndarray:
    """The round (1, 2, ...) of each time: one less than ``ROUND_GAP_S`` after the previous
    time, in time order, is in the same round."""
    t = np.asarray(times, dtype=np.float64)
    order = np.argsort(t, kind="stable")
    out = np.empty(len(t), dtype=np.int64)
    if not len(t):
        return out
    starts = np.concatenate(([True], np.diff(t[order]) > ROUND_GAP_S))
    out[order] = np.cumsum(starts)
    return out


def histogram(values: np.ndarray) -> dict[str, int]:
    """Counts per ``HISTOGRAM_BIN_S`` bin, keyed by the bin's start (``"0.25"``); the last
    bin also counts everything longer."""
    bins = np.minimum((values / HISTOGRAM_BIN_S).astype(np.int64), HISTOGRAM_BINS - 1)
    counts = np.bincount(bins, minlength=HISTOGRAM_BINS)
    return {f"{i * HISTOGRAM_BIN_S:.2f}": int(c) for i, c in enumerate(counts)}


def gaps(start: float, updates: Sequence[float], end: float) -> np.ndarray:
    """The silences of one wait: between the join answer, each update and the outcome, in
    time order (a push round can reach the socket before the join's answer is read)."""
    moments = np.sort(np.concatenate(([start], np.asarray(updates, dtype=np.float64), [end])))
    return np.diff(moments)


def seconds(values: Sequence[float]) -> dict[str, float | int]:
    """n, p50/p95/p99/max of durations in seconds."""
    if len(values) == 0:
        return {"n": 0}
    v = np.asarray(values, dtype=np.float64)
    p50, p95, p99 = np.percentile(v, [50, 95, 99])
    return {
        "n": len(v),
        "p50": round(float(p50), 3),
        "p95": round(float(p95), 3),
        "p99": round(float(p99), 3),
        "max": round(float(v.max()), 3),
    }


def room(waits: list[tuple[Any, ...]], opening: float, ended: float) -> dict[str, Any]:
    """Every waiting-room figure (see the module doc) of the exported waits of a phase
    whose room opened at ``opening`` and which ended at ``ended`` (monotonic seconds)."""
    outcomes: dict[str, int] = {}
    admission: list[float] = []
    rates: list[float] = []
    longest: list[float] = []
    silent_from: list[float] = []  # where the silences over the target began
    every_gap: list[np.ndarray] = []
    fair: dict[bool, tuple[list[float], list[float]]] = {False: ([], []), True: ([], [])}
    fallback = 0
    for _n, late, _t0, t1, outcome, end_t, fell_back, updates in waits:
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if outcome == "join_failed":
            continue
        if outcome == "admitted":
            # At least 0: an admission can reach the socket before the join's answer does.
            admission.append(max(0.0, end_t - max(t1, opening)))
            fair[bool(late)][0].append(t1)
            fair[bool(late)][1].append(end_t)
        if fell_back:
            fallback += 1
            continue
        until = end_t if end_t is not None else ended
        silences = gaps(t1, updates, until)
        longest.append(float(silences.max()))
        every_gap.append(silences)
        moments = np.sort(np.concatenate(([t1], np.asarray(updates, dtype=np.float64), [until])))
        silent_from.extend((moments[:-1][silences > GAP_TARGET_S] - opening).tolist())
        if until - t1 >= RATE_MIN_WAIT_S:
            rates.append(len(updates) / (until - t1))
    worst = max(longest) if longest else None
    return {
        "waiters": len(waits),
        "outcomes": outcomes,
        "pre_opening": sum(1 for w in waits if not w[1]),
        "late": sum(1 for w in waits if w[1]),
        "socket_fallbacks": fallback,
        "time_to_admission_s": seconds(admission),
        "updates_per_waiter_per_s": {
            "waiters": len(rates),
            "mean": round(float(np.mean(rates)), 3) if rates else None,
            "min": round(float(np.min(rates)), 3) if rates else None,
        },
        "longest_gap_s": {
            **seconds(longest),
            "over_target": sum(1 for g in longest if g > GAP_TARGET_S),
            # Every silence of every waiter, counted per HISTOGRAM_BIN_S (the last bin: longer).
            "histogram": histogram(np.concatenate(every_gap) if every_gap else np.array([])),
            "target_s": GAP_TARGET_S,
            # Seconds from the opening (negative: before it) to where each silence longer
            # than the target began: whether they bunch at the opening, or anywhere.
            "over_target_began_s": {
                "n": len(silent_from),
                "min": round(min(silent_from), 2) if silent_from else None,
                "median": round(float(np.median(silent_from)), 2) if silent_from else None,
                "max": round(max(silent_from), 2) if silent_from else None,
            },
        },
        "every_waiter_updated_within_target": None if worst is None else worst <= GAP_TARGET_S,
        "fairness": {
            "pre_opening_rho": spearman(fair[False][0], rounds(fair[False][1]).tolist()),
            "pre_opening_admitted": len(fair[False][0]),
            "late_rho": spearman(fair[True][0], rounds(fair[True][1]).tolist()),
            "late_admitted": len(fair[True][0]),
            "admission_rounds": len(set(rounds([w[5] for w in waits if w[4] == "admitted"]))),
        },
    }


def sold_out_after(changes: list[Any], seats: int, since: float) -> float | None:
    """Seconds from ``since`` until the seats buyers were told they bought first covered
    all ``seats`` (a cancelled booking gives its seats back); None if they never did.

    ``changes``: each client process's ``(idx, code, sent, answered)`` arrays."""
    return tally_sales(changes, seats, since)[0]


def tally_sales(
    changes: list[Any], seats: int, since: float
) -> tuple[float | None, dict[str, int]]:
    """``sold_out_after``'s figure, and what the buyers were last told of the seats it did
    not count sold by the end (``{"held": n, "free": n, "never": n}``; empty when sold out).

    Changes are replayed in the order they were answered. An answer can come late, after
    a later change to its seat was answered to someone else (a release answered after the
    seat it freed was held and sold again, its client process busy meanwhile), so a change
    to a seat told sold counts only if its request was sent after the sale was answered:
    nothing but the buyer's own cancel, sent once the sale was answered, can undo a sale."""
    idx = np.concatenate([np.frombuffer(c[0], dtype=np.int32) for c in changes])
    code = np.concatenate([np.frombuffer(c[1], dtype=np.int8) for c in changes])
    t0 = np.concatenate([np.frombuffer(c[2], dtype=np.float64) for c in changes])
    t1 = np.concatenate([np.frombuffer(c[3], dtype=np.float64) for c in changes])
    state: dict[int, int] = {}
    sold_at: dict[int, float] = {}
    sold = 0
    for i in np.argsort(t1, kind="stable"):
        seat, now = int(idx[i]), int(code[i])
        was = state.get(seat)
        if was == SOLD and t0[i] < sold_at[seat]:
            continue  # sent before the sale was answered: an earlier change, answered late
        sold += (now == SOLD) - (was == SOLD)
        state[seat] = now
        if now == SOLD:
            sold_at[seat] = float(t1[i])
        if sold >= seats:
            return round(float(t1[i]) - since, 3), {}
    last = {"held": 0, "free": 0, "never": seats - len(state)}
    for now in state.values():
        if now != SOLD:
            last["held" if now == HELD else "free"] += 1
    return None, last
