"""The surge report: figures from the raw records, printed, as JSON and as one HTML file.

How each figure is measured (all times ``time.monotonic()`` in the client processes,
relative to the phase start the parent gave every process):

- throughput: successful requests per second, bucketed by the second their answer came;
  ``*_per_s`` is the mean over the phase (start to last answer); ``peak_*_per_s`` the best
  mean over a sliding window of ``PEAK_WINDOW`` seconds.
- latency: request sent to response read, per kind, over the 2xx answers (``*_any`` over
  every answer, conflicts included); p50/p95/p99/max in ms. "At peak" figures are over the
  requests sent inside the peak holds window.
- conflict rate: holds answered 409 ``seat_unavailable`` / ``sold_out`` over hold attempts.
- fan-out: for each seat change a buyer caused and was told about (hold 201 -> held, booking
  201 -> sold, release/cancel -> free) and for each probe watcher, the first receipt at that
  watcher of a ``seats`` message carrying that seat with that code, received after the
  buyer SENT its request (nothing can be published before) and at most ``MATCH_WINDOW``
  seconds after its answer. Fan-out = receipt time - time the buyer got its answer. The
  change is published inside the Redis script, before the hub has answered, so a value
  can be negative; it counts the broadcaster's per-tick conflation delay. A change that was
  conflated away (held and sold within one tick) or only arrived in a snapshot is not
  matched; the match rate is reported. Each message's ``seq`` continuity is checked by the
  reference mirror of every watcher (gaps, resyncs and snapshots are counted).
- ceiling ratio: hub peak holds/s over ceiling peak holds/s (same window length).
- waiting room (``surge --waiting-room``): time to admission, queue updates per waiter,
  the longest silence, fairness and the time to sell out, as ``loadtest.queue_figures``
  says; with ``--compare``, the same surge without the room on a fresh event of the same
  seats, and the ratio of the two sell-out times (with / without).
"""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from loadtest import queue_figures
from loadtest.audit import Audit
from loadtest.records import CANCEL, CEILING_HOLD, CONFIRM, HOLD, KIND_NAMES, RELEASE

PEAK_WINDOW = 3
MATCH_WINDOW = 2.0
TARGETS = {"ratio": 0.5, "p99_hold_ms": 100.0, "p99_confirm_ms": 200.0}
ROOM_TARGETS = {"pre_opening_abs_rho": 0.1, "late_rho": 0.95, "sellout_ratio": 1.25}


def _merge(results: dict[int, Any]) -> dict[str, Any]:
    start = min(r["start_at"] for r in results.values())
    kind = np.concatenate([np.frombuffer(r["kind"], dtype=np.int8) for r in results.values()])
    t0 = np.concatenate([np.frombuffer(r["t0"], dtype=np.float64) for r in results.values()])
    lat = np.concatenate([np.frombuffer(r["latency"], dtype=np.float64) for r in results.values()])
    status = np.concatenate([np.frombuffer(r["status"], dtype=np.int16) for r in results.values()])
    errors: Counter[str] = Counter()
    for r in results.values():
        errors.update(r["errors"])
    stopped = [r["stopped_at"] for r in results.values() if r.get("stopped_at")]
    return {
        "start": start,
        "duration": (min(stopped) - start) if stopped else None,
        "kind": kind,
        "t0": t0 - start,
        "lat": lat,
        "status": status,
        "errors": dict(errors.most_common()),
    }


def percentiles(values_s: np.ndarray) -> dict[str, float | int]:
    """p50/p95/p99/max in ms of durations given in seconds."""
    if len(values_s) == 0:
        return {"n": 0}
    ms = values_s * 1000.0
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {
        "n": len(ms),
        "p50": round(float(p50), 2),
        "p95": round(float(p95), 2),
        "p99": round(float(p99), 2),
        "max": round(float(ms.max()), 2),
    }


def _per_second(t: np.ndarray, seconds: int) -> list[int]:
    counts = np.bincount(np.clip(t.astype(np.int64), 0, seconds - 1), minlength=seconds)
    return [int(c) for c in counts[:seconds]]


def _peak(series: Sequence[int]) -> tuple[float, int]:
    """Best mean over PEAK_WINDOW consecutive seconds, and where that window starts."""
    if not series:
        return 0.0, 0
    width = min(PEAK_WINDOW, len(series))
    sums = np.convolve(np.asarray(series, dtype=np.float64), np.ones(width), mode="valid")
    at = int(np.argmax(sums))
    return float(sums[at] / width), at


def _series_percentile(
    t: np.ndarray, lat: np.ndarray, seconds: int, q: float
) -> list[float | None]:
    out: list[float | None] = []
    bucket = t.astype(np.int64)
    for s in range(seconds):
        chosen = lat[bucket == s]
        out.append(round(float(np.percentile(chosen, q) * 1000), 2) if len(chosen) else None)
    return out


