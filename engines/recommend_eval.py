"""Offline evaluation of ``engines.recommend`` on users with planted tastes, with implicit's
ALS as the reference: ``python -m engines.recommend_eval``.

World: a catalogue spread over ``days`` days (categories with a skewed popularity, venues
that mostly host one category and sit at one price level, keywords drawn from each
category's vocabulary, afternoon or evening starts, a hidden per-event appeal), and users
who each like one or two categories, a few keywords, two venues, a price band, weekends or
weekdays, evenings or afternoons. A user books at random times; each booking picks among
the events on sale then (starting within ``SALE_WINDOW``) with probability proportional to
``appeal * exp(taste match)``, or, with probability ``noise``, by appeal alone. A user books
an event at most once.

Split: one cutoff time. The model (and ALS) sees only bookings made up to the cutoff; the
relevant events of a user are those they booked in the ``horizon`` after it; every method
ranks the events open at the cutoff that the user has not booked. Only users with at least
one booking on each side are scored (cold users all get the popularity ranking). Tuning of
both the hybrid and ALS uses a validation split one horizon earlier, drawn from the
training bookings alone, so the test split is never looked at until the final table.

Metrics: precision@5, recall@5, NDCG@10 (binary gains) averaged over users, and catalogue
coverage: the share of open events that appear in at least one user's top 10.

This module is pure apart from printing; ``implicit`` is imported only when ALS runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import scipy.sparse as sp

from engines.recommend import (
    Booking,
    EventInfo,
    RecommendConfig,
    build_model,
    recommend,
)

SALE_WINDOW = timedelta(days=60)
EPOCH = datetime(2025, 1, 6, tzinfo=UTC)
TOP = 10
CATEGORY_WORDS: dict[str, tuple[str, ...]] = {
    "Jazz": ("bebop", "swing", "fusion", "big band", "vocal", "latin", "trio", "blues"),
    "Rock": ("indie", "punk", "metal", "grunge", "garage", "psychedelic", "classic", "alt"),
    "Classical": ("symphony", "chamber", "baroque", "piano", "strings", "choir", "organ"),
    "Comedy": ("stand-up", "improv", "sketch", "satire", "roast", "open mic", "sitcom"),
    "Theatre": ("drama", "musical", "tragedy", "farce", "shakespeare", "monologue", "revue"),
    "Electronic": ("techno", "house", "ambient", "drum and bass", "trance", "synth", "dub"),
    "Folk": ("celtic", "bluegrass", "singer-songwriter", "americana", "shanty", "roots"),
    "Hip-hop": ("rap", "grime", "trap", "boom bap", "freestyle", "turntablism"),
    "Opera": ("verdi", "puccini", "mozart", "wagner", "operetta", "bel canto"),
    "Dance": ("ballet", "contemporary", "tango", "flamenco", "tap", "hip-hop dance"),
    "Family": ("puppets", "magic", "circus", "storytelling", "sing-along", "science"),
    "Sport": ("boxing", "basketball", "wrestling", "darts", "esports", "snooker"),
}
GENERIC_WORDS = ("outdoor", "acoustic", "late-night", "festival", "intimate", "premiere")
VENUE_ADJECTIVES = ("Old", "Grand", "Blue", "Lakeside", "Royal", "Little", "North", "Red")
VENUE_NOUNS = ("Hall", "Mill", "Lake", "Arena", "Cellar", "Theatre", "Warehouse", "Garden")
PRICE_BAND_CENTS = (1_000, 2_000, 3_500, 5_500, 9_000, 15_000)  # band b: [b, b + 1)
START_HOURS = (14, 15, 19, 20, 21)
START_HOUR_WEIGHTS = (0.15, 0.1, 0.3, 0.3, 0.15)


@dataclass(frozen=True, slots=True)
class Taste:
    """What a generated user likes (the planted truth)."""

    categories: tuple[str, ...]  # the first is the favourite
    keywords: tuple[str, ...]
    venues: tuple[str, ...]
    price_band: int
    weekends: bool
    evenings: bool


@dataclass(frozen=True, slots=True)
class World:
    events: tuple[EventInfo, ...]
    bookings: tuple[Booking, ...]
    tastes: Mapping[str, Taste]


@dataclass(frozen=True, slots=True)
class Split:
    """Training bookings up to ``cutoff`` and each scored user's relevant events after it."""

    cutoff: datetime
    train: tuple[Booking, ...]
    history: Mapping[str, tuple[str, ...]]
    relevant: Mapping[str, frozenset[str]]


