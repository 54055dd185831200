"""Event recommendations: item-item collaborative filtering, content similarity and
popularity, blended by how much history a user has.

The model (``build_model``) is a pure function of the confirmed bookings, the catalogue and
``now``; ``recommend`` reads a user's own history at query time, so a booking made after the
last build shapes that user's very next answer.

* Collaborative: cosine similarity between events over the user x event matrix (cells
  ``1 + log(bookings)``), shrunk towards 0 for events that share few users
  (``co / (|a| |b| + shrink)``). Only events that are open at build time (future, not
  cancelled, not sold out) can be recommended, so each event keeps just its ``neighbours``
  most similar *open* events: a sparse events x open-events matrix, built in row chunks.
  A user's vote for an open event is the sum of its similarities to the events they
  booked (each weighted ``1 + log(bookings)``).
* Content: each event is a vector of blocks (TF-IDF over keywords; one-hot category,
  venue, price band, start weekday, start hour band), each block of unit length times its
  weight, the whole row of unit length. A user's profile is the weighted mean of the rows
  of the events they booked, less ``profile_centring`` times the catalogue's mean row (what
  nearly every event has, such as an evening start, says little about a taste), clipped
  at 0; the content score is the cosine of profile and event.
* Popularity: ``log1p(recent + total_weight * total)`` bookings, over its maximum; *recent*
  means the ``POPULAR_WINDOW`` before the build.
* Blend: each component is stretched linearly onto [0, 1] over the events eligible for
  this request, so the weights compare like with like. With ``n`` distinct booked events
  known to the model, ``r = n / (n + history_half)``; collaborative weighs ``(1 - p) r``,
  content ``(1 - p)(1 - r)``, popularity ``p``. A user with no history gets popularity
  alone (method ``popular``). The method of a result is the component holding at least
  ``DOMINANT_SHARE`` of its score, else ``hybrid``; its reasons come from every component
  holding at least ``REASON_SHARE``.

Invariants: every score is in [0, 1] (a convex blend of components in [0, 1]), rounded to
``SCORE_DIGITS`` places; results are sorted by score, ties by popularity and then event id,
so an answer is reproducible whatever order the inputs came in. Never recommended: an event
that starts at or before ``now``, is cancelled or sold out (at build, or named in
``exclude``), is in the user's history, or is unknown to the model.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import numpy as np
import scipy.sparse as sp

POPULAR_WINDOW = timedelta(days=7)
SCORE_DIGITS = 6
# The component with at least this share of a score names the method; below it, "hybrid".
DOMINANT_SHARE = 0.6
# A component with at least this share of a score adds its reason.
REASON_SHARE = 0.2
CONTENT_REASON_FEATURES = 3
PRICE_BAND_LABELS = (
    "budget prices",
    "low prices",
    "mid-range prices",
    "higher prices",
    "premium prices",
)
WEEKDAY_LABELS = (
    "Mondays",
    "Tuesdays",
    "Wednesdays",
    "Thursdays",
    "Fridays",
    "Saturdays",
    "Sundays",
)
HOUR_BAND_STARTS = (12, 17, 21)  # before noon, afternoon, evening, late
HOUR_BAND_LABELS = ("mornings", "afternoons", "evenings", "late nights")
# Bound on the dense similarity block built at once (cells), about 32 MB of float64.
_CHUNK_CELLS = 4_000_000


class Method(StrEnum):
    COLLABORATIVE = "collaborative"
    CONTENT = "content"
    HYBRID = "hybrid"
    POPULAR = "popular"


@dataclass(frozen=True, slots=True)
class EventInfo:
    """What the engine knows of an event.

    ``starts_at`` must be timezone-aware; its weekday and hour are read in its own zone, so
    pass the venue's local time for "Friday evening" to mean what a visitor means.
    ``price_cents`` is one representative price (e.g. the cheapest section's base price).
    """

    event_id: str
    name: str
    category: str
    keywords: tuple[str, ...]
    venue_id: str
    venue_name: str
    price_cents: int
    starts_at: datetime
    cancelled: bool = False
    sold_out: bool = False


@dataclass(frozen=True, slots=True)
class Booking:
    """One confirmed booking (cancelled bookings are not passed)."""

    user_id: str
    event_id: str
    booked_at: datetime


@dataclass(frozen=True, slots=True)
class Recommendation:
    event_id: str
    score: float
    method: Method
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RecommendConfig:
    """Tuning of the model; the defaults were chosen on a validation split of the planted
    data in ``engines.recommend_eval`` (never on its test split)."""

    neighbours: int = 100
    shrink: float = 5.0
    history_half: float = 256.0
    popularity_weight: float = 0.2
    popularity_total_weight: float = 0.25
    keyword_weight: float = 1.0
    category_weight: float = 1.0
    venue_weight: float = 0.7
    price_weight: float = 0.5
    weekday_weight: float = 0.4
    hour_weight: float = 0.4
    profile_centring: float = 1.0

    def __post_init__(self) -> None:
        if self.neighbours < 1:
            raise ValueError("neighbours must be at least 1")
        if self.shrink < 0 or self.history_half < 0 or self.popularity_total_weight < 0:
            raise ValueError("shrink, history_half and popularity_total_weight must be >= 0")
        if not 0 <= self.popularity_weight <= 1:
            raise ValueError("popularity_weight must be within [0, 1]")


@dataclass(frozen=True, eq=False)
class Model:
    """A built model. Events are indexed in event-id order; *open* events (the only ones
    that can be recommended) are the columns of ``neighbours`` and rows of ``open_features``.
    """

    config: RecommendConfig
    built_at: datetime
    event_ids: tuple[str, ...]
    index: dict[str, int]
    names: tuple[str, ...]
    category_labels: tuple[str, ...]  # per event, as first written in the catalogue
    starts_at: np.ndarray  # float64 POSIX seconds per event
    open_events: np.ndarray  # int64 event indices, ascending
    open_position: np.ndarray  # int64 per event: its position among open events, or -1
    neighbours: sp.csr_array  # events x open events, top-k similarities per row
    features: sp.csr_array  # events x features, unit rows
    open_features: sp.csr_array  # the rows of open events
    feature_labels: tuple[str, ...]
    mean_features: np.ndarray  # the catalogue's average content row
    popularity: np.ndarray  # float64 in [0, 1] per open event
    recent: np.ndarray  # int64 bookings within POPULAR_WINDOW of the build, per open event
    total: np.ndarray  # int64 bookings per open event


def build_model(
    bookings: Iterable[Booking],
    events: Iterable[EventInfo],
    now: datetime,
    config: RecommendConfig | None = None,
) -> Model:
    """Build a model from the confirmed bookings and the catalogue as they are at ``now``.

    Args:
        bookings: confirmed bookings; those made after ``now`` or of unknown events are ignored.
        events: the catalogue, past events included (they carry users' tastes).
        now: timezone-aware; the build time for "open" and for recent popularity.
        config: tuning; ``RecommendConfig()`` when omitted.

    Returns:
        The model. The same inputs in any order give the same model.

    Raises:
        ValueError: on a naive ``now`` or duplicate event ids.
    """
    config = config or RecommendConfig()
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    catalogue = sorted(events, key=lambda event: event.event_id)
    index = {event.event_id: i for i, event in enumerate(catalogue)}
    if len(index) != len(catalogue):
        raise ValueError("duplicate event ids")
    starts_at = np.array([event.starts_at.timestamp() for event in catalogue], dtype=np.float64)
    now_ts = now.timestamp()
    is_open = np.array(
        [not (event.cancelled or event.sold_out) for event in catalogue], dtype=np.bool_
    )
    is_open &= starts_at > now_ts
    open_events = np.flatnonzero(is_open).astype(np.int64)
    open_position = np.full(len(catalogue), -1, dtype=np.int64)
    open_position[open_events] = np.arange(open_events.size)

    user_rows, event_cols, booked_at = _booking_columns(bookings, index, now_ts)
    features, labels = _feature_matrix(catalogue, config)
    recent = np.bincount(
        event_cols[booked_at > now_ts - POPULAR_WINDOW.total_seconds()],
        minlength=len(catalogue),
    )[open_events]
    total = np.bincount(event_cols, minlength=len(catalogue))[open_events]
    raw = np.log1p(recent + config.popularity_total_weight * total)
    top = raw.max() if raw.size else 0.0
    popularity = raw / top if top > 0 else np.zeros(open_events.size)
    categories, category_labels = _category_codes(catalogue)
    return Model(
        config=config,
        built_at=now,
        event_ids=tuple(index),
        index=index,
        names=tuple(event.name for event in catalogue),
        category_labels=tuple(category_labels[code] for code in categories),
        starts_at=starts_at,
        open_events=open_events,
        open_position=open_position,
        neighbours=_neighbours(user_rows, event_cols, len(catalogue), open_events, config),
        features=features,
        open_features=sp.csr_array(features[open_events]),
        feature_labels=labels,
        mean_features=np.asarray(features.sum(axis=0)).ravel() / max(len(catalogue), 1),
        popularity=popularity,
        recent=recent.astype(np.int64),
        total=total.astype(np.int64),
    )


def _booking_columns(
    bookings: Iterable[Booking], index: dict[str, int], now_ts: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (user row, event index, booked_at seconds) for usable bookings, users
    numbered in user-id order so the matrix does not depend on input order."""
    users: list[str] = []
    events: list[int] = []
    times: list[float] = []
    for booking in bookings:
        event = index.get(booking.event_id)
        booked_at = booking.booked_at.timestamp()
        if event is None or booked_at > now_ts:
            continue
        users.append(booking.user_id)
        events.append(event)
        times.append(booked_at)
    user_ids, user_rows = np.unique(np.array(users, dtype=object), return_inverse=True)
    del user_ids
    return (
        user_rows.astype(np.int64).reshape(-1),
        np.array(events, dtype=np.int64),
        np.array(times, dtype=np.float64),
    )


def _neighbours(
    user_rows: np.ndarray,
    event_cols: np.ndarray,
    n_events: int,
    open_events: np.ndarray,
    config: RecommendConfig,
) -> sp.csr_array:
    """Top-``neighbours`` shrunk cosine similarities from every event to the open events."""
    n_open = open_events.size
    n_users = int(user_rows.max()) + 1 if user_rows.size else 0
    matrix = sp.csr_array(
        (np.ones(user_rows.size), (user_rows, event_cols)), shape=(n_users, n_events)
    )
    matrix.sum_duplicates()
    matrix.data = 1.0 + np.log(matrix.data)  # a repeat booking counts, but less than a new user
    norms = np.sqrt(np.asarray((matrix * matrix).sum(axis=0)).ravel())
    by_event = sp.csr_array(matrix.T)
    to_open = sp.csr_array(matrix[:, open_events])
    open_norms = norms[open_events]
    k = min(config.neighbours, n_open)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    chunk = max(1, _CHUNK_CELLS // max(n_open, 1))
    for start in range(0, n_events if k else 0, chunk):
        stop = min(start + chunk, n_events)
        block = (by_event[start:stop] @ to_open).toarray()
        block /= norms[start:stop, None] * open_norms[None, :] + config.shrink + 1e-12
        own = np.flatnonzero(np.isin(open_events, np.arange(start, stop)))
        block[open_events[own] - start, own] = 0.0  # an event is not its own neighbour
        top = np.argpartition(-block, k - 1, axis=1)[:, :k] if k < n_open else None
        if top is None:
            top = np.broadcast_to(np.arange(n_open), block.shape)
        picked = np.take_along_axis(block, top, axis=1)
        keep = picked > 0
        rows.append(np.nonzero(keep)[0] + start)
        cols.append(top[keep])
        vals.append(picked[keep])
    if not rows:
        return sp.csr_array((n_events, n_open))
    return sp.csr_array(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_events, n_open),
    )


def _category_codes(catalogue: Sequence[EventInfo]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Category code per event (case-insensitive) and each code's label as first written."""
    codes: dict[str, int] = {}
    labels: list[str] = []
    per_event = np.empty(len(catalogue), dtype=np.int64)
    for i, event in enumerate(catalogue):
        key = event.category.casefold()
        if key not in codes:
            codes[key] = len(labels)
            labels.append(event.category)
        per_event[i] = codes[key]
    return per_event, tuple(labels)


def _feature_matrix(
    catalogue: Sequence[EventInfo], config: RecommendConfig
) -> tuple[sp.csr_array, tuple[str, ...]]:
    """Unit-length content rows and one human label per feature column."""
    n = len(catalogue)
    keyword_sets = [
        sorted({word.strip().casefold() for word in event.keywords if word.strip()})
        for event in catalogue
    ]
    vocabulary = sorted({word for words in keyword_sets for word in words})
    word_index = {word: i for i, word in enumerate(vocabulary)}
    k_rows = np.repeat(np.arange(n), [len(words) for words in keyword_sets])
    k_cols = np.array([word_index[w] for words in keyword_sets for w in words], dtype=np.int64)
    document_frequency = np.bincount(k_cols, minlength=len(vocabulary))
    idf = np.log((1 + n) / (1 + document_frequency)) + 1.0
    keywords = _unit_rows(sp.csr_array((idf[k_cols], (k_rows, k_cols)), shape=(n, len(vocabulary))))
    categories, category_labels = _category_codes(catalogue)
    venue_names: dict[str, str] = {}
    for event in catalogue:
        venue_names.setdefault(event.venue_id, event.venue_name)
    venue_order = sorted(venue_names)
    venue_index = {venue: i for i, venue in enumerate(venue_order)}
    venues = np.array([venue_index[event.venue_id] for event in catalogue], dtype=np.int64)
    prices = np.array([event.price_cents for event in catalogue], dtype=np.float64)
    # Bands are catalogue quantiles, so "budget" means cheap for this catalogue.
    quantiles = np.linspace(0, 1, len(PRICE_BAND_LABELS) + 1)[1:-1]
    edges = np.quantile(prices, quantiles) if n else np.zeros(quantiles.size)
    bands = np.searchsorted(edges, prices, side="right")
    weekdays = np.array([event.starts_at.weekday() for event in catalogue], dtype=np.int64)
    hours = np.array([event.starts_at.hour for event in catalogue], dtype=np.int64)
    hour_bands = np.searchsorted(HOUR_BAND_STARTS, hours, side="right")
    blocks = [
        keywords * config.keyword_weight,
        _one_hot(categories, len(category_labels)) * config.category_weight,
        _one_hot(venues, len(venue_order)) * config.venue_weight,
        _one_hot(bands, len(PRICE_BAND_LABELS)) * config.price_weight,
        _one_hot(weekdays, len(WEEKDAY_LABELS)) * config.weekday_weight,
        _one_hot(hour_bands, len(HOUR_BAND_LABELS)) * config.hour_weight,
    ]
    labels = (
        *vocabulary,
        *category_labels,
        *(venue_names[venue] or "a venue you have been to" for venue in venue_order),
        *PRICE_BAND_LABELS,
        *WEEKDAY_LABELS,
        *HOUR_BAND_LABELS,
    )
    return _unit_rows(sp.csr_array(sp.hstack(blocks, format="csr"))), labels


def _one_hot(codes: np.ndarray, size: int) -> sp.csr_array:
    return sp.csr_array(
        (np.ones(codes.size), (np.arange(codes.size), codes)), shape=(codes.size, size)
    )


def _unit_rows(matrix: sp.csr_array) -> sp.csr_array:
    """The rows scaled to unit length (empty rows stay empty)."""
    matrix = sp.csr_array(matrix)
    matrix.sum_duplicates()
    n_rows = matrix.shape[0]
    row_of = np.repeat(np.arange(n_rows), np.diff(matrix.indptr))
    lengths = np.sqrt(np.bincount(row_of, weights=matrix.data**2, minlength=n_rows))
    scale = np.divide(1.0, lengths, out=np.zeros(n_rows), where=lengths > 0)
    matrix.data = matrix.data * scale[row_of]
    return matrix


def recommend(
    model: Model,
    history: Sequence[str],
    *,
    now: datetime,
    limit: int = 10,
    exclude: Collection[str] = (),
) -> list[Recommendation]:
    """Recommend open events to one user.

    Args:
        model: from ``build_model``.
        history: the event ids of the user's confirmed bookings, read live (a repeat booking
            may appear more than once); ids unknown to the model are ignored.
        now: timezone-aware; events starting at or before it are not recommended.
        limit: at most this many results.
        exclude: event ids not to recommend (e.g. cancelled or sold out since the build).

    Returns:
        Up to ``limit`` recommendations, best first.

    Raises:
        ValueError: on ``limit`` < 1 or a naive ``now``.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    booked, weights = _history(model, history)
    eligible = model.starts_at[model.open_events] > now.timestamp()
    blocked = [model.index[event_id] for event_id in exclude if event_id in model.index]
    positions = model.open_position[np.concatenate((booked, np.array(blocked, dtype=np.int64)))]
    eligible[positions[positions >= 0]] = False

    parts = np.zeros((3, model.open_events.size))  # collaborative, content, popularity
    votes = _Votes.empty()
    profile = np.zeros(0)
    collaborative_weight, content_weight, popularity_weight = _blend(model.config, booked.size)
    if booked.size:
        votes = _Votes.gather(model.neighbours, booked, weights)
        collaborative = votes.totals(model.open_events.size)
        parts[0] = _stretch(collaborative, eligible) * collaborative_weight
        profile = _profile(model, booked, weights)
        parts[1] = _stretch(model.open_features @ profile, eligible) * content_weight
    parts[2] = _stretch(model.popularity, eligible) * popularity_weight
    scores = np.round(np.clip(parts.sum(axis=0), 0.0, 1.0), SCORE_DIGITS)

    candidates = np.flatnonzero(eligible)
    order = np.lexsort((candidates, -model.popularity[candidates], -scores[candidates]))
    chosen = candidates[order[:limit]]
    explain = _Explainer(model, votes, profile, chosen)
    return [
        Recommendation(
            event_id=model.event_ids[model.open_events[j]],
            score=float(scores[j]),
            method=_method(parts[:, j], booked.size > 0),
            reasons=explain.reasons(j, parts[:, j]),
        )
        for j in chosen
    ]


def _stretch(values: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """``values`` mapped linearly onto [0, 1] over the eligible events (0 when all equal)."""
    if not eligible.any():
        return np.zeros(values.size)
    low, high = values[eligible].min(), values[eligible].max()
    if high <= low:
        return np.zeros(values.size)
    return np.clip((values - low) / (high - low), 0.0, 1.0)


def _history(model: Model, history: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Distinct known booked events (ascending) and their weights ``1 + log(count)``."""
    known = np.array(
        [model.index[event_id] for event_id in history if event_id in model.index],
        dtype=np.int64,
    )
    booked, counts = np.unique(known, return_counts=True)
    return booked, 1.0 + np.log(counts)


def _blend(config: RecommendConfig, n_booked: int) -> tuple[float, float, float]:
    """(collaborative, content, popularity) weights for a user with ``n_booked`` events."""
    if n_booked == 0:
        return 0.0, 0.0, 1.0
    share = n_booked / (n_booked + config.history_half) if config.history_half else 1.0
    rest = 1.0 - config.popularity_weight
    return rest * share, rest * (1.0 - share), config.popularity_weight


def _profile(model: Model, booked: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The unit-length sum of the booked events' content rows."""
    profile = np.asarray(weights @ model.features[booked]).ravel() / weights.sum()
    profile = np.maximum(profile - model.config.profile_centring * model.mean_features, 0.0)
    length = float(np.linalg.norm(profile))
    return profile / length if length > 0 else profile


@dataclass(frozen=True, slots=True)
class _Votes:
    """Each booked event's weighted similarity to each of its open neighbours."""

    source: np.ndarray  # booked event index
    target: np.ndarray  # open-event position
    value: np.ndarray

    @classmethod
    def empty(cls) -> _Votes:
        nothing = np.zeros(0, dtype=np.int64)
        return cls(nothing, nothing, np.zeros(0))

    @classmethod
    def gather(cls, neighbours: sp.csr_array, booked: np.ndarray, weights: np.ndarray) -> _Votes:
        starts, stops = neighbours.indptr[booked], neighbours.indptr[booked + 1]
        lengths = stops - starts
        # Positions of every kept neighbour of every booked event, without a Python loop.
        offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
        at = offsets + np.arange(int(lengths.sum()))
        return cls(
            source=np.repeat(booked, lengths),
            target=neighbours.indices[at].astype(np.int64),
            value=neighbours.data[at] * np.repeat(weights, lengths),
        )

    def totals(self, size: int) -> np.ndarray:
        return np.bincount(self.target, weights=self.value, minlength=size)

    def strongest_sources(self, targets: np.ndarray) -> dict[int, int]:
        """For each target position, the booked event that voted for it most."""
        hit = np.isin(self.target, targets)
        target, value, source = self.target[hit], self.value[hit], self.source[hit]
        order = np.lexsort((source, -value, target))
        first = np.unique(target[order], return_index=True)[1]
        return {
            int(t): int(s) for t, s in zip(target[order][first], source[order][first], strict=True)
        }


class _Explainer:
    """Reasons for the chosen events, from the parts that made their scores."""

    def __init__(
        self, model: Model, votes: _Votes, profile: np.ndarray, chosen: np.ndarray
    ) -> None:
        self._model = model
        self._profile = profile
        self._because = votes.strongest_sources(chosen) if votes.value.size else {}

    def reasons(self, position: int, parts: np.ndarray) -> tuple[str, ...]:
        total = float(parts.sum())
        texts: list[str] = []
        for component in np.lexsort((np.arange(3), -parts)):
            if total > 0 and parts[component] < REASON_SHARE * total and texts:
                break
            text = self._reason(int(component), position)
            if text:
                texts.append(text)
        return tuple(texts) or (self._popular(position),)

    def _reason(self, component: int, position: int) -> str | None:
        if component == 0:
            source = self._because.get(position)
            return None if source is None else f"because you booked {self._model.names[source]}"
        if component == 1:
            return self._content(position)
        return self._popular(position)

    def _content(self, position: int) -> str | None:
        if not self._profile.size:
            return None
        features = self._model.open_features
        start, stop = features.indptr[position], features.indptr[position + 1]
        columns = features.indices[start:stop]
        shares = features.data[start:stop] * self._profile[columns]
        labels: list[str] = []
        for at in np.lexsort((columns, -shares)):
            if shares[at] <= 0 or len(labels) == CONTENT_REASON_FEATURES:
                break
            label = self._model.feature_labels[columns[at]]
            if label.casefold() not in (known.casefold() for known in labels):
                labels.append(label)
        return f"matches your interest in {', '.join(labels)}" if labels else None

    def _popular(self, position: int) -> str:
        model = self._model
        category = model.category_labels[model.open_events[position]]
        if model.recent[position]:
            return f"popular in {category} this week"
        if model.total[position]:
            bookings = model.total[position]
            return f"booked {bookings} time{'s' if bookings != 1 else ''} in {category}"
        return f"new in {category}"


def _method(parts: np.ndarray, has_history: bool) -> Method:
    """The component with a dominant share of the score, else hybrid."""
    if not has_history:
        return Method.POPULAR
    total = float(parts.sum())
    top = int(np.argmax(parts))
    if total <= 0 or parts[top] < DOMINANT_SHARE * total:
        return Method.HYBRID
    return (Method.COLLABORATIVE, Method.CONTENT, Method.POPULAR)[top]