def fanout(results: dict[int, Any], start: float) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Join buyers' seat changes with the probe watchers' receipts (see the module doc).

    Returns:
        (latencies in s, answer times of the matched changes relative to start, figures).
    """
    ch = [r["changes"] for r in results.values()]
    idx = np.concatenate([np.frombuffer(c[0], dtype=np.int32) for c in ch]).astype(np.int64)
    code = np.concatenate([np.frombuffer(c[1], dtype=np.int8) for c in ch]).astype(np.int64)
    t0 = np.concatenate([np.frombuffer(c[2], dtype=np.float64) for c in ch]) - start
    t1 = np.concatenate([np.frombuffer(c[3], dtype=np.float64) for c in ch]) - start
    key = idx * 4 + code
    lats: list[np.ndarray] = []
    when: list[np.ndarray] = []
    probes = [p for r in results.values() for p in r.get("probes", [])]
    attempted = matched = 0
    for p_idx, p_code, p_t, _snapshots in probes:
        pk = np.frombuffer(p_idx, dtype=np.int32).astype(np.int64) * 4 + np.frombuffer(
            p_code, dtype=np.int8
        )
        pt = np.frombuffer(p_t, dtype=np.float64) - start
        # Composite sort key: seat/code first, then time (times < 10,000 s, µs precision).
        composite = pk * 1e4 + pt
        order = np.argsort(composite, kind="stable")
        composite, pk, pt = composite[order], pk[order], pt[order]
        at = np.searchsorted(composite, key * 1e4 + t0, side="left")
        ok = at < len(composite)
        at_ok = np.where(ok, at, 0)
        if len(composite):
            ok &= (pk[at_ok] == key) & (pt[at_ok] <= t1 + MATCH_WINDOW)
        else:
            ok[:] = False
        attempted += len(key)
        matched += int(ok.sum())
        lats.append(pt[at_ok][ok] - t1[ok])
        when.append(t1[ok])
    latency = np.concatenate(lats) if lats else np.array([])
    answered = np.concatenate(when) if when else np.array([])
    figures = {
        "probes": len(probes),
        "changes": len(key),
        "matched": matched,
        "match_rate": round(matched / attempted, 4) if attempted else None,
        "negative_share": round(float((latency < 0).mean()), 4) if len(latency) else None,
        "probe_snapshots": sum(p[3] for p in probes),
    }
    return latency, answered, figures


def _surge(results: dict[int, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    m = _merge(results)
    kind, t0, lat, status = m["kind"], m["t0"], m["lat"], m["status"]
    ok = (status >= 200) & (status < 300)
    t1 = t0 + lat
    duration = m["duration"] or (float(t1.max()) if len(t1) else 0.0)
    seconds = max(1, int(np.ceil(duration)))
    holds_ok = ok & (kind == HOLD)
    confirms_ok = ok & (kind == CONFIRM)
    hold_attempts = kind == HOLD
    conflicts = hold_attempts & (status == 409)
    hold_series = _per_second(t1[holds_ok], seconds)
    booking_series = _per_second(t1[confirms_ok], seconds)
    peak_holds, peak_at = _peak(hold_series)
    peak_bookings, _ = _peak(booking_series)
    in_peak = (t0 >= peak_at) & (t0 < peak_at + PEAK_WINDOW)
    latency: dict[str, Any] = {}
    for k in (HOLD, CONFIRM, RELEASE, CANCEL):
        latency[KIND_NAMES[k]] = percentiles(lat[ok & (kind == k)])
        latency[f"{KIND_NAMES[k]}_any"] = percentiles(lat[(kind == k) & (status > 0)])
    fan_lat, fan_t, fan_figures = fanout(results, m["start"])
    latency["fanout"] = percentiles(fan_lat)
    watchers: Counter[str] = Counter()
    closed: Counter[str] = Counter()
    for r in results.values():
        w = dict(r["watchers"])
        closed.update(w.pop("closed"))
        watchers.update(w)
    abandoned = sum(row.get("abandoned", 0) for row in rows)
    return {
        "duration_s": round(duration, 2),
        "requests": len(kind),
        "holds": int(holds_ok.sum()),
        "hold_attempts": int(hold_attempts.sum()),
        "bookings": int(confirms_ok.sum()),
        "releases": int((ok & (kind == RELEASE)).sum()),
        "cancellations": int((ok & (kind == CANCEL)).sum()),
        "abandoned_holds": abandoned,
        "tickets_booked": sum(len(b[0]) for r in results.values() for b in r["bookings"].values()),
        "holds_per_s": round(int(holds_ok.sum()) / duration, 1) if duration else 0.0,
        "bookings_per_s": round(int(confirms_ok.sum()) / duration, 1) if duration else 0.0,
        "peak_holds_per_s": round(peak_holds, 1),
        "peak_bookings_per_s": round(peak_bookings, 1),
        "peak_window_s": [peak_at, peak_at + PEAK_WINDOW],
        "conflicts": int(conflicts.sum()),
        "conflict_rate": round(int(conflicts.sum()) / int(hold_attempts.sum()), 4)
        if hold_attempts.any()
        else 0.0,
        "errors": int((~ok & ~conflicts).sum()),
        "errors_by_code": m["errors"],
        "latency_ms": latency,
        "at_peak_ms": {
            "hold": percentiles(lat[in_peak & ok & (kind == HOLD)]),
            "confirm": percentiles(lat[in_peak & ok & (kind == CONFIRM)]),
        },
        "fanout": {**fan_figures, "method": __doc__.split("- fan-out:")[1].split("- ceiling")[0]},
        "watchers": {**dict(watchers), "closed": dict(closed)},
        "series": {
            "second": list(range(1, seconds + 1)),
            "holds": hold_series,
            "bookings": booking_series,
            "conflicts": _per_second(t1[conflicts], seconds),
            "errors": _per_second(t1[~ok & ~conflicts], seconds),
            "hold_p50_ms": _series_percentile(t0[holds_ok], lat[holds_ok], seconds, 50),
            "hold_p99_ms": _series_percentile(t0[holds_ok], lat[holds_ok], seconds, 99),
            "confirm_p50_ms": _series_percentile(t0[confirms_ok], lat[confirms_ok], seconds, 50),
            "confirm_p99_ms": _series_percentile(t0[confirms_ok], lat[confirms_ok], seconds, 99),
            "fanout_p50_ms": _series_percentile(fan_t, fan_lat, seconds, 50),
            "fanout_p99_ms": _series_percentile(fan_t, fan_lat, seconds, 99),
            "client_cpu": [row["client_cpu"] for row in rows],
            "hub_cpu": [row["hub_cpu"] for row in rows],
            # The event's seats each second, as the progress line read them.
            "seats_sold": [row.get("sold") for row in rows],
            "seats_held": [row.get("held") for row in rows],
            "seats_free": [row.get("free") for row in rows],
        },
    }


def _ceiling(results: dict[int, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    m = _merge(results)
    kind, t0, lat, status = m["kind"], m["t0"], m["lat"], m["status"]
    ok = (status >= 200) & (status < 300) & (kind == CEILING_HOLD)
    t1 = t0 + lat
    duration = m["duration"] or (float(t1.max()) if len(t1) else 0.0)
    seconds = max(1, int(np.ceil(duration)))
    series = _per_second(t1[ok], seconds)
    peak, _ = _peak(series)
    return {
        "duration_s": round(duration, 2),
        "holds": int(ok.sum()),
        "holds_per_s": round(int(ok.sum()) / duration, 1) if duration else 0.0,
        "peak_holds_per_s": round(peak, 1),
        "latency_ms": {"hold": percentiles(lat[ok])},
        "errors_by_code": m["errors"],
        "series": {
            "second": list(range(1, seconds + 1)),
            "holds": series,
            "client_cpu": [row["client_cpu"] for row in rows],
        },
    }


def build(
    meta: dict[str, Any],
    surge: dict[int, Any],
    surge_rows: list[dict[str, Any]],
    ceiling: dict[int, Any] | None,
    ceiling_rows: list[dict[str, Any]],
    audit: Audit,
    *,
    throughput: dict[int, Any] | None = None,
    throughput_rows: list[dict[str, Any]] | None = None,
    without_room: tuple[dict[int, Any], list[dict[str, Any]], int] | None = None,
) -> dict[str, Any]:
    """Every figure of the run as one JSON-able dict.

    The hub/ceiling ratio exists only when this run measured both back to back at the same
    concurrency (``throughput`` and ``ceiling``: the same client processes, connections and
    tokens, no think time, an event too large to sell out); the surge's own holds/s, with
    think time and a sell-out, compares with nothing.

    A waiting-room surge (``meta["join_window_s"]`` set) adds ``waiting_room``, and with
    ``without_room`` (that surge's results, rows and seats) ``without_room`` and the ratio
    of the sell-out times.

    A target is ``True`` or ``False`` when measured, ``None`` when the run could not
    measure it (no database for the audit, no comparison)."""
    s = _surge(surge, surge_rows)
    room = _room(meta, surge, surge_rows, s, without_room)
    c = _ceiling(ceiling, ceiling_rows) if ceiling else None
    t = _ceiling(throughput, throughput_rows or []) if throughput else None
    ratio = (
        round(t["peak_holds_per_s"] / c["peak_holds_per_s"], 3)
        if t and c and c["peak_holds_per_s"]
        else None
    )
    hold_p99 = s["at_peak_ms"]["hold"].get("p99")
    confirm_p99 = s["at_peak_ms"]["confirm"].get("p99")
    targets = {
        "zero_double_sales": None
        if audit.skipped
        else audit.figures.get("double_sold_seats", 1) == 0 and audit.ok,
        "sold_out": audit.figures.get("sold_api") == meta["seats"],
        "ratio_ge_0_5": None if ratio is None else ratio >= TARGETS["ratio"],
        "p99_hold_le_100ms": hold_p99 is not None and hold_p99 <= TARGETS["p99_hold_ms"],
        "p99_confirm_le_200ms": confirm_p99 is not None
        and confirm_p99 <= TARGETS["p99_confirm_ms"],
    }
    if room is not None:
        targets.update(_room_targets(room))
    return {
        "meta": meta,
        "surge": s,
        "ceiling": c,
        "throughput": t,
        "ratio": ratio,
        "targets": targets,
        "audit": audit.as_json(),
        "method": __doc__,
        **({"waiting_room": room} if room is not None else {}),
    }


def _room(
    meta: dict[str, Any],
    results: dict[int, Any],
    rows: list[dict[str, Any]],
    s: dict[str, Any],
    without_room: tuple[dict[int, Any], list[dict[str, Any]], int] | None,
) -> dict[str, Any] | None:
    """The waiting room's figures (None for a surge without a room); adds the queue's
    series to the surge's."""
    if meta.get("join_window_s") is None:
        return None
    start = min(r["start_at"] for r in results.values())
    opening = start + meta["join_window_s"]
    ended = max(r["stopped_at"] or opening for r in results.values())
    waits = [w for r in results.values() for w in r.get("waits", [])]
    room = queue_figures.room(waits, opening, ended)
    changes = [r["changes"] for r in results.values()]
    room["sold_out_after_s"], room["unsold_last_told"] = queue_figures.tally_sales(
        changes, meta["seats"], opening
    )
    room["without_room"] = None
    room["sellout_ratio"] = None
    if without_room is not None:
        w_results, w_rows, w_seats = without_room
        w_start = min(r["start_at"] for r in w_results.values())
        w_changes = [r["changes"] for r in w_results.values()]
        w_sold, w_unsold = queue_figures.tally_sales(w_changes, w_seats, w_start)
        room["without_room"] = {
            "sold_out_after_s": w_sold,
            "unsold_last_told": w_unsold,
            "surge": _surge(w_results, w_rows),
        }
        if w_sold and room["sold_out_after_s"] is not None:
            room["sellout_ratio"] = round(room["sold_out_after_s"] / w_sold, 3)
    s["series"]["queue_waiting"] = [row.get("waiting", 0) for row in rows]
    s["series"]["admitted_per_s"] = [row.get("admitted", 0) for row in rows]
    return room


def _room_targets(room: dict[str, Any]) -> dict[str, bool | None]:
    fair = room["fairness"]
    pre, late, ratio = fair["pre_opening_rho"], fair["late_rho"], room["sellout_ratio"]
    return {
        "queue_update_every_2s": room["every_waiter_updated_within_target"],
        "fair_pre_opening_rho": None
        if pre is None
        else abs(pre) < ROOM_TARGETS["pre_opening_abs_rho"],
        "fair_late_rho": None if late is None else late > ROOM_TARGETS["late_rho"],
        "sellout_le_1_25x_without": None
        if ratio is None
        else ratio <= ROOM_TARGETS["sellout_ratio"],
    }


def summary(r: dict[str, Any]) -> str:
    s, c, meta = r["surge"], r["ceiling"], r["meta"]  # r["throughput"] may be None
    lat = s["latency_ms"]

    def pct(d: dict[str, Any]) -> str:
        if not d.get("n"):
            return "n/a"
        return f"p50 {d['p50']:.1f}  p95 {d['p95']:.1f}  p99 {d['p99']:.1f}  max {d['max']:.1f} ms"

    setup = meta["ready"]
    register = max(v["register_s"] for v in setup.values())
    lines = [
        "",
        f"surge: {meta['args']['buyers']} buyers, {meta['args']['watchers']} watchers, "
        f"{meta['seats']} seats, {s['duration_s']:.1f}s"
        + (f" (sold out at ~{meta['sold_out_at_s']:.0f}s)" if meta.get("sold_out_at_s") else ""),
        f"  accounts signed up in {register:.1f}s (set-up {meta['setup_s']:.1f}s)",
        f"  holds      {s['holds']:7d}  {s['holds_per_s']:8.1f}/s  "
        f"peak {s['peak_holds_per_s']:.1f}/s",
        f"  bookings   {s['bookings']:7d}  {s['bookings_per_s']:8.1f}/s  "
        f"peak {s['peak_bookings_per_s']:.1f}/s  ({s['tickets_booked']} tickets)",
        f"  releases {s['releases']}, cancellations {s['cancellations']}, "
        f"abandoned holds {s['abandoned_holds']}",
        f"  conflicts  {s['conflicts']} ({s['conflict_rate']:.1%} of holds)  errors {s['errors']}",
    ]
    for code, n in s["errors_by_code"].items():
        lines.append(f"    {n:6d}  {code}")
    lines += [
        f"  hold       {pct(lat['hold'])}",
        f"  confirm    {pct(lat['confirm'])}",
        f"  at peak    hold p99 {s['at_peak_ms']['hold'].get('p99', 'n/a')} ms, "
        f"confirm p99 {s['at_peak_ms']['confirm'].get('p99', 'n/a')} ms "
        f"(window {s['peak_window_s'][0]}-{s['peak_window_s'][1]}s)",
        f"  fan-out    {pct(lat['fanout'])}",
        f"    {fanout_words(s['fanout'])}",
        f"  watchers   {s['watchers'].get('connected', 0)} connected, "
        f"gaps {s['watchers'].get('gaps', 0)}, closed {s['watchers'].get('closed')}",
    ]
    t = r.get("throughput")
    if t:
        lines.append(
            f"hub back-to-back holds: {t['holds']} holds, {t['holds_per_s']:.1f}/s, "
            f"peak {t['peak_holds_per_s']:.1f}/s;  hold {pct(t['latency_ms']['hold'])}"
        )
    if c:
        lines.append(
            f"ceiling: {c['holds']} holds, {c['holds_per_s']:.1f}/s, "
            f"peak {c['peak_holds_per_s']:.1f}/s;  hold {pct(c['latency_ms']['hold'])}"
        )
    if r["ratio"] is not None:
        lines.append(
            f"hub/ceiling hold throughput, back to back at the same concurrency "
            f"(peak {PEAK_WINDOW}s windows): {r['ratio']:.1%}"
        )
    if r.get("waiting_room"):
        lines += room_lines(r["waiting_room"])
    lines.append("targets:")
    lines += [f"  {name:26s} {words}" for name, words in target_words(r)]
    return "\n".join(lines)


def room_lines(w: dict[str, Any]) -> list[str]:
    """The waiting room's figures as printed."""

    def secs(d: dict[str, Any]) -> str:
        if not d.get("n"):
            return "n/a"
        return f"p50 {d['p50']:.2f}  p95 {d['p95']:.2f}  p99 {d['p99']:.2f}  max {d['max']:.2f} s"

    def rho(value: float | None, n: int) -> str:
        return f"{value:+.3f} ({n} admitted)" if value is not None else f"n/a ({n} admitted)"

    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(w["outcomes"].items()))
    updates, gap, fair = w["updates_per_waiter_per_s"], w["longest_gap_s"], w["fairness"]
    sold = w["sold_out_after_s"]
    lines = [
        f"waiting room: {w['waiters']} waiters ({w['pre_opening']} before the opening, "
        f"{w['late']} after): {outcomes}; socket failed, polled instead: "
        f"{w['socket_fallbacks']}",
        f"  time to admission  {secs(w['time_to_admission_s'])}",
        f"  queue updates      {updates['mean'] if updates['mean'] is not None else 'n/a'}"
        f" per waiter per second (lowest {updates['min']}, over {updates['waiters']} waiters "
        f"who waited {queue_figures.RATE_MIN_WAIT_S:.0f} s or more)",
        f"  longest silence    {secs(gap)} per waiter; {gap['over_target']} waiters went "
        f"over {gap['target_s']:.0f} s without an update" + _silences_began(gap),
        f"  fairness (Spearman, join order vs admission order): before the opening "
        f"{rho(fair['pre_opening_rho'], fair['pre_opening_admitted'])}, late arrivals "
        f"{rho(fair['late_rho'], fair['late_admitted'])}; admission order is the push "
        f"round ({fair['admission_rounds']} rounds)",
        "  sold out "
        + (f"{sold:.2f} s after the opening" if sold is not None else "never")
        + " (by the bookings buyers were told about)"
        + _unsold(w["unsold_last_told"]),
    ]
    without = w.get("without_room")
    if without is not None:
        w_sold = without["sold_out_after_s"]
        ratio = w["sellout_ratio"]
        lines.append(
            "  without the room: sold out "
            + (f"{w_sold:.2f} s after the start" if w_sold is not None else "never")
            + _unsold(without["unsold_last_told"])
            + (f"; with / without {ratio:.2f}x" if ratio is not None else "")
            + f" (hold p99 {without['surge']['latency_ms']['hold'].get('p99', 'n/a')} ms, "
            f"confirm p99 {without['surge']['latency_ms']['confirm'].get('p99', 'n/a')} ms)"
        )
    return lines