@dataclass(frozen=True, slots=True)
class Scores:
    precision_at_5: float
    recall_at_5: float
    ndcg_at_10: float
    coverage: float


@dataclass(frozen=True, slots=True)
class AlsParams:
    factors: int = 64
    regularization: float = 0.05
    alpha: float = 10.0
    iterations: int = 15


def generate_world(
    rng: np.random.Generator,
    *,
    users: int,
    events: int,
    mean_bookings: float,
    days: int = 300,
    booking_days: int = 270,
    noise: float = 0.2,
) -> World:
    """Generate a world with planted tastes.

    Args:
        rng: the only source of randomness.
        users: number of users.
        events: number of events, starting over ``days`` days from ``EPOCH``.
        mean_bookings: bookings drawn per user on average (heavy-tailed; a draw that hits an
            event the user already booked, or a moment with nothing on sale, is dropped).
        days: span of the catalogue.
        booking_days: bookings are made from ``SALE_WINDOW`` before ``EPOCH`` up to this day.
        noise: the share of bookings that follow appeal alone, not taste.

    Returns:
        The catalogue (ordered by start), the bookings (by user, then time) and the tastes.
    """
    table = _catalogue(rng, events, days)
    tastes: dict[str, Taste] = {}
    bookings: list[Booking] = []
    sigma = 0.8
    draws = np.maximum(
        1, np.rint(rng.lognormal(np.log(mean_bookings) - sigma**2 / 2, sigma, users))
    ).astype(np.int64)
    first = EPOCH.timestamp() - SALE_WINDOW.total_seconds()
    last = EPOCH.timestamp() + booking_days * 86_400
    by_appeal = np.concatenate(([0.0], np.cumsum(table.appeal)))
    for number in range(users):
        user_id = f"u{number:06d}"
        taste = _taste(rng, table)
        tastes[user_id] = taste
        by_taste = np.concatenate(([0.0], np.cumsum(table.appeal * _affinity(table, taste))))
        times = np.sort(rng.uniform(first, last, draws[number]))
        # Events on sale at a moment are a contiguous run of the start-ordered catalogue.
        low = np.searchsorted(table.starts, times, side="right")
        high = np.searchsorted(table.starts, times + SALE_WINDOW.total_seconds(), side="right")
        noisy = rng.random(times.size) < noise
        share = rng.random(times.size)
        picked = np.empty(times.size, dtype=np.int64)
        for mask, cumulative in ((noisy, by_appeal), (~noisy, by_taste)):
            lower, upper = cumulative[low[mask]], cumulative[high[mask]]
            target = lower + share[mask] * (upper - lower)
            picked[mask] = np.searchsorted(cumulative, target, side="right") - 1
        picked = np.clip(picked, low, high - 1)
        seen: set[int] = set()
        for event, at, on_sale in zip(
            picked.tolist(), times.tolist(), (high > low).tolist(), strict=True
        ):
            if on_sale and event not in seen:
                seen.add(event)
                booked_at = datetime.fromtimestamp(at, UTC)
                bookings.append(Booking(user_id, table.events[event].event_id, booked_at))
    return World(events=table.events, bookings=tuple(bookings), tastes=tastes)


@dataclass(frozen=True, slots=True)
class _Catalogue:
    events: tuple[EventInfo, ...]
    starts: np.ndarray  # POSIX seconds, ascending
    category: np.ndarray  # index into CATEGORY_WORDS
    venue: np.ndarray
    band: np.ndarray
    weekend: np.ndarray  # bool: Friday to Sunday
    evening: np.ndarray  # bool
    words: np.ndarray  # bool, events x vocabulary
    appeal: np.ndarray
    vocabulary: tuple[str, ...]
    venue_ids: tuple[str, ...]
    venue_category: np.ndarray  # each venue's main category
    category_weights: np.ndarray


