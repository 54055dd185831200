from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from engines.recommend import (
    Booking,
    EventInfo,
    Method,
    Model,
    RecommendConfig,
    build_model,
    recommend,
)
from engines.recommend_eval import EPOCH, engine_rankings, generate_world, score_rankings, split_at

NOW = datetime(2025, 6, 2, 12, tzinfo=UTC)  # a Monday
COLLABORATIVE_ONLY = RecommendConfig(history_half=0.0, popularity_weight=0.0)


def _event(
    event_id: str,
    name: str,
    category: str,
    keywords: tuple[str, ...],
    *,
    days: float,
    venue: str = "lake",
    price: int = 3_000,
    hour: int = 20,
    cancelled: bool = False,
    sold_out: bool = False,
) -> EventInfo:
    day = (NOW + timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)
    return EventInfo(
        event_id=event_id,
        name=name,
        category=category,
        keywords=keywords,
        venue_id=venue,
        venue_name=f"the {venue.title()}",
        price_cents=price,
        starts_at=day if days else NOW,
        cancelled=cancelled,
        sold_out=sold_out,
    )


CATALOGUE = (
    _event("p-jazz", "Jazz at the Lake", "Jazz", ("jazz", "outdoor"), days=-30),
    _event("p-rock", "Rock in the Cellar", "Rock", ("rock", "loud"), days=-20, venue="cellar"),
    _event("f-jazz1", "Bebop Night", "Jazz", ("jazz", "bebop"), days=5),
    _event("f-jazz2", "Swing Evening", "Jazz", ("jazz", "swing", "outdoor"), days=9),
    _event("f-rock1", "Punk Riot", "Rock", ("rock", "punk"), days=6, venue="cellar"),
    _event("f-rock2", "Garage Days", "Rock", ("rock", "garage"), days=12, venue="cellar"),
    _event("f-comedy", "Stand-up Hour", "Comedy", ("stand-up",), days=3, venue="barn"),
    _event("f-opera", "Verdi Gala", "Opera", ("verdi",), days=15, venue="hall", price=12_000),
)


def _at(days: float) -> datetime:
    return NOW + timedelta(days=days)


def _bookings() -> list[Booking]:
    """Jazz fans who booked the lake show also booked Bebop Night; rock fans book rock; the
    comedy show sold fast this week; nobody has booked the opera yet."""
    bookings: list[Booking] = []
    for n in range(8):
        bookings += [
            Booking(f"jazz{n}", "p-jazz", _at(-40)),
            Booking(f"jazz{n}", "f-jazz1", _at(-3)),
        ]
    for n in range(6):
        bookings += [
            Booking(f"rock{n}", "p-rock", _at(-25)),
            Booking(f"rock{n}", "f-rock1", _at(-10)),
        ]
    bookings += [Booking(f"fan{n}", "f-comedy", _at(-1)) for n in range(12)]
    return bookings


@pytest.fixture(scope="module")
def model() -> Model:
    return build_model(_bookings(), CATALOGUE, NOW)


def _ids(found: list) -> list[str]:
    return [item.event_id for item in found]


def test_cold_start_gets_popular_events_with_reasons(model: Model) -> None:
    found = recommend(model, (), now=NOW, limit=3)
    assert _ids(found) == ["f-comedy", "f-jazz1", "f-rock1"]
    assert {item.method for item in found} == {Method.POPULAR}
    assert found[0].reasons == ("popular in Comedy this week",)


def test_an_event_nobody_booked_is_explained_as_new(model: Model) -> None:
    found = recommend(model, (), now=NOW, limit=10)
    opera = next(item for item in found if item.event_id == "f-opera")
    assert opera.reasons == ("new in Opera",)


def test_a_jazz_fan_gets_jazz_first(model: Model) -> None:
    found = recommend(model, ["p-jazz"], now=NOW, limit=3)
    assert _ids(found)[:2] == ["f-jazz2", "f-jazz1"] or _ids(found)[:2] == ["f-jazz1", "f-jazz2"]
    assert all(item.method in (Method.CONTENT, Method.HYBRID) for item in found[:2])
    assert any(reason.startswith("matches your interest in") for reason in found[0].reasons)


