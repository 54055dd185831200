"""``python -m loadtest.bench_engines <engine>``: time the pure engines on synthetic data.

Each engine is a subcommand with its own data builder and target; they share the timing
loop: ``--warmup`` untimed calls, then ``--runs`` timed ones (``time.perf_counter``), and
the median and p99 in milliseconds. The data is built once, before timing, from a seeded
generator, so two runs time the same work. Add an engine with an ``add_<engine>`` function
that makes its subparser and sets ``run``, and one line in `main`.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np

from engines.analytics import (
    DAY,
    HOUR,
    HourlyRollup,
    Period,
    trending_events,
    trends,
    user_behaviour,
)
from engines.forecast import DailySeries, backtest, predict_next_month
from engines.pricing import (
    PricingInputs,
    quote_prices,
    start_velocity,
    update_velocity,
    velocity_prior,
)
from engines.recommend import build_model, recommend
from engines.recommend_eval import EPOCH, generate_world
from engines.seating import SeatPreferences, SeatTable, Taste, rank_candidates, seat_candidates
from engines.venue_layout import SectionSpec, layout_sections, row_label
from loadtest.report import percentiles
from loadtest.surge import venue_sections

PRICING_TARGET_MS = 20.0
RECOMMEND_BUILD_TARGET_S = 60.0
RECOMMEND_TARGET_MS = 20.0
_DAY = 86_400.0


def time_calls(call: Callable[[], Any], *, runs: int, warmup: int) -> np.ndarray:
    """Seconds taken by each of ``runs`` calls of ``call``, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        call()
    durations = np.empty(runs, dtype=np.float64)
    for i in range(runs):
        start = time.perf_counter()
        call()
        durations[i] = time.perf_counter() - start
    return durations


def print_figures(name: str, durations: np.ndarray, target_ms: float | None = None) -> bool:
    """Print median, p99 and max in ms; return whether the p99 meets ``target_ms``."""
    figures = percentiles(durations)
    met = target_ms is None or figures["p99"] <= target_ms
    verdict = "" if target_ms is None else f"  target p99 <= {target_ms:g} ms: "
    verdict += "" if target_ms is None else ("met" if met else "MISSED")
    print(
        f"{name}: median {figures['p50']:.2f} ms, p99 {figures['p99']:.2f} ms, "
        f"max {figures['max']:.2f} ms over {figures['n']} runs{verdict}"
    )
    return met


def _common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, default=50, help="timed runs (default 50)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed runs first (default 5)")
    parser.add_argument("--seed", type=int, default=1, help="data generator seed")


# --- pricing ---------------------------------------------------------------------------------


def pricing_inputs(rng: np.random.Generator, n_events: int, sections: int) -> PricingInputs:
    """A plausible tick: every section of every event, all factors in play."""
    n = n_events * sections
    capacity = rng.integers(50, 2_000, n)
    sold = (capacity * rng.beta(2, 2, n)).astype(np.int64)
    held = (np.maximum(capacity - sold, 0) * rng.uniform(0, 0.1, n)).astype(np.int64)
    base = rng.integers(1_000, 30_000, n)
    normal = rng.gamma(2.0, 10.0, n_events)
    return PricingInputs(
        event=np.repeat(np.arange(n_events), sections),
        base_cents=base,
        current_cents=(base * rng.uniform(0.8, 1.5, n)).astype(np.int64),
        capacity=capacity,
        sold=sold,
        held=held,
        seconds_to_start=rng.uniform(0, 60 * _DAY, n_events),
        recent_bookings=rng.poisson(normal * rng.lognormal(0, 0.7, n_events)).astype(np.float64),
        normal_bookings=normal,
        waitlisted=rng.integers(0, 400, n_events) * (rng.random(n_events) < 0.2),
    )


def add_pricing(commands: Any) -> None:
    parser = commands.add_parser("pricing", help="engines.pricing: quote_prices, update_velocity")
    parser.add_argument("--events", type=int, default=10_000, help="events (default 10 000)")
    parser.add_argument("--sections", type=int, default=6, help="sections per event (default 6)")
    parser.add_argument(
        "--interval", type=float, default=10.0, help="velocity interval, s (default 10)"
    )
    _common_arguments(parser)
    parser.set_defaults(run=run_pricing)


