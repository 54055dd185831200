"""Event recommendations against real PostgreSQL and Redis: planted tastes come first, a new
user gets popular events, answers are cached until the user books, events closed since the
build are left out, and a model the leader builds reaches another hub through Redis.

Every test here works under a Redis prefix of its own (an app without leader loops, or hubs
opened for the test), so no other leader publishes a model built before its data exists.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest

from engines.recommend import Booking, EventInfo, build_model, recommend
from hub import jsonenc
from hub.app import create_app
from hub.context import Hub, open_hub
from hub.errors import NotFound, ValidationError
from hub.services import event_recommendations as reco
from hub.settings import Settings
from tests.conftest import Account, register
from tests.factories import default_sections, make_venue
from tests.waiting import eventually

API = "/api/v1"


def _private(settings: Settings, name: str) -> Settings:
    """Settings on the same servers with a Redis prefix of their own; the model is built in
    the calling process (no offload child to start)."""
    prefix = f"{settings.redis_prefix}{name}-{uuid.uuid4().hex[:6]}:"
    return settings.replace(redis_prefix=prefix, reco_offload=False)


@pytest.fixture(scope="module")
async def reco_app(settings: Settings) -> AsyncIterator[Any]:
    app = create_app(_private(settings, "reco"), leader_loops=())
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture(scope="module")
def reco_hub(reco_app: Any) -> Hub:
    hub: Hub = reco_app.state.hub
    return hub


@pytest.fixture
async def http(reco_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=reco_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://reco") as client:
        yield client


@pytest.fixture
async def boss(http: httpx.AsyncClient, admin_credentials: tuple[str, str]) -> Account:
    email, password = admin_credentials
    response = await http.post(f"{API}/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body = response.json()
    return Account(body["user"]["id"], email, password, body["access_token"])


async def _event(
    http: httpx.AsyncClient,
    admin: Account,
    venue_id: str,
    category: str,
    keywords: Sequence[str],
    *,
    days: float = 30,
) -> str:
    starts_at = dt.datetime.now(dt.UTC) + dt.timedelta(days=days)
    body = {
        "name": f"{category} {uuid.uuid4().hex[:6]}",
        "description": "",
        "category": category,
        "keywords": list(keywords),
        "venue_id": venue_id,
        "starts_at": starts_at.isoformat(),
        "section_prices": {},
    }
    response = await http.post(f"{API}/events", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _book(http: httpx.AsyncClient, who: Account, event_id: str) -> None:
    response = await http.post(
        f"{API}/bookings", json={"event_id": event_id, "quantity": 1}, headers=who.headers
    )
    assert response.status_code == 201, response.text


@dataclass
class Taste:
    """A category of its own (and a keyword of its own), its events, and fans who booked
    the first two of them and one other each."""

    category: str
    keyword: str
    events: list[str]
    fans: list[Account]

    @property
    def keywords(self) -> list[str]:
        return [self.keyword, "live"]


async def _taste(
    http: httpx.AsyncClient, admin: Account, venue_id: str, name: str, *, events: int = 5
) -> Taste:
    token = uuid.uuid4().hex[:6]
    category, keyword = f"{name}-{token}", f"{name}{token}"
    made = [await _event(http, admin, venue_id, category, [keyword, "live"]) for _ in range(events)]
    fans = [await register(http, f"{name} fan {n}") for n in range(4)]
    for n, fan in enumerate(fans):
        for event_id in (made[0], made[1], made[2 + n % (events - 2)]):
            await _book(http, fan, event_id)
    return Taste(category, keyword, made, fans)


async def _ask(hub: Hub, user: Account | str, limit: int = 10) -> list[dict[str, Any]]:
    user_id = user.id if isinstance(user, Account) else user
    return await reco.recommend_events(hub, uuid.UUID(user_id), limit=limit)


def _ids(answer: list[dict[str, Any]]) -> list[str]:
    return [item["event_id"] for item in answer]


async def test_planted_tastes_come_first_and_a_new_user_gets_popular_events(
    http: httpx.AsyncClient, boss: Account, reco_hub: Hub
) -> None:
    venue = (await make_venue(http, boss))["id"]
    jazz = await _taste(http, boss, venue, "jazz")
    rock = await _taste(http, boss, venue, "rock")
    jazz_lover, rock_lover = await register(http, "Jazz lover"), await register(http, "Rocker")
    for event_id in jazz.events[:2]:
        await _book(http, jazz_lover, event_id)
    for event_id in rock.events[:2]:
        await _book(http, rock_lover, event_id)
    await reco.rebuild(reco_hub, by=reco.Builder.LEADER, replace=True)

    for lover, taste in ((jazz_lover, jazz), (rock_lover, rock)):
        answer = await _ask(reco_hub, lover)
        # The three events of their taste they have not booked, ahead of everything else.
        assert set(_ids(answer)[:3]) == set(taste.events[2:]), answer
        assert not set(_ids(answer)) & set(taste.events[:2])  # booked: never offered
        scores = [item["score"] for item in answer]
        assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
        for item in answer[:3]:
            assert item["method"] in ("collaborative", "content", "hybrid")
            assert item["reasons"] and all(isinstance(r, str) and r for r in item["reasons"])

    newcomer, other_newcomer = await register(http, "New"), await register(http, "Newer")
    fresh = await _ask(reco_hub, newcomer)
    assert fresh and {item["method"] for item in fresh} == {"popular"}
    assert all(item["reasons"] for item in fresh)
    # Popularity is not personal: two users without history get the same list.
    assert _ids(await _ask(reco_hub, other_newcomer)) == _ids(fresh)


async def test_an_answer_is_cached_until_the_user_books_and_then_sees_the_booking(
    http: httpx.AsyncClient, boss: Account, reco_hub: Hub
) -> None:
    venue = (await make_venue(http, boss))["id"]
    folk = await _taste(http, boss, venue, "folk", events=6)
    await reco.rebuild(reco_hub, by=reco.Builder.LEADER, replace=True)
    fan = await register(http, "Folk fan")
    await _book(http, fan, folk.events[0])

    first = await _ask(reco_hub, fan, limit=5)
    assert set(_ids(first)[:3]) <= set(folk.events[1:])
    # The answer is in Redis; mark it so that serving it from there shows.
    keys = reco_hub.store.keys
    answers_key = keys.global_(f"reco:answers:{fan.id}")
    stored = await reco_hub.store.client.hget(answers_key, "n5")
    assert stored is not None
    entry = jsonenc.loads(stored)
    assert entry["r"] == first
    marked = [dict(item, reasons=["from the cache"]) for item in first]
    entry["r"] = marked
    await reco_hub.store.client.hset(answers_key, "n5", jsonenc.dumps(entry))
    assert await _ask(reco_hub, fan, limit=5) == marked
    # Another limit is another answer, computed on its own.
    assert (await _ask(reco_hub, fan, limit=3))[0]["reasons"] != ["from the cache"]

    # Booking the first recommendation retires the cached answers: the very next answer is
    # computed from the live history (no rebuild since), without the booked event.
    booked = first[0]["event_id"]
    await _book(http, fan, booked)
    after = await _ask(reco_hub, fan, limit=5)
    assert booked not in _ids(after)
    assert after != marked and _ids(after) != _ids(first)
    assert all(item["reasons"] != ["from the cache"] for item in after)


async def test_events_closed_since_the_build_are_left_out(
    http: httpx.AsyncClient, boss: Account, reco_hub: Hub
) -> None:
    venue = (await make_venue(http, boss))["id"]
    blues = await _taste(http, boss, venue, "blues", events=6)
    tiny = (await make_venue(http, boss, sections=default_sections(rows=1, seats_per_row=1)))["id"]
    small = await _event(http, boss, tiny, blues.category, blues.keywords)
    await reco.rebuild(reco_hub, by=reco.Builder.LEADER, replace=True)
    first_fan, second_fan = await register(http, "Blues fan"), await register(http, "Another")
    for fan in (first_fan, second_fan):
        await _book(http, fan, blues.events[0])
    before = _ids(await _ask(reco_hub, first_fan))
    cancelled = blues.events[5]
    assert small in before and cancelled in before

    response = await http.post(f"{API}/events/{cancelled}/cancel", headers=boss.headers)
    assert response.status_code == 200, response.text
    for buyer in [await register(http, f"Buyer {n}") for n in range(2)]:  # both seats
        await _book(http, buyer, small)

    after = _ids(await _ask(reco_hub, second_fan))
    assert small not in after and cancelled not in after
    assert set(blues.events[1:5]) <= set(after)


async def test_limits_and_unknown_users(reco_hub: Hub, http: httpx.AsyncClient) -> None:
    someone = await register(http, "Someone")
    assert len(await _ask(reco_hub, someone, limit=1)) <= 1
    with pytest.raises(ValidationError):
        await _ask(reco_hub, someone, limit=reco.MAX_LIMIT + 1)
    with pytest.raises(NotFound):
        await _ask(reco_hub, str(uuid.uuid4()))


async def test_before_any_model_the_first_request_builds_and_publishes_one(
    settings: Settings, http: httpx.AsyncClient
) -> None:
    someone = await register(http, "Early")
    async with open_hub(_private(settings, "first")) as hub:
        assert await hub.store.client.get(hub.store.keys.global_("reco:meta")) is None
        answers = await asyncio.gather(*(_ask(hub, someone) for _ in range(3)))
        assert answers[0] == answers[1] == answers[2]
        meta = reco.Meta.decode(await hub.store.client.get(hub.store.keys.global_("reco:meta")))
        assert meta is not None and meta.by is reco.Builder.FIRST_USE
        # The leader replaces a model a first use built.
        assert await reco.rebuild_due(hub)


async def _loaded_already(hub: Hub, version: str) -> bool:
    """Whether ``hub`` holds ``version`` in memory (asking never loads it)."""

    async def refuse() -> Any:
        raise LookupError(version)

    try:
        await hub.event_models.get(version, refuse)
    except LookupError:
        hub.event_models.forget(version)
        return False
    return True


async def _meta(hub: Hub) -> reco.Meta | None:
    return reco.Meta.decode(await hub.store.client.get(hub.store.keys.global_("reco:meta")))


async def test_the_leaders_model_reaches_another_hub_through_redis(
    settings: Settings, http: httpx.AsyncClient, boss: Account
) -> None:
    venue = (await make_venue(http, boss))["id"]
    soul = await _taste(http, boss, venue, "soul")
    fan = soul.fans[0]
    shared = _private(settings, "leader").replace(reco_rebuild_seconds=0.5)
    async with open_hub(shared) as leader, open_hub(shared) as other:
        loop = asyncio.create_task(reco.recommendation_loop(leader))
        try:

            async def published() -> bool:
                return await _meta(other) is not None

            assert await eventually(published, within=30)
            first = await _meta(other)
            assert first is not None and first.by is reco.Builder.LEADER
            before = await _ask(other, fan)
            assert await _loaded_already(other, first.version)
            newest = await _event(http, boss, venue, soul.category, soul.keywords)

            async def rebuilt() -> bool:
                meta = await _meta(other)
                return meta is not None and meta.version != first.version

            assert await eventually(rebuilt, within=30)
            second = await _meta(other)
            assert second is not None and second.by is reco.Builder.LEADER
            after = await _ask(other, fan)
            # Built after the first model, the new event is known only to the second one,
            # which this hub loaded from Redis (it builds nothing while a model exists).
            assert newest not in _ids(before) and newest in _ids(after)[:3]
            assert await _loaded_already(other, second.version)
        finally:
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)


async def test_the_leader_rebuilds_after_enough_bookings_and_not_before(
    settings: Settings, http: httpx.AsyncClient, boss: Account
) -> None:
    venue = (await make_venue(http, boss))["id"]
    event_id = await _event(http, boss, venue, "due", ["due"])
    async with open_hub(_private(settings, "due").replace(reco_rebuild_bookings=2)) as hub:
        assert await reco.rebuild_due(hub)  # no model yet
        await reco.rebuild(hub, by=reco.Builder.LEADER, replace=True)
        assert not await reco.rebuild_due(hub)
        await _book(http, await register(http, "One"), event_id)
        assert not await reco.rebuild_due(hub)
        await _book(http, await register(http, "Two"), event_id)
        assert await reco.rebuild_due(hub)


async def test_a_new_event_is_recommended_at_once_and_makes_a_rebuild_due(
    settings: Settings, http: httpx.AsyncClient, boss: Account
) -> None:
    venue = (await make_venue(http, boss))["id"]
    async with open_hub(_private(settings, "newcomer")) as hub:
        # A model that knows no event (other tests' events would otherwise fill any limit
        # with ranked ones, and newcomers come after those).
        built = dt.datetime.now(dt.UTC)
        meta = reco.Meta(version="empty", built_at=built.timestamp(), by=reco.Builder.LEADER)
        await reco._publish(hub, meta, reco.encode_model(build_model([], [], built)), replace=True)
        assert not await reco.rebuild_due(hub)
        fan = await register(http, "Newcomer Fan")
        newest = await _event(http, boss, venue, "newcomer", ["newcomer"], days=0.005)
        assert await reco.rebuild_due(hub)
        # The model does not know it, yet it is offered (after every ranked event) at once.
        answer = await reco.recommend_events(hub, uuid.UUID(fan.id), limit=50)
        ours = [item for item in answer if item["event_id"] == newest]
        assert ours == [
            {
                "event_id": newest,
                "score": 0.0,
                "method": "popular",
                "reasons": [reco.NEWCOMER_REASON],
            }
        ]
        assert all(item["score"] == 0.0 for item in answer[answer.index(ours[0]) :])
        # Once booked it is no longer offered to the one who booked it (the booking went
        # through the app's hub, whose Redis prefix differs: retire this hub's answers as
        # its own booking path would).
        await _book(http, fan, newest)
        await reco.forget_answers(hub, uuid.UUID(fan.id))
        again = await reco.recommend_events(hub, uuid.UUID(fan.id), limit=50)
        assert newest not in _ids(again)


def test_a_model_survives_its_bytes() -> None:
    now = dt.datetime(2026, 3, 2, 12, tzinfo=dt.UTC)
    rng = np.random.default_rng(3)
    events = [
        EventInfo(
            event_id=f"e{n:03d}",
            name=f"Event {n}",
            category=("jazz", "rock", "folk")[n % 3],
            keywords=(f"k{n % 7}", f"w{n % 5}"),
            venue_id=f"v{n % 4}",
            venue_name=f"Venue {n % 4}",
            price_cents=int(rng.integers(1_000, 20_000)),
            starts_at=now + dt.timedelta(days=int(n) - 20, hours=int(n % 5)),
            cancelled=n % 17 == 0,
            sold_out=n % 19 == 0,
        )
        for n in range(60)
    ]
    bookings = [
        Booking(f"u{u}", f"e{int(e):03d}", now - dt.timedelta(days=int(d)))
        for u in range(80)
        for e, d in zip(rng.integers(0, 60, 6), rng.integers(0, 30, 6), strict=True)
    ]
    model = build_model(bookings, events, now)
    again = reco.decode_model(reco.encode_model(model))
    for history in ([], ["e001"], ["e002", "e005", "e005"], [f"e{n:03d}" for n in range(20)]):
        assert recommend(again, history, now=now, limit=20) == recommend(
            model, history, now=now, limit=20
        )
    assert again.index == model.index and again.built_at == model.built_at
    assert (again.neighbours != model.neighbours).nnz == 0