def _unsold(last: dict[str, int]) -> str:
    """What the buyers were last told of the seats the tally did not count sold."""
    if not last:
        return ""
    told = ", ".join(f"{what} {n}" for what, n in last.items() if n)
    return f"; seats not told sold, last told: {told}"


def _silences_began(gap: dict[str, Any]) -> str:
    began = gap["over_target_began_s"]
    if not began["n"]:
        return ""
    return (
        f" ({began['n']} such silences, beginning {began['min']:+.1f} to {began['max']:+.1f} s "
        f"from the opening, median {began['median']:+.1f} s)"
    )


def fanout_words(f: dict[str, Any]) -> str:
    """The fan-out sample in plain words: what was timed, out of what."""
    if not f.get("probes"):
        return "not measured (no probe watchers)"
    pairs = f["changes"] * f["probes"]
    rate = f"{f['match_rate']:.0%}" if f.get("match_rate") is not None else "n/a"
    return (
        f"timed at {f['probes']} probe watchers for each of the {f['changes']} seat changes "
        f"buyers were told about: {f['matched']} of those {pairs} arrivals ({rate}) were seen "
        f"as a delta; the rest were merged into one tick with a later change or came in a "
        f"snapshot"
    )


def target_words(r: dict[str, Any]) -> list[tuple[str, str]]:
    """Each target as ``(name, "yes" | "NO: why" | "n/a: why")``."""
    figures = r["audit"]["figures"]
    words: list[tuple[str, str]] = []
    for name, met in r["targets"].items():
        if met:
            words.append((name, "yes"))
        elif met is None:
            why = {
                "zero_double_sales": f"not audited ({r['audit'].get('skipped')})",
                "ratio_ge_0_5": "no back-to-back comparison in this run",
                "queue_update_every_2s": "no waiter waited by socket",
                "fair_pre_opening_rho": "fewer than 3 of the early crowd admitted",
                "fair_late_rho": "fewer than 3 late arrivals admitted (sold out before)",
                "sellout_le_1_25x_without": "no --compare, or a surge that did not sell out",
            }.get(name, "not measured")
            words.append((name, f"n/a: {why}"))
        elif name == "sold_out":
            words.append((name, "NO: " + _unsold_words(figures, r["meta"]["seats"])))
        else:
            words.append((name, "NO"))
    return words