def run_pricing(args: argparse.Namespace) -> int:
    rng = np.random.default_rng(args.seed)
    inputs = pricing_inputs(rng, args.events, args.sections)
    result = quote_prices(inputs)
    print(
        f"pricing: {args.events} events x {args.sections} sections = {inputs.n_rows} rows; "
        f"{int(result.applied.sum())} changes applied in the sample tick"
    )
    quote = time_calls(lambda: quote_prices(inputs), runs=args.runs, warmup=args.warmup)
    met = print_figures("quote_prices", quote, PRICING_TARGET_MS)

    capacity = np.bincount(inputs.event, weights=inputs.capacity, minlength=args.events)
    state = start_velocity(
        velocity_prior(capacity, interval_seconds=args.interval), interval_seconds=args.interval
    )
    counts = rng.poisson(3.0, args.events)
    for _ in range(state.window.shape[1]):  # a full window, so the EWMA step runs too
        state = update_velocity(state, counts)

    def velocity_step() -> None:
        stepped = update_velocity(state, counts)
        stepped.recent_bookings()
        stepped.normal_bookings()

    velocity = time_calls(velocity_step, runs=args.runs, warmup=args.warmup)
    print_figures(f"update_velocity ({args.events} events, reading both columns)", velocity)
    return 0 if met else 1


# --- recommend -------------------------------------------------------------------------------


def add_recommend(commands: Any) -> None:
    parser = commands.add_parser(
        "recommend", help="engines.recommend: build_model, then recommend per request"
    )
    parser.add_argument("--users", type=int, default=50_000, help="users (default 50 000)")
    parser.add_argument("--events", type=int, default=5_000, help="events (default 5 000)")
    parser.add_argument(
        "--mean-bookings",
        type=float,
        default=21.0,
        help="bookings drawn per user (default 21: about 1 000 000 bookings in all)",
    )
    _common_arguments(parser)
    parser.set_defaults(run=run_recommend, runs=2_000, warmup=50)


def run_recommend(args: argparse.Namespace) -> int:
    world = generate_world(
        np.random.default_rng(args.seed),
        users=args.users,
        events=args.events,
        mean_bookings=args.mean_bookings,
        booking_days=240,
    )
    now = EPOCH + timedelta(days=240)
    history: dict[str, list[str]] = {}
    for booking in world.bookings:
        if booking.booked_at <= now:
            history.setdefault(booking.user_id, []).append(booking.event_id)
    start = time.perf_counter()
    model = build_model(world.bookings, world.events, now)
    build_seconds = time.perf_counter() - start
    build_met = build_seconds <= RECOMMEND_BUILD_TARGET_S
    print(
        f"recommend: {args.users} users x {args.events} events, {len(world.bookings)} bookings;"
        f" {model.open_events.size} events open at the build"
    )
    print(
        f"build_model: {build_seconds:.1f} s  target <= {RECOMMEND_BUILD_TARGET_S:g} s: "
        + ("met" if build_met else "MISSED")
    )
    # Requests cycle through users in a seeded order, a tenth of them with no history.
    users = sorted(world.tastes)
    order = np.random.default_rng(args.seed + 1).permutation(len(users))
    requests = [tuple(history.get(users[i], ())) if n % 10 else () for n, i in enumerate(order)]
    del world, history
    # The generator's million objects are not the hub's: keep the collector off them.
    gc.collect()
    gc.freeze()
    turn = iter(range(10**12))

    def one_request() -> None:
        recommend(model, requests[next(turn) % len(requests)], now=now, limit=10)

    durations = time_calls(one_request, runs=args.runs, warmup=args.warmup)
    request_met = print_figures("recommend (limit 10)", durations, RECOMMEND_TARGET_MS)
    return 0 if build_met and request_met else 1


# --- analytics -------------------------------------------------------------------------------

# The endpoint budget is 300 ms end to end; the engine's share should be a small part of it
# (a third at most for the million raw rows of user behaviour, a tenth or a fifth elsewhere).
ANALYTICS_TARGET_MS = {
    "trends": 30.0,
    "predictions": 60.0,
    "trending": 30.0,
    "user_behaviour": 100.0,
}
_CATEGORIES = 8


def analytics_rollups(
    rng: np.random.Generator, days: int, bookings: int
) -> tuple[HourlyRollup, list[HourlyRollup]]:
    """Hourly rollups overall and per category, as the hub's SQL would sum them: daily,
    weekly and yearly rhythm, ``bookings`` in all over ``days`` days ending 2026-01-01."""
    hours = days * 24
    start = int(np.datetime64("2026-01-01T00:00:00", "s").astype(np.int64)) - hours * HOUR
    hour = start + np.arange(hours, dtype=np.int64) * HOUR
    day = hour // DAY
    of_day = (hour % DAY) // HOUR
    rate = (
        (0.3 + np.exp(-(((of_day - 13) / 4.0) ** 2)))
        * (1.0 + 0.3 * ((day + 3) % 7 >= 4))
        * (1.0 + 0.3 * np.sin(2 * np.pi * day / 365.25))
        * (1.0 + 0.5 * np.arange(hours) / hours)
    )
    rate *= bookings / rate.sum()
    shares = rng.dirichlet(np.full(_CATEGORIES, 2.0))
    parts = []
    for share in shares:
        made = rng.poisson(rate * share)
        tickets = made + rng.poisson(made * 1.5)
        parts.append(
            HourlyRollup(
                hour=hour,
                bookings=made,
                tickets=tickets,
                revenue_cents=tickets * rng.integers(2_000, 9_000),
                cancellations=rng.binomial(made, 0.05),
                holds=made + rng.poisson(made * 0.4),
            )
        )
    names = ("bookings", "tickets", "revenue_cents", "cancellations", "holds")
    overall = HourlyRollup(hour, *(np.sum([getattr(p, n) for p in parts], axis=0) for n in names))
    return overall, parts