def _catalogue(rng: np.random.Generator, n: int, days: int) -> _Catalogue:
    names = tuple(CATEGORY_WORDS)
    vocabulary = tuple(sorted({w for ws in CATEGORY_WORDS.values() for w in ws} | {*GENERIC_WORDS}))
    word_index = {word: i for i, word in enumerate(vocabulary)}
    popularity = 1.0 / np.arange(1, len(names) + 1) ** 0.7
    popularity /= popularity.sum()
    n_venues = max(8, n // 40)
    venue_category = rng.choice(len(names), n_venues, p=popularity)
    venue_level = rng.integers(0, len(PRICE_BAND_CENTS) - 1, n_venues)
    venue_names = [f"the {a} {b}" for a in VENUE_ADJECTIVES for b in VENUE_NOUNS]
    venue_ids = tuple(f"v{v:04d}" for v in range(n_venues))

    starts = np.sort(EPOCH.timestamp() + rng.uniform(0, days, n).astype(np.int64) * 86_400.0)
    hours = rng.choice(START_HOURS, n, p=START_HOUR_WEIGHTS)
    starts += hours * 3600.0
    category = rng.choice(len(names), n, p=popularity)
    venue = np.empty(n, dtype=np.int64)
    band = np.empty(n, dtype=np.int64)
    words = np.zeros((n, len(vocabulary)), dtype=np.bool_)
    events: list[EventInfo] = []
    for i in range(n):
        home = np.flatnonzero(venue_category == category[i])
        venue[i] = rng.choice(home) if home.size and rng.random() < 0.8 else rng.integers(n_venues)
        band[i] = np.clip(venue_level[venue[i]] + rng.integers(-1, 2), 0, len(PRICE_BAND_CENTS) - 2)
        own = CATEGORY_WORDS[names[category[i]]]
        chosen = list(rng.choice(own, int(rng.integers(2, 4)), replace=False))
        if rng.random() < 0.3:
            chosen.append(str(rng.choice(GENERIC_WORDS)))
        words[i, [word_index[w] for w in chosen]] = True
        starts_at = datetime.fromtimestamp(float(starts[i]), UTC)
        low, high = PRICE_BAND_CENTS[band[i]], PRICE_BAND_CENTS[band[i] + 1]
        venue_name = venue_names[int(venue[i]) % len(venue_names)]
        events.append(
            EventInfo(
                event_id=f"e{i:05d}",
                name=f"{str(chosen[0]).title()} {names[category[i]]} at {venue_name}",
                category=names[category[i]],
                keywords=tuple(str(w) for w in chosen),
                venue_id=venue_ids[venue[i]],
                venue_name=venue_name,
                price_cents=int(rng.integers(low, high)),
                starts_at=starts_at,
            )
        )
    weekday = np.array([event.starts_at.weekday() for event in events])
    return _Catalogue(
        events=tuple(events),
        starts=starts,
        category=category,
        venue=venue,
        band=band,
        weekend=weekday >= 4,
        evening=hours >= 17,
        words=words,
        appeal=rng.lognormal(0.0, 0.7, n),
        vocabulary=vocabulary,
        venue_ids=venue_ids,
        venue_category=venue_category,
        category_weights=popularity,
    )


def _taste(rng: np.random.Generator, table: _Catalogue) -> Taste:
    names = tuple(CATEGORY_WORDS)
    count = 2 if rng.random() < 0.5 else 1
    categories = rng.choice(len(names), count, replace=False, p=table.category_weights)
    keywords = [str(w) for w in rng.choice(CATEGORY_WORDS[names[categories[0]]], 2, replace=False)]
    if rng.random() < 0.3:
        keywords.append(str(rng.choice(GENERIC_WORDS)))
    home = np.flatnonzero(np.isin(table.venue_category, categories))
    pool = home if home.size >= 2 else np.arange(table.venue_category.size)
    venues = rng.choice(pool, 2, replace=False)
    return Taste(
        categories=tuple(names[c] for c in categories),
        keywords=tuple(keywords),
        venues=tuple(table.venue_ids[v] for v in venues),
        price_band=int(rng.integers(0, len(PRICE_BAND_CENTS) - 1)),
        weekends=bool(rng.random() < 0.5),
        evenings=bool(rng.random() < 0.7),
    )


def _affinity(table: _Catalogue, taste: Taste) -> np.ndarray:
    """exp(how well each event matches the taste)."""
    names = tuple(CATEGORY_WORDS)
    favourite = names.index(taste.categories[0])
    others = [names.index(c) for c in taste.categories[1:]]
    words = [table.vocabulary.index(w) for w in taste.keywords]
    venues = [table.venue_ids.index(v) for v in taste.venues]
    score = 1.6 * (table.category == favourite) + 1.0 * np.isin(table.category, others)
    score = score + 0.8 * table.words[:, words].sum(axis=1)
    score = score + 1.2 * np.isin(table.venue, venues)
    distance = np.abs(table.band - taste.price_band)
    score = score + 0.8 * (distance == 0) + 0.3 * (distance == 1)
    score = (
        score + 0.6 * (table.weekend == taste.weekends) + 0.6 * (table.evening == taste.evenings)
    )
    return np.asarray(np.exp(score))


def split_at(bookings: Iterable[Booking], cutoff: datetime, horizon: timedelta) -> Split:
    """Train on bookings up to ``cutoff``; a user's relevant events are those they booked in
    the ``horizon`` after it. Users without history before the cutoff are not scored."""
    train: list[Booking] = []
    history: dict[str, list[str]] = {}
    later: dict[str, set[str]] = {}
    for booking in bookings:
        if booking.booked_at <= cutoff:
            train.append(booking)
            history.setdefault(booking.user_id, []).append(booking.event_id)
        elif booking.booked_at <= cutoff + horizon:
            later.setdefault(booking.user_id, set()).add(booking.event_id)
    return Split(
        cutoff=cutoff,
        train=tuple(train),
        history={user: tuple(events) for user, events in history.items()},
        relevant={user: frozenset(later[user]) for user in sorted(later) if user in history},
    )


def score_rankings(
    rankings: Mapping[str, Sequence[str]], relevant: Mapping[str, frozenset[str]], n_open: int
) -> Scores:
    """Average precision@5, recall@5, NDCG@10 over the users of ``relevant``; coverage of
    the ``n_open`` open events by everyone's top ``TOP``."""
    discounts = 1.0 / np.log2(np.arange(2, TOP + 2))
    precision, recall, ndcg = [], [], []
    shown: set[str] = set()
    for user, wanted in relevant.items():
        ranked = list(rankings[user][:TOP])
        shown.update(ranked)
        hits = np.array([event in wanted for event in ranked], dtype=np.float64)
        precision.append(hits[:5].sum() / 5)
        recall.append(hits[:5].sum() / len(wanted))
        ideal = discounts[: min(len(wanted), TOP)].sum()
        ndcg.append(float(hits @ discounts[: hits.size]) / ideal)
    return Scores(
        precision_at_5=float(np.mean(precision)),
        recall_at_5=float(np.mean(recall)),
        ndcg_at_10=float(np.mean(ndcg)),
        coverage=len(shown) / n_open if n_open else 0.0,
    )


def engine_rankings(
    split: Split, events: Sequence[EventInfo], config: RecommendConfig, *, cold: bool = False
) -> tuple[dict[str, list[str]], int]:
    """Top ``TOP`` per scored user from ``engines.recommend`` (``cold``: as if the user had
    no history, i.e. popularity), and the number of open events."""
    model = build_model(split.train, events, split.cutoff, config)
    rankings = {
        user: [
            found.event_id
            for found in recommend(
                model,
                () if cold else split.history[user],
                now=split.cutoff,
                limit=TOP,
                exclude=split.history[user],
            )
        ]
        for user in split.relevant
    }
    return rankings, int(model.open_events.size)


def als_rankings(
    split: Split, events: Sequence[EventInfo], params: AlsParams, seed: int
) -> dict[str, list[str]]:
    """Top ``TOP`` per scored user from implicit's ALS over the same training bookings and
    the same candidates (events open at the cutoff, not booked by the user)."""
    from implicit.cpu.als import AlternatingLeastSquares  # optional bench dependency
    from threadpoolctl import threadpool_limits  # implicit's own dependency

    event_ids = sorted(event.event_id for event in events)
    column = {event_id: i for i, event_id in enumerate(event_ids)}
    users = sorted(split.history)
    row = {user: i for i, user in enumerate(users)}
    rows = [row[booking.user_id] for booking in split.train]
    cols = [column[booking.event_id] for booking in split.train]
    matrix = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(users), len(event_ids))
    )
    # implicit's advice: BLAS's own thread pool fights ALS's threads (up to 10x slower).
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=params.factors,
            regularization=params.regularization,
            alpha=params.alpha,
            iterations=params.iterations,
            random_state=seed,
        )
        model.fit(matrix, show_progress=False)
    open_at = np.array(
        [
            column[event.event_id]
            for event in events
            if event.starts_at > split.cutoff and not (event.cancelled or event.sold_out)
        ],
        dtype=np.int64,
    )
    open_at.sort()
    scored = list(split.relevant)
    user_rows = np.array([row[user] for user in scored], dtype=np.int64)
    scores = np.asarray(model.user_factors)[user_rows] @ np.asarray(model.item_factors)[open_at].T
    booked = matrix[user_rows][:, open_at].toarray() > 0
    scores[booked] = -np.inf
    top = np.argsort(-scores, axis=1, kind="stable")[:, :TOP]
    return {user: [event_ids[open_at[j]] for j in top[i]] for i, user in enumerate(scored)}