def test_collaborative_reason_names_the_booked_event() -> None:
    model = build_model(_bookings(), CATALOGUE, NOW, COLLABORATIVE_ONLY)
    found = recommend(model, ["p-jazz"], now=NOW, limit=1)
    assert _ids(found) == ["f-jazz1"]
    assert found[0].method is Method.COLLABORATIVE
    assert found[0].reasons[0] == "because you booked Jazz at the Lake"


def test_content_reason_names_the_shared_features(model: Model) -> None:
    found = recommend(model, ["p-jazz"], now=NOW, limit=10)
    swing = next(item for item in found if item.event_id == "f-jazz2")
    interest = next(r for r in swing.reasons if r.startswith("matches your interest in "))
    named = interest.removeprefix("matches your interest in ").split(", ")
    assert set(named) <= {"jazz", "outdoor", "Jazz", "the Lake"}
    assert "outdoor" in named


def test_a_new_booking_changes_the_next_answer(model: Model) -> None:
    before = recommend(model, ["p-jazz"], now=NOW, limit=2)
    # Booked after the build: the model has never seen it, the history has.
    after = recommend(model, ["p-jazz", "p-rock", "f-rock2"], now=NOW, limit=2)
    assert not {"f-rock1", "f-rock2"} & set(_ids(before))
    assert "f-rock1" in _ids(after)


@pytest.mark.parametrize(
    ("change", "history", "exclude", "gone"),
    [
        ({"f-jazz1": {"days": 0}}, (), (), "f-jazz1"),  # starts exactly now
        ({"f-jazz1": {"days": -1}}, (), (), "f-jazz1"),  # over
        ({"f-jazz1": {"cancelled": True}}, (), (), "f-jazz1"),
        ({"f-jazz1": {"sold_out": True}}, (), (), "f-jazz1"),
        ({}, ("f-jazz1",), (), "f-jazz1"),  # already booked
        ({}, (), ("f-jazz1",), "f-jazz1"),  # sold out since the build
    ],
)
def test_exclusions(
    change: dict[str, dict[str, object]],
    history: tuple[str, ...],
    exclude: tuple[str, ...],
    gone: str,
) -> None:
    events = []
    for event in CATALOGUE:
        edits = dict(change.get(event.event_id, {}))
        if "days" in edits:
            days = float(edits.pop("days"))  # type: ignore[arg-type]
            edits["starts_at"] = NOW + timedelta(days=days)
        events.append(replace(event, **edits))  # type: ignore[arg-type]
    model = build_model(_bookings(), events, NOW)
    for user_history in (history, ("p-jazz", *history)):
        found = _ids(recommend(model, user_history, now=NOW, limit=10, exclude=exclude))
        assert gone not in found
        assert "p-jazz" not in found and "p-rock" not in found
        assert found  # the rest of the catalogue is still offered


def test_an_event_that_starts_before_a_later_query_is_dropped(model: Model) -> None:
    found = _ids(recommend(model, (), now=NOW + timedelta(days=4), limit=10))
    assert "f-comedy" not in found  # started on day 3
    assert "f-jazz1" in found


def test_scores_are_in_unit_range_and_sorted(model: Model) -> None:
    for history in ((), ("p-jazz",), ("p-jazz", "p-rock"), ("p-rock", "p-rock")):
        found = recommend(model, history, now=NOW, limit=10)
        scores = [item.score for item in found]
        assert scores == sorted(scores, reverse=True)
        assert all(0.0 <= score <= 1.0 for score in scores)
        assert all(item.reasons for item in found)


def test_unknown_events_in_history_are_ignored(model: Model) -> None:
    assert recommend(model, ["nope"], now=NOW) == recommend(model, (), now=NOW)