def add_analytics(commands: Any) -> None:
    parser = commands.add_parser(
        "analytics", help="engines.analytics and engines.forecast on two years of history"
    )
    parser.add_argument("--days", type=int, default=730, help="history, days (default 730)")
    parser.add_argument(
        "--bookings", type=int, default=1_000_000, help="bookings (default 1 000 000)"
    )
    parser.add_argument("--users", type=int, default=200_000, help="users (default 200 000)")
    parser.add_argument("--events", type=int, default=1_000, help="events (default 1 000)")
    _common_arguments(parser)
    parser.set_defaults(run=run_analytics)


def run_analytics(args: argparse.Namespace) -> int:
    rng = np.random.default_rng(args.seed)
    overall, parts = analytics_rollups(rng, args.days, args.bookings)
    date_from, date_to = overall.hour[0], overall.hour[-1] + HOUR
    n, now = args.bookings, int(date_to)
    booked_at = now - rng.integers(1, args.days * DAY, n)
    starts = booked_at + (rng.exponential(20.0, n) * DAY).astype(np.int64)
    user = rng.integers(0, args.users, n)
    cancelled = rng.random(n) < 0.05
    recent = 15 * 24  # hourly per-event rollup rows covering both trending windows
    event = np.repeat(np.arange(args.events), recent)
    hour = np.tile(now - (np.arange(recent, dtype=np.int64) + 1) * HOUR, args.events)
    count = rng.poisson(rng.gamma(1.0, 0.5, args.events).repeat(recent))
    # As the hub does after start-up: the rows of an hourly range (17,520 tuples) then
    # cost young-generation collections only, not scans of everything alive.
    gc.collect()
    gc.freeze()
    print(
        f"analytics: {len(overall)} hourly points overall and per category x {_CATEGORIES}, "
        f"{int(overall.bookings.sum())} bookings over {args.days} days"
    )
    met = True
    timed = {"runs": args.runs, "warmup": args.warmup}
    target = ANALYTICS_TARGET_MS["trends"]
    for period in Period:

        def bucket(period: Period = period) -> None:
            trends(overall, period, date_from, date_to).buckets()

        durations = time_calls(bucket, **timed)
        met &= print_figures(f"trends {period} with rows and seasonality", durations, target)

    def series(rollup: HourlyRollup) -> DailySeries:
        return DailySeries.from_trends(trends(rollup, Period.DAILY, date_from, date_to))

    def predict() -> None:
        by_category = {f"category-{i}": series(part) for i, part in enumerate(parts)}
        predict_next_month(series(overall), by_category)

    durations = time_calls(predict, **timed)
    label = f"predictions: daily series, forecasts and back-test, overall + {_CATEGORIES}"
    met &= print_figures(label, durations, ANALYTICS_TARGET_MS["predictions"])
    daily = series(overall)
    found = backtest(daily.bookings, daily.first_day)
    print(
        f"  back-test over {found.folds} folds: model MAPE {found.model_mape:.3f}, "
        f"{found.baseline} MAPE {found.baseline_mape:.3f}"
    )

    durations = time_calls(lambda: user_behaviour(user, booked_at, starts, cancelled, now), **timed)
    label = f"user_behaviour on {n} bookings / {args.users} users"
    met &= print_figures(label, durations, ANALYTICS_TARGET_MS["user_behaviour"])

    durations = time_calls(lambda: trending_events(event, hour, count, now), **timed)
    label = f"trending_events on {event.size} per-event hourly rows"
    met &= print_figures(label, durations, ANALYTICS_TARGET_MS["trending"])
    return 0 if met else 1


# --- seats -----------------------------------------------------------------------------------

SEATS_TARGET_MS = 5.0
# What buyers ask for: mostly pairs and small groups ...
SEAT_QUANTITIES = (1, 2, 2, 2, 2, 3, 4, 4, 5, 6)
# ... and, timed apart, groups no run of a half-sold venue holds (bands, then split).
LARGE_QUANTITIES = (12, 20, 40)
ACCESSIBLE_EVERY_ROWS = 5