def _unsold_words(figures: dict[str, Any], seats: int) -> str:
    sold, held, free = (figures.get(k, 0) for k in ("sold_api", "held_api", "free_api"))
    parts = [f"{sold} of {seats} sold"]
    if held:
        parts.append(
            f"{held} still held at the end (abandoned holds: they return to sale when they expire)"
        )
    if free:
        parts.append(f"{free} free")
    return ", ".join(parts)


def write_json(r: dict[str, Any], path: str) -> None:
    Path(path).write_text(json.dumps(r, indent=2, default=str))


# --- HTML -----------------------------------------------------------------------------

_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]


def svg_chart(
    title: str, x: Sequence[float], series: dict[str, Sequence[float | None]], unit: str
) -> str:
    """A self-contained SVG line chart (no scripts, no network)."""
    width, height, left, bottom, top, right = 720, 260, 56, 30, 28, 130
    values = [v for s in series.values() for v in s if v is not None]
    ymax = max(values) if values else 1.0
    ymax = ymax * 1.1 if ymax > 0 else 1.0
    xmax = max(x) if len(x) else 1.0
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(xv: float) -> float:
        return left + plot_w * (xv / xmax if xmax else 0)

    def py(yv: float) -> float:
        return top + plot_h * (1 - yv / ymax)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{html.escape(title)}">',
        f'<text x="{left}" y="18" font-size="14" font-weight="bold">{html.escape(title)}</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" '
        f'y2="{top + plot_h}" stroke="#333"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#333"/>',
    ]
    for i in range(5):
        yv = ymax * i / 4
        parts.append(
            f'<text x="{left - 6}" y="{py(yv) + 4:.1f}" font-size="10" text-anchor="end">'
            f"{yv:.0f}</text>"
            f'<line x1="{left}" y1="{py(yv):.1f}" x2="{left + plot_w}" y2="{py(yv):.1f}" '
            'stroke="#eee"/>'
        )
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{height - 4}" font-size="10" text-anchor="middle">'
        f"seconds  ({html.escape(unit)})</text>"
    )
    for n, (name, ys) in enumerate(series.items()):
        colour = _COLOURS[n % len(_COLOURS)]
        points = " ".join(
            f"{px(xv):.1f},{py(yv):.1f}" for xv, yv in zip(x, ys, strict=False) if yv is not None
        )
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" points="{points}"/>'
        )
        ly = top + 14 * n + 8
        parts.append(
            f'<rect x="{left + plot_w + 10}" y="{ly - 8}" width="10" height="3" fill="{colour}"/>'
            f'<text x="{left + plot_w + 24}" y="{ly}" font-size="11">{html.escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def write_html(r: dict[str, Any], path: str) -> None:
    """One self-contained page: a one-screen summary and the four charts that tell the run
    (holds and bookings per second, latency, the sell-out curve, and the waiting room's
    queue when the run had one), then everything else folded below."""
    s, c = r["surge"], r["ceiling"]
    ser = s["series"]
    x = ser["second"]
    rows_x = list(range(1, len(ser["seats_sold"]) + 1))
    main = [
        svg_chart(
            "Holds and bookings per second",
            x,
            {k: ser[k] for k in ("holds", "bookings", "conflicts", "errors")},
            "per second",
        ),
        svg_chart(
            "Latency (p99 and p50, by the second a request was sent)",
            x,
            {k: ser[k] for k in ("hold_p99_ms", "confirm_p99_ms", "hold_p50_ms", "confirm_p50_ms")},
            "ms",
        ),
    ]
    if any(v is not None for v in ser["seats_sold"]):
        main.append(
            svg_chart(
                "Sell-out: the event's seats",
                rows_x,
                {
                    "sold": ser["seats_sold"],
                    "held": ser["seats_held"],
                    "free": ser["seats_free"],
                },
                "seats",
            )
        )
    queue = {k: ser[k] for k in ("queue_waiting", "admitted_per_s") if ser.get(k)}
    if queue:
        main.append(
            svg_chart(
                "Waiting room: queue length and admissions",
                list(range(1, max(len(v) for v in queue.values()) + 1)),
                queue,
                "buyers",
            )
        )
    folded = [
        svg_chart(
            "Fan-out (state change answered -> receipt at watchers)",
            x,
            {k: ser[k] for k in ("fanout_p50_ms", "fanout_p99_ms")},
            "ms",
        )
    ]
    cpu = ser["client_cpu"]
    if cpu:
        cx = list(range(1, len(cpu) + 1))
        cpu_series: dict[str, Sequence[float | None]] = {
            f"client {i}": [row[i] if i < len(row) else None for row in cpu]
            for i in range(len(cpu[0]))
        }
        if any(v is not None for v in ser["hub_cpu"]):
            cpu_series["hub workers"] = ser["hub_cpu"]
        folded.append(svg_chart("CPU during the surge", cx, cpu_series, "% of one core"))
    if c:
        folded.append(
            svg_chart(
                "Ceiling vs hub holds",
                c["series"]["second"],
                {"ceiling holds/s": c["series"]["holds"], "hub holds/s": ser["holds"]},
                "per second",
            )
        )
    figures = json.dumps({k: v for k, v in r.items() if k != "method"}, indent=1, default=str)
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Evently surge report</title>
<style>body{{font:14px system-ui,sans-serif;margin:1.5em;max-width:1100px}}
pre{{background:#f6f6f6;padding:1em;overflow:auto}} .ok{{color:#070}} .bad{{color:#b00}}
.na{{color:#666}} .cards{{display:grid;grid-template-columns:repeat(4,1fr);gap:.6em}}
.card{{border:1px solid #ddd;border-radius:6px;padding:.5em .7em}}
.card b{{display:block;font-size:1.5em}} .charts{{display:grid;
grid-template-columns:repeat(2,1fr);gap:.4em}} .charts svg{{max-width:100%;height:auto}}
summary{{cursor:pointer;font-weight:bold;margin:.8em 0}}</style>
</head><body>
<h1>Evently surge report</h1>
<p>{html.escape(r["meta"]["date"])} — <code>{html.escape(r["meta"]["command"])}</code></p>
<div class="cards">{"".join(_cards(r))}</div>
<h2>Targets</h2><ul>{"".join(_target_items(r))}</ul>
<div class="charts">{"".join(f"<div>{chart}</div>" for chart in main)}</div>
<details><summary>Summary as printed</summary><pre>{html.escape(summary(r))}</pre></details>
<details><summary>More charts</summary>{"".join(f"<div>{c}</div>" for c in folded)}</details>
<details><summary>Method</summary><pre>{html.escape(r["method"] or "")}</pre></details>
<details><summary>All figures</summary><pre>{html.escape(figures)}</pre></details>
</body></html>
"""
    Path(path).write_text(body)


def _card(label: str, value: str, note: str = "", state: str = "") -> str:
    return (
        f'<div class="card {state}">{html.escape(label)}<b>{html.escape(value)}</b>'
        f"{html.escape(note)}</div>"
    )


def _cards(r: dict[str, Any]) -> list[str]:
    s, meta, audit = r["surge"], r["meta"], r["audit"]
    if audit.get("skipped"):
        verdict = _card("Audit", "skipped", audit["skipped"], "na")
    else:
        verdict = _card(
            "Audit",
            "ok" if audit["ok"] else "FAILED",
            f"{audit['figures'].get('double_sold_seats', '?')} seats sold twice",
            "ok" if audit["ok"] else "bad",
        )
    sold = r["targets"]["sold_out"]
    at = meta.get("sold_out_at_s")
    sold_card = _card(
        "Sold out",
        f"at {at:.0f} s" if sold and at else ("yes" if sold else "no"),
        f"{meta['seats']} seats in {s['duration_s']:.0f} s"
        if sold
        else _unsold_words(audit["figures"], meta["seats"]),
        "ok" if sold else "bad",
    )

    def p99(kind: str, target: float) -> str:
        value = s["at_peak_ms"][kind].get("p99")
        if value is None:
            return _card(f"{kind} p99 at peak", "n/a")
        state = "ok" if value <= target else "bad"
        return _card(f"{kind} p99 at peak", f"{value:.0f} ms", f"target {target:.0f} ms", state)

    ratio = r["ratio"]
    return [
        *(_room_cards(r["waiting_room"]) if r.get("waiting_room") else []),
        verdict,
        sold_card,
        _card("Holds", f"{s['holds_per_s']:.0f}/s", f"peak {s['peak_holds_per_s']:.0f}/s"),
        _card("Bookings", f"{s['bookings']}", f"{s['tickets_booked']} tickets"),
        p99("hold", TARGETS["p99_hold_ms"]),
        p99("confirm", TARGETS["p99_confirm_ms"]),
        _card(
            "Fan-out p99",
            f"{s['latency_ms']['fanout']['p99']:.0f} ms"
            if s["latency_ms"]["fanout"].get("n")
            else "n/a",
            f"{s['watchers'].get('connected', 0)} watchers",
        ),
        _card(
            "Hub / ceiling",
            f"{ratio:.0%}" if ratio is not None else "n/a",
            "back to back, same clients" if ratio is not None else "not compared in this run",
            "na" if ratio is None else ("ok" if ratio >= TARGETS["ratio"] else "bad"),
        ),
    ]


def _room_cards(w: dict[str, Any]) -> list[str]:
    admission, gap, fair = w["time_to_admission_s"], w["longest_gap_s"], w["fairness"]
    pre, ratio = fair["pre_opening_rho"], w["sellout_ratio"]
    return [
        _card(
            "Time to admission p99",
            f"{admission['p99']:.1f} s" if admission.get("n") else "n/a",
            f"{admission.get('n', 0)} of {w['waiters']} waiters admitted",
        ),
        _card(
            "Longest queue silence",
            f"{gap['max']:.2f} s" if gap.get("n") else "n/a",
            f"target {gap['target_s']:.0f} s",
            "na" if not gap.get("n") else ("ok" if gap["max"] <= gap["target_s"] else "bad"),
        ),
        _card(
            "Fairness rho (early crowd)",
            f"{pre:+.2f}" if pre is not None else "n/a",
            f"late arrivals {fair['late_rho']:+.2f}" if fair["late_rho"] is not None else "",
            "na" if pre is None else ("ok" if abs(pre) < 0.1 else "bad"),
        ),
        _card(
            "Sell-out with / without room",
            f"{ratio:.2f}x" if ratio is not None else "n/a",
            "target 1.25x" if ratio is not None else "not compared in this run",
            "na" if ratio is None else ("ok" if ratio <= 1.25 else "bad"),
        ),
    ]


def _target_items(r: dict[str, Any]) -> list[str]:
    items = []
    for name, words in target_words(r):
        state = "ok" if words == "yes" else ("na" if words.startswith("n/a") else "bad")
        items.append(
            f'<li class="{state}"><code>{html.escape(name)}</code> {html.escape(words)}</li>'
        )
    for reason in r["audit"]["reasons"]:
        items.append(f'<li class="bad">audit: {html.escape(reason)}</li>')
    return items