def test_same_data_in_any_order_gives_the_same_answer(model: Model) -> None:
    shuffled_bookings, shuffled_events = _bookings(), list(CATALOGUE)
    random.Random(3).shuffle(shuffled_bookings)
    random.Random(4).shuffle(shuffled_events)
    again = build_model(shuffled_bookings, shuffled_events, NOW)
    for history in ((), ("p-jazz",), ("p-rock", "f-rock1")):
        assert recommend(again, history, now=NOW) == recommend(model, history, now=NOW)


@pytest.mark.parametrize(
    ("limit", "now"), [(0, NOW), (5, NOW.replace(tzinfo=None))], ids=["limit", "naive"]
)
def test_bad_requests_are_refused(model: Model, limit: int, now: datetime) -> None:
    with pytest.raises(ValueError):
        recommend(model, (), now=now, limit=limit)


def test_planted_tastes_come_first() -> None:
    world = generate_world(np.random.default_rng(11), users=800, events=300, mean_bookings=15)
    now = EPOCH + timedelta(days=240)
    model = build_model([b for b in world.bookings if b.booked_at <= now], world.events, now)
    category = {event.event_id: event.category for event in world.events}
    open_categories = [category[model.event_ids[i]] for i in model.open_events]
    hits, base = [], []
    history: dict[str, list[str]] = {}
    for booking in world.bookings:
        if booking.booked_at <= now:
            history.setdefault(booking.user_id, []).append(booking.event_id)
    for user, booked in history.items():
        if len(booked) < 8:
            continue
        liked = set(world.tastes[user].categories)
        top = recommend(model, booked, now=now, limit=5)
        hits.append(np.mean([category[item.event_id] in liked for item in top]))
        base.append(np.mean([c in liked for c in open_categories]))
    # The planted categories fill most of the top five, far above their share of the catalogue.
    assert np.mean(hits) >= 0.5
    assert np.mean(hits) >= 3 * np.mean(base)


def test_hybrid_beats_popularity_on_a_held_out_split() -> None:
    world = generate_world(np.random.default_rng(5), users=2_000, events=800, mean_bookings=12)
    split = split_at(world.bookings, EPOCH + timedelta(days=240), timedelta(days=28))
    hybrid, n_open = engine_rankings(split, world.events, RecommendConfig())
    popular, _ = engine_rankings(split, world.events, RecommendConfig(), cold=True)
    hybrid_scores = score_rankings(hybrid, split.relevant, n_open)
    popular_scores = score_rankings(popular, split.relevant, n_open)
    assert hybrid_scores.precision_at_5 >= 2 * popular_scores.precision_at_5
    assert hybrid_scores.coverage > popular_scores.coverage


def test_a_catalogue_without_bookings_still_answers() -> None:
    model = build_model([], CATALOGUE, NOW)
    cold = recommend(model, (), now=NOW, limit=10)
    assert {item.event_id for item in cold} == {e.event_id for e in CATALOGUE[2:]}
    assert all(item.reasons == (f"new in {_category(item.event_id)}",) for item in cold)
    warm = recommend(model, ["p-jazz"], now=NOW, limit=2)
    assert {item.event_id for item in warm} == {"f-jazz1", "f-jazz2"}
    assert build_model([], [], NOW).open_events.size == 0


def _category(event_id: str) -> str:
    return next(event.category for event in CATALOGUE if event.event_id == event_id)


def test_evaluation_metrics_by_hand() -> None:
    rankings = {"a": ["x", "y", "z", "w", "v", "u"], "b": ["u", "v", "w", "x", "y"]}
    relevant = {"a": frozenset({"y", "u"}), "b": frozenset({"q"})}
    scores = score_rankings(rankings, relevant, n_open=10)
    assert scores.precision_at_5 == pytest.approx((1 / 5 + 0) / 2)
    assert scores.recall_at_5 == pytest.approx((1 / 2 + 0) / 2)
    ideal = 1 + 1 / np.log2(3)
    assert scores.ndcg_at_10 == pytest.approx((1 / np.log2(3) + 1 / np.log2(7)) / ideal / 2)
    assert scores.coverage == pytest.approx(6 / 10)