def seat_venue(seats: int) -> tuple[SeatTable, np.ndarray]:
    """The seating table of the load tests' venue (``loadtest.surge.venue_sections``, laid out
    as the hub lays out a venue), seats 1 and last of every fifth row accessible, and each
    seat's price in cents (its section's base price)."""
    specs, prices = [], []
    for section in venue_sections(seats):
        rows, width = section["rows"], section["seats_per_row"]
        accessible = {
            (row_label(r), n) for r in range(0, rows, ACCESSIBLE_EVERY_ROWS) for n in (1, width)
        }
        specs.append(SectionSpec(section["name"], rows, width, frozenset(accessible)))
        prices.append(round(float(section["base_price"]) * 100))
    table = SeatTable.from_seats(layout_sections(specs))
    return table, np.array(prices, dtype=np.int64)[table.section]


def seat_requests(
    rng: np.random.Generator, table: SeatTable, prices: np.ndarray, count: int, quantities: Any
) -> list[tuple[SeatPreferences, Taste | None]]:
    """A seeded mix: a quarter with a budget, a quarter with a preferred section, a tenth
    needing accessible seats; half from users with a taste (1 to 6 past tickets)."""
    names = table.section_names
    section_price = {names[int(c)]: int(prices[np.argmax(table.section == c)]) for c in
                     np.unique(table.section)}  # fmt: skip
    budgets = sorted(set(section_price.values()))
    requests = []
    for _ in range(count):
        budget = int(rng.choice(budgets)) if rng.random() < 0.25 else None
        preferred = frozenset({str(rng.choice(names))}) if rng.random() < 0.25 else frozenset()
        prefs = SeatPreferences(int(rng.choice(quantities)), budget, preferred, rng.random() < 0.1)
        taste = None
        if rng.random() < 0.5:
            past = [str(rng.choice(names)) for _ in range(int(rng.integers(1, 7)))]
            taste = Taste.from_history((name, rng.random(), section_price[name]) for name in past)
        requests.append((prefs, taste))
    return requests


def add_seats(commands: Any) -> None:
    parser = commands.add_parser(
        "seats", help="engines.seating: seat_candidates + rank_candidates per request"
    )
    parser.add_argument("--seats", type=int, default=20_000, help="venue seats (default 20 000)")
    parser.add_argument(
        "--sold", type=float, default=0.5, help="share of seats sold at random (default 0.5)"
    )
    _common_arguments(parser)
    parser.set_defaults(run=run_seats, runs=2_000, warmup=50)


def run_seats(args: argparse.Namespace) -> int:
    rng = np.random.default_rng(args.seed)
    table, prices = seat_venue(args.seats)
    free = rng.random(len(table)) >= args.sold
    names = table.section_names
    print(
        f"seats: {len(table)} seats in {len(names)} sections, {int((~free).sum())} sold at "
        f"random; {int(table.accessible.sum())} accessible"
    )

    def timed(label: str, quantities: Any, target: float | None) -> bool:
        requests = seat_requests(rng, table, prices, 500, quantities)
        turn = iter(range(10**12))
        found: list[int] = []

        def one_request() -> None:
            prefs, taste = requests[next(turn) % len(requests)]
            candidates = seat_candidates(table, free, prices, names, prefs)
            found.append(len(rank_candidates(table, candidates, names, prices, taste)))

        durations = time_calls(one_request, runs=args.runs, warmup=args.warmup)
        met = print_figures(label, durations, target)
        print(f"  {np.mean(found):.1f} recommendations per answer; {found.count(0)} empty")
        return met

    met = timed(f"seat_candidates + rank_candidates (quantity {SEAT_QUANTITIES})",
                SEAT_QUANTITIES, SEATS_TARGET_MS)  # fmt: skip
    timed(f"  larger than any run (quantity {LARGE_QUANTITIES})", LARGE_QUANTITIES, None)
    # the per-watcher part alone: one shared pool re-ranked for a user with a taste
    prefs = SeatPreferences(2)
    pool = seat_candidates(table, free, prices, names, prefs)
    taste = Taste.from_history([("Upper", 0.7, int(prices[-1])), ("Balcony", 0.2, 4_500)])
    durations = time_calls(
        lambda: rank_candidates(table, pool, names, prices, taste),
        runs=args.runs,
        warmup=args.warmup,
    )
    print_figures(f"rank_candidates alone ({len(pool)} shared candidates)", durations)
    return 0 if met else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.bench_engines")
    commands = parser.add_subparsers(dest="engine", required=True)
    add_pricing(commands)
    add_analytics(commands)
    add_recommend(commands)
    add_seats(commands)
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
