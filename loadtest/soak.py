"""``python -m loadtest soak --minutes 10``: a mixed load under rotating faults, with
invariants checked each minute and resources compared with their baseline at the end.

The run, in order:

1. Private servers, proxies and a hub of two workers (``loadtest.soak_rig``); buyer
   accounts seeded straight into PostgreSQL (``loadtest.accounts``).
2. The load starts (``loadtest.soak_load``): buyers, browsers, watchers. After a warm-up
   the load is paused and, once abandoned holds have expired, the baseline is sampled.
3. One cycle per minute (``--cycle-seconds``): a fresh on-sale behind a waiting room, a
   surge (``--surge-buyers`` without think time) for its first seconds, one fault from
   ``--faults`` in rotation, then the load is paused and every invariant is checked
   (``loadtest.soak_checks``), then it resumes. Resources are sampled every few seconds.
4. The load stops; after the same settling time the end is sampled and checked once more.
5. The report: printed, and with ``--html`` a self-contained page with one chart per figure
   over time (``loadtest.report.svg_chart``); ``--json`` keeps every figure.

The payment fault of issue 18 is not injected: the simulated provider's failure rate and
latency (``EVENTLY_PAYMENT_*``) are read once at start-up, so failing it means restarting
the hub, which the ``worker`` fault covers already.

Exit status: 0 when every invariant held at every check, every resource ended within its
tolerance and no request went unanswered past the client's timeout; 1 otherwise; 130 when
interrupted (everything started is stopped anyway).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import html
import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import aiohttp

from loadtest import accounts
from loadtest.buyers import PASSWORD
from loadtest.records import Http
from loadtest.report import svg_chart
from loadtest.soak_checks import (
    TOLERANCES,
    Check,
    check_invariants,
    resource_verdicts,
    sample_resources,
)
from loadtest.soak_load import CLIENT_TIMEOUT_S, Load, Shape
from loadtest.soak_rig import FAULTS, FaultResult, Rig

CHECK_RESERVE_S = 5.0  # the check starts this long before a cycle's end


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--minutes", type=float, default=10.0, help="length of the faulty part")
    p.add_argument("--cycle-seconds", type=float, default=60.0, help="one fault per cycle")
    p.add_argument(
        "--faults",
        default=",".join(FAULTS),
        help="faults injected in rotation, one per cycle (of: " + ", ".join(FAULTS) + ")",
    )
    p.add_argument(
        "--outage-seconds", type=float, default=8.0, help="how long a fault lasts (at most)"
    )
    p.add_argument("--surge-seconds", type=float, default=10.0, help="surge at each cycle start")
    p.add_argument("--buyers", type=int, default=20, help="buyers all along (with think time)")
    p.add_argument("--surge-buyers", type=int, default=60, help="buyers during the surges")
    p.add_argument("--browsers", type=int, default=8, help="event list and seat map readers")
    p.add_argument("--watchers", type=int, default=40, help="seat-map WebSocket watchers")
    p.add_argument("--queue-buyers", type=int, default=30, help="crowd of each on-sale")
    p.add_argument("--admit-per-second", type=float, default=10.0, help="on-sale admissions")
    p.add_argument("--think-ms", type=float, default=400.0, help="mean think time of a buyer")
    p.add_argument("--cancel-rate", type=float, default=0.2, help="share of bookings cancelled")
    p.add_argument("--lapse-rate", type=float, default=0.1, help="share of holds not confirmed")
    p.add_argument("--seats", type=int, default=2000, help="seats of each buyers' event")
    p.add_argument("--onsale-seats", type=int, default=60, help="seats of each on-sale event")
    p.add_argument("--hold-ttl", type=int, default=15, help="the hub's hold lifetime, seconds")
    p.add_argument("--workers", type=int, default=2, help="hub worker processes")
    p.add_argument(
        "--warmup-seconds",
        type=float,
        default=20.0,
        help="load (half of it a surge) before the baseline",
    )
    p.add_argument(
        "--settle-seconds",
        type=float,
        default=None,
        help="pause before the baseline and end samples (default: hold TTL + 5)",
    )
    p.add_argument("--sample-seconds", type=float, default=5.0, help="resource sampling period")
    p.add_argument("--html", dest="html_out", help="write the HTML report here")
    p.add_argument("--json", dest="json_out", help="write every figure as JSON here")


def plan_cycles(minutes: float, cycle_seconds: float) -> tuple[int, float]:
    """(cycles, seconds each): whole cycles filling ``minutes``; one shorter cycle when
    ``minutes`` is less than one cycle."""
    total = minutes * 60.0
    if total < cycle_seconds:
        return 1, total
    return max(1, round(total / cycle_seconds)), cycle_seconds


def run(args: argparse.Namespace) -> int:
    faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    unknown = set(faults) - set(FAULTS)
    if unknown or not faults:
        print(f"soak: unknown faults {sorted(unknown)}; choose from {FAULTS}", file=sys.stderr)
        return 2
    if args.minutes <= 0 or args.cycle_seconds < 20:
        print("soak: --minutes must be > 0 and --cycle-seconds >= 20", file=sys.stderr)
        return 2
    rig: Rig | None = None
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        print(f"starting private servers and a hub of {args.workers} workers...", flush=True)
        rig = Rig.start(args.hold_ttl, args.workers, args.watchers * 2 + 200)
        print(f"hub at {rig.url}", flush=True)
        results = asyncio.run(_soak(args, rig, faults))
        print(summary(results), flush=True)
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(results, indent=1, default=str))
        if args.html_out:
            write_html(results, args.html_out)
        return 0 if results["ok"] else 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("soak: interrupted; stopping everything it started", file=sys.stderr)
        return 130
    finally:
        with _signals_ignored():
            if rig is not None:
                rig.stop()
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    """A second Ctrl-C must not interrupt the clean-up."""
    old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


async def _soak(args: argparse.Namespace, rig: Rig, faults: list[str]) -> dict[str, Any]:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    load_before = os.getloadavg()
    cycles, cycle_s = plan_cycles(args.minutes, args.cycle_seconds)
    settle = args.settle_seconds if args.settle_seconds is not None else args.hold_ttl + 5.0
    shape = Shape(
        args.buyers, args.surge_buyers, args.browsers, args.watchers, args.queue_buyers,
        args.think_ms / 1000, args.cancel_rate, args.lapse_rate, args.seats, args.onsale_seats,
    )  # fmt: skip
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=CLIENT_TIMEOUT_S)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        http = Http(session, rig.url)
        login = await http.call(
            "POST", "/api/v1/auth/login", None, {"email": rig.admin[0], "password": rig.admin[1]}
        )
        if login.status != 200:
            raise RuntimeError(f"admin login: {login.status} {login.body}")
        count = args.buyers + args.surge_buyers + args.queue_buyers
        emails = [f"soak-{n}-{rig.prefix.split(':')[1]}@example.com" for n in range(count)]
        tokens = await accounts.seed_buyers(rig.servers.database_url, rig.secret, emails, PASSWORD)
        ws_url = rig.url.replace("http://", "ws://", 1)
        load = Load(http, ws_url, str(login.body["access_token"]), tokens, shape)
        soak = Soak(args, rig, load, faults, cycles, cycle_s, settle)
        try:
            return await soak.run(load_before)
        finally:
            await load.stop()


class Soak:
    """The timeline of one run and everything it recorded."""

    def __init__(
        self,
        args: argparse.Namespace,
        rig: Rig,
        load: Load,
        faults: list[str],
        cycles: int,
        cycle_s: float,
        settle: float,
    ) -> None:
        self.args, self.rig, self.load = args, rig, load
        self.faults, self.cycles, self.cycle_s, self.settle = faults, cycles, cycle_s, settle
        self.t0 = time.monotonic()
        self.samples: list[dict[str, Any]] = []
        self.rows: list[dict[str, Any]] = []
        self.checks: list[Check] = []

    def now(self) -> float:
        return time.monotonic() - self.t0

    async def sample(self, kinds: bool = False) -> dict[str, Any]:
        rig = self.rig
        row = await sample_resources(
            rig.hub_pids(), rig.servers.database_url, rig.servers.redis_url, self.now(), kinds
        )
        row["watchers_open"] = self.load.watch.open
        row["events"] = len(self.load.events)
        return row

    async def _sampler(self) -> None:
        while True:
            await asyncio.sleep(self.args.sample_seconds)
            row = await self.sample()
            row.update(self.load.take_tally())
            self.samples.append(row)

    async def _quiet_sample(self) -> dict[str, Any]:
        """Pause, let abandoned holds expire, sample (the load stays paused)."""
        await self.load.pause()
        await asyncio.sleep(self.settle)
        return await self.sample(kinds=True)

    async def _check(self) -> Check:
        load = self.load
        check = await check_invariants(
            load.http, self.rig.servers.database_url, load.events, load.bookings,
            load.mirror_views, load.watch.seq_backwards, self.now(),
        )  # fmt: skip
        load.watch.seq_backwards = 0  # counted once, in the check that saw it
        self.checks.append(check)
        return check

    async def run(self, load_before: tuple[float, float, float]) -> dict[str, Any]:
        load, args = self.load, self.args
        await load.create_discount_code("SOAK10", 10)
        await load.next_main_event()
        load.start()
        sampler = asyncio.create_task(self._sampler())
        try:
            print(f"warm-up {args.warmup_seconds:.0f}s, then settling {self.settle:.0f}s "
                  "for the baseline...", flush=True)  # fmt: skip
            # The second half of the warm-up is a surge: pools and caches reach the size they
            # keep, so the baseline is a warm hub's (what a leak is measured against).
            await asyncio.sleep(args.warmup_seconds / 2)
            load.surge.set()
            await asyncio.sleep(args.warmup_seconds / 2)
            load.surge.clear()
            baseline = await self._quiet_sample()
            load.resume()
            print(_resources_line("baseline", baseline), flush=True)
            for number in range(self.cycles):
                await self._cycle(number)
            await load.stop()
            await asyncio.sleep(self.settle)
            end = await self.sample(kinds=True)
            final = await self._check()
            print(_resources_line("end", end), flush=True)
        finally:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        verdicts = resource_verdicts(baseline, end, self.samples)
        return self._results(load_before, baseline, end, final, verdicts)

    async def _cycle(self, number: int) -> None:
        load, args = self.load, self.args
        start = time.monotonic()
        fault = self.faults[number % len(self.faults)]
        totals = Counter(load.totals)
        onsale: str | None = None
        try:
            await load.next_main_event()
            onsale = await load.on_sale(number + 1, args.admit_per_second, self.cycle_s * 0.8)
        except RuntimeError as exc:  # the admin API refused (still recovering): go on
            print(f"[{self.now():5.0f}s] cycle {number + 1}: no new event ({exc})", flush=True)
        load.surge.set()
        await _until(start + min(args.surge_seconds, self.cycle_s / 4))
        load.surge.clear()
        await _until(start + self.cycle_s * 0.3)
        outage = min(args.outage_seconds, self.cycle_s / 6)
        print(f"[{self.now():5.0f}s] cycle {number + 1}/{self.cycles}: fault {fault}", flush=True)
        result: FaultResult = await asyncio.to_thread(self.rig.inject, fault, outage)
        if result.error is None:
            # The first answers after the repair: the latest 201 moves on with the load,
            # so the first one sent after whole_at is the first success.
            result.hold_again_s, result.booking_again_s = await asyncio.gather(
                load.first_ok_after("hold", result.whole_at, 30.0),
                load.first_ok_after("confirm", result.whole_at, 30.0),
            )
        print(f"[{self.now():5.0f}s]   {result.line()}", flush=True)
        await _until(start + self.cycle_s - CHECK_RESERVE_S)
        paused = await load.pause()
        check = await self._check()
        resources = await self.sample()
        load.resume()
        done = Counter(load.totals)
        done.subtract(totals)
        row = {
            "cycle": number + 1,
            "at_s": round(self.now(), 1),
            "fault": asdict(result),
            "onsale_event": onsale,
            "answers": _answer_figures(done),
            "pause_s": round(paused, 2),
            "check": asdict(check),
            "resources": resources,
            "queue": dict(load.queue),
            "watchers": asdict(load.watch),
        }
        self.rows.append(row)
        print(_cycle_line(row), flush=True)

    def _results(
        self,
        load_before: tuple[float, float, float],
        baseline: dict[str, Any],
        end: dict[str, Any],
        final: Check,
        verdicts: list[dict[str, Any]],
    ) -> dict[str, Any]:
        invariants_ok = all(c.ok for c in self.checks)
        hangs = sum(n for k, n in self.load.totals.items() if "Timeout" in k)
        return {
            "meta": {
                "command": "python -m loadtest " + " ".join(sys.argv[1:]),
                "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "cpus": os.cpu_count(),
                "load_before": load_before,
                "load_after": os.getloadavg(),
                "cycles": self.cycles,
                "cycle_seconds": self.cycle_s,
                "settle_seconds": self.settle,
                "events": len(self.load.events),
                "args": {k: v for k, v in vars(self.args).items() if k != "func"},
            },
            "ok": invariants_ok and all(v["ok"] for v in verdicts) and not hangs,
            "invariants_ok": invariants_ok,
            "resources_ok": all(v["ok"] for v in verdicts),
            "hangs": hangs,
            "cycles": self.rows,
            "final_check": asdict(final),
            "baseline": baseline,
            "end": end,
            "verdicts": verdicts,
            "samples": self.samples,
            "answers": _answer_figures(self.load.totals),
            "queue": dict(self.load.queue),
            "watchers": asdict(self.load.watch),
        }


async def _until(deadline: float) -> None:
    await asyncio.sleep(max(0.0, deadline - time.monotonic()))


def _answer_figures(totals: Counter[str]) -> dict[str, int]:
    """Answers by outcome: bookings, holds, cancellations, refusals, errors, hangs."""
    out: Counter[str] = Counter()
    for key, n in totals.items():
        kind, status = key.split(" ", 1)
        if status.isdigit() and status.startswith("2"):
            out[f"{kind}_ok"] += n
        elif "Timeout" in status:
            out["hangs"] += n
        elif status.isdigit() and status.startswith("4"):
            out[f"refused_{status}"] += n
        else:
            out[f"errors_{status}"] += n
    return dict(sorted(out.items()))


def _resources_line(label: str, row: dict[str, Any]) -> str:
    return (
        f"{label}: hub RSS {row['rss_mib']:.0f} MiB, fds {row['fds']}, "
        f"PostgreSQL connections {row['pg_connections']}, Redis keys {row['redis_keys']}"
    )


def _cycle_line(row: dict[str, Any]) -> str:
    check = row["check"]
    broken = {k: v for k, v in check["violations"].items() if v}
    inv = "invariants ok" if not broken else f"INVARIANTS BROKEN {broken}"
    answers = row["answers"]
    errors = sum(v for k, v in answers.items() if k.startswith("errors"))
    return (
        f"[{row['at_s']:5.0f}s]   bookings {answers.get('confirm_ok', 0)}, "
        f"cancels {answers.get('cancel_ok', 0)}, errors {errors}, hangs "
        f"{answers.get('hangs', 0)}; {inv} (settled in {check['settle_s']:.1f}s); "
        + _resources_line("now", row["resources"])
    )


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def summary(r: dict[str, Any]) -> str:
    meta = r["meta"]
    lines = [
        f"soak: {meta['cycles']} cycles of {meta['cycle_seconds']:.0f}s, {meta['events']} events"
        f", load average {meta['load_before'][0]:.1f} -> {meta['load_after'][0]:.1f} on "
        f"{meta['cpus']} CPUs",
        "faults:",
    ]
    for row in r["cycles"]:
        f = row["fault"]
        err = f" FAILED: {f['error']}" if f["error"] else ""
        lines.append(
            f"  cycle {row['cycle']}: {f['name']:<8} {f['detail']}; degraded "
            f"{f['outage_s']:.1f}s; then ready {_fmt(f['recovery_s'])}s, a hold "
            f"{_fmt(f['hold_again_s'])}s, a booking {_fmt(f['booking_again_s'])}s after{err}"
        )
    checks = [*(row["check"] for row in r["cycles"]), r["final_check"]]
    broken = Counter[str]()
    for check in checks:
        broken.update({k: v for k, v in check["violations"].items() if v})
    lines.append(
        f"invariants: {len(checks)} checks (seats Redis == PostgreSQL, no duplicates, money, "
        f"watchers): " + ("all held" if not broken else f"BROKEN {dict(broken)}")
    )
    for check in checks:
        lines += [f"  - {reason}" for reason in check["reasons"][:5]]
        if check["transient"] and not check["reasons"]:
            lines.append(
                f"  (at {check['at_s']:.0f}s it settled after {check['settle_s']:.1f}s; at first: "
                + "; ".join(check["transient"])
                + ")"
            )
    fig = r["final_check"]["figures"]
    lines.append(
        f"final: {fig.get('bookings', 0)} bookings ({fig.get('cancelled', 0)} cancelled, "
        f"{fig.get('discounted', 0)} with a discount, "
        f"refunds pending {fig.get('refunds_pending', 0)}), {fig.get('active_tickets_pg', 0)} "
        f"active tickets, {fig.get('bookings_seen', 0)} bookings seen by buyers"
    )
    answers = r["answers"]
    lines.append("answers: " + ", ".join(f"{k} {v}" for k, v in answers.items()))
    lines.append(f"requests unanswered past {CLIENT_TIMEOUT_S:.0f}s (hangs): {r['hangs']}")
    lines.append(f"waiting room: {r['queue']}")
    lines.append(f"watchers: {r['watchers']}")
    lines.append("resources (baseline / peak / end, tolerance, verdict):")
    for v in r["verdicts"]:
        lines.append(
            f"  {v['figure']:<22} {_fmt(v['baseline']):>8} / {_fmt(v['peak']):>8} / "
            f"{_fmt(v['end']):>8}  {v['tolerance']:<12} {'ok' if v['ok'] else 'NOT BACK'}"
        )
    lines.append("verdict: " + ("PASS" if r["ok"] else "FAIL"))
    return "\n".join(lines)


def write_html(r: dict[str, Any], path: str) -> None:
    """A self-contained page: the summary, then one chart per figure over time."""
    s = r["samples"]
    x = [row["t"] for row in s]

    def series(*keys: str) -> dict[str, Sequence[float | None]]:
        return {k: [row.get(k) for row in s] for k in keys}

    charts = [
        svg_chart("Answers per second", x, series("ok_per_s", "refused_per_s", "errors_per_s"),
                  "per second"),
        svg_chart("Bookings per second", x, series("bookings_per_s"), "per second"),
        svg_chart("Latency p99", x, series("hold_p99_ms", "confirm_p99_ms", "browse_p99_ms"),
                  "ms"),
        svg_chart("Hub memory (RSS, all processes)", x, series("rss_mib"), "MiB"),
        svg_chart("Hub open file descriptors", x, series("fds"), "count"),
        svg_chart("PostgreSQL connections", x, series("pg_connections"), "count"),
        svg_chart("Redis keys (all; of an event; lasting: no event, no expiry)", x,
                  series("redis_keys", "redis_event_keys", "redis_lasting_keys"), "count"),
        svg_chart("Watchers connected", x, series("watchers_open"), "count"),
    ]  # fmt: skip
    checks = [row["check"] for row in r["cycles"]]
    if checks:
        charts.append(
            svg_chart(
                "Invariant violations at each check",
                [c["at_s"] for c in checks],
                {k: [c["violations"].get(k, 0) for c in checks] for k in checks[0]["violations"]},
                "count",
            )
        )
    faults = "".join(
        f"<tr><td>{row['cycle']}</td><td>{row['at_s']:.0f}s</td>"
        f"<td>{html.escape(row['fault']['name'])}</td>"
        f"<td>{html.escape(row['fault']['detail'] or str(row['fault']['error']))}</td>"
        f"<td>{row['fault']['outage_s']:.1f}s</td><td>{_fmt(row['fault']['recovery_s'])}</td>"
        f"<td>{_fmt(row['fault']['hold_again_s'])}</td>"
        f"<td>{_fmt(row['fault']['booking_again_s'])}</td>"
        f"<td>{'ok' if not any(row['check']['violations'].values()) else 'BROKEN'}</td></tr>"
        for row in r["cycles"]
    )
    tolerances = ", ".join(f"{k}: {t.words}" for k, t in TOLERANCES.items())
    state = "ok" if r["ok"] else "bad"
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Evently soak report</title>
<style>body{{font:14px system-ui,sans-serif;margin:1.5em;max-width:1100px}}
pre{{background:#f6f6f6;padding:1em;overflow:auto}} .ok{{color:#070}} .bad{{color:#b00}}
table{{border-collapse:collapse}} td,th{{border:1px solid #ddd;padding:.2em .5em}}
.charts{{display:grid;grid-template-columns:repeat(2,1fr);gap:.4em}}
.charts svg{{max-width:100%;height:auto}}</style>
</head><body>
<h1>Evently soak report: <span class="{state}">{"PASS" if r["ok"] else "FAIL"}</span></h1>
<p>{html.escape(r["meta"]["date"])} — <code>{html.escape(r["meta"]["command"])}</code></p>
<h2>Faults and checks</h2>
<table><tr><th>cycle</th><th>checked at</th><th>fault</th><th>what</th><th>degraded</th>
<th>ready after (s)</th><th>a hold after (s)</th><th>a booking after (s)</th>
<th>invariants</th></tr>{faults}</table>
<h2>Summary</h2><pre>{html.escape(summary(r))}</pre>
<p>Tolerances at the end, against the baseline: {html.escape(tolerances)}.</p>
<h2>Over time</h2>
<div class="charts">{"".join(f"<div>{chart}</div>" for chart in charts)}</div>
</body></html>
"""
    Path(path).write_text(body)