def tune_engine(
    split: Split, events: Sequence[EventInfo], base: RecommendConfig
) -> RecommendConfig:
    """Coordinate search on ``split`` (a validation split) for precision@5."""
    grid: dict[str, tuple[float, ...]] = {
        "history_half": (4.0, 16.0, 64.0, 256.0),
        "popularity_weight": (0.1, 0.2, 0.3, 0.45),
        "profile_centring": (0.0, 0.5, 1.0),
        "shrink": (0.0, 5.0, 20.0),
        "neighbours": (20, 100),
        "venue_weight": (0.4, 0.7, 1.0),
        "price_weight": (0.25, 0.5, 0.8),
    }
    best, best_score = base, _engine_precision(split, events, base)
    for name, values in grid.items():
        for value in values:
            changes: dict[str, Any] = {name: value}
            candidate = replace(best, **changes)
            if candidate == best:
                continue
            score = _engine_precision(split, events, candidate)
            if score > best_score:
                best, best_score = candidate, score
    return best


def _engine_precision(split: Split, events: Sequence[EventInfo], config: RecommendConfig) -> float:
    rankings, n_open = engine_rankings(split, events, config)
    return score_rankings(rankings, split.relevant, n_open).precision_at_5


def tune_als(split: Split, events: Sequence[EventInfo], seed: int) -> AlsParams:
    """Grid search on ``split`` (a validation split) for precision@5."""
    best, best_score = AlsParams(), -1.0
    for factors in (16, 32, 64, 128):
        for regularization in (0.001, 0.01, 0.1, 1.0):
            for alpha in (0.25, 1.0, 10.0, 40.0):
                params = AlsParams(factors, regularization, alpha)
                rankings = als_rankings(split, events, params, seed)
                score = score_rankings(rankings, split.relevant, 1).precision_at_5
                if score > best_score:
                    best, best_score = params, score
    return best


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engines.recommend_eval", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--users", type=int, default=6_000)
    parser.add_argument("--events", type=int, default=1_500)
    parser.add_argument("--mean-bookings", type=float, default=12.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-tune", action="store_true", help="use the default parameters")
    args = parser.parse_args(argv)

    horizon = timedelta(days=28)
    cutoff = EPOCH + timedelta(days=240)
    world = generate_world(
        np.random.default_rng(args.seed),
        users=args.users,
        events=args.events,
        mean_bookings=args.mean_bookings,
        booking_days=240 + horizon.days,
    )
    final = split_at(world.bookings, cutoff, horizon)
    validation = split_at(final.train, cutoff - horizon, horizon)
    print(
        f"{len(world.events)} events, {len(world.tastes)} users, {len(world.bookings)} bookings;"
        f" {len(final.train)} before the cutoff, {len(final.relevant)} users scored"
        f" ({len(validation.relevant)} on the validation split)"
    )
    config, als = RecommendConfig(), AlsParams()
    if not args.no_tune:
        config = tune_engine(validation, world.events, config)
        als = tune_als(validation, world.events, args.seed)
    print(f"hybrid: {config}\nALS: {als}\n")

    table: dict[str, Scores] = {}
    popular, n_open = engine_rankings(final, world.events, config, cold=True)
    table["popularity"] = score_rankings(popular, final.relevant, n_open)
    variants = {
        "content": replace(config, history_half=float("inf"), popularity_weight=0.0),
        "collaborative": replace(config, history_half=0.0, popularity_weight=0.0),
        "hybrid": config,
    }
    for name, variant in variants.items():
        rankings, _ = engine_rankings(final, world.events, variant)
        table[name] = score_rankings(rankings, final.relevant, n_open)
    table["implicit ALS"] = score_rankings(
        als_rankings(final, world.events, als, args.seed), final.relevant, n_open
    )
    print(format_table(table))
    hybrid, baseline, reference = table["hybrid"], table["popularity"], table["implicit ALS"]
    ratio = hybrid.precision_at_5 / baseline.precision_at_5 if baseline.precision_at_5 else 0
    print(
        f"\nhybrid / popularity precision@5: {ratio:.2f}x (target >= 2x); "
        f"hybrid - ALS precision@5: {hybrid.precision_at_5 - reference.precision_at_5:+.4f}"
    )
    return 0


def format_table(table: Mapping[str, Scores]) -> str:
    lines = [
        "| method | precision@5 | recall@5 | NDCG@10 | coverage |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, scores in table.items():
        lines.append(
            f"| {name} | {scores.precision_at_5:.4f} | {scores.recall_at_5:.4f} "
            f"| {scores.ndcg_at_10:.4f} | {scores.coverage:.1%} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
