"""The pricing service against real PostgreSQL and Redis: a burst of bookings raises an
event's price within one leader tick and every watcher hears of it in both subprotocols; a
quiet tick moves nothing; the velocity state follows events as they come and go."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import numpy as np
import pytest

from engines import pricing as engine
from hub.context import open_hub
from hub.db import pricing as pricing_db
from hub.services import pricing
from hub.settings import Settings
from loadtest.client import WatchClient
from tests.conftest import Account, register
from tests.factories import make_event
from tests.live import WsServer, serve


@pytest.fixture(scope="module")
async def server(settings: Settings) -> AsyncIterator[WsServer]:
    async with serve(settings.replace(ws_max_per_ip=10_000)) as running:
        yield running


@pytest.fixture
async def http(server: WsServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base) as client:
        yield client


@pytest.fixture
async def admin_of(http: httpx.AsyncClient, admin_credentials: tuple[str, str]) -> Account:
    email, password = admin_credentials
    response = await http.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body = response.json()
    return Account(body["user"]["id"], email, password, body["access_token"])


def _sections(quotes: list[dict[str, Any]], event_id: str) -> dict[str, dict[str, Any]]:
    for quote in quotes:
        if str(quote["event_id"]) == event_id:
            return {s["section"]: s for s in quote["sections"]}
    raise AssertionError(f"event {event_id} was not priced")


async def _next_price(client: WatchClient) -> dict[str, Any]:
    while True:
        message = await client.recv()
        if message["t"] == "price":
            return message


async def test_a_burst_raises_the_price_within_one_tick_and_watchers_hear_it(
    server: WsServer, http: httpx.AsyncClient, admin_of: Account
) -> None:
    event = await make_event(http, admin_of, max_tickets_per_user=10)
    event_id = event["id"]
    tracker = pricing.VelocityTracker(interval_seconds=10.0)
    before = _sections(await pricing.run_tick(server.hub, tracker), event_id)
    quiet = _sections(await pricing.run_tick(server.hub, tracker), event_id)
    # With nothing new, a second tick moves nothing.
    assert not any(s["applied"] for s in quiet.values())

    watchers = [
        await WatchClient.open(server.event_url(event_id), subprotocol=proto)
        for proto in ("msgpack", "json")
    ]
    try:
        for watcher in watchers:
            assert (await watcher.next_seat_message())["t"] == "snapshot"
        buyers = [await register(http, f"Buyer {n}") for n in range(3)]
        booked = await asyncio.gather(
            *(
                http.post(
                    "/api/v1/bookings",
                    json={"event_id": event_id, "quantity": 4},
                    headers=buyer.headers,
                )
                for buyer in buyers
            )
        )
        assert [r.status_code for r in booked] == [201] * 3, [r.text for r in booked]

        after = _sections(await pricing.run_tick(server.hub, tracker), event_id)
        for section, quote in after.items():
            assert quote["applied"], quote
            assert quote["new_price"] > before[section]["new_price"]
            assert quote["factors"]["velocity"] > 0.1  # 12 seats where ~0 was normal

        seq = watchers[0].mirror.seq
        for watcher in watchers:
            message = await asyncio.wait_for(_next_price(watcher), 5)
            assert message["prices"] == {s: float(q["new_price"]) for s, q in after.items()}
            # The contract's factors map, and each moved section's own beside it.
            assert set(message["factors"]) == {"demand", "time", "velocity", "waitlist"}
            assert set(message["section_factors"]) == set(after)
            assert message["section_factors"]["Orchestra"] == pytest.approx(
                after["Orchestra"]["factors"]
            )
            assert message["factors"]["velocity"] == pytest.approx(
                sum(q["factors"]["velocity"] for q in after.values()) / len(after)
            )
            assert message["seq"] >= seq
        seen = (await http.get(f"/api/v1/events/{event_id}")).json()["prices"]
        assert seen == {s: float(q["new_price"]) for s, q in after.items()}
    finally:
        for watcher in watchers:
            await watcher.close()


async def test_on_demand_updates_leave_the_leaders_state_alone(
    server: WsServer, http: httpx.AsyncClient, admin_of: Account
) -> None:
    event = await make_event(http, admin_of)
    tracker = pricing.VelocityTracker(interval_seconds=10.0)
    await pricing.run_tick(server.hub, tracker)
    state_before, since = tracker.state, tracker.since
    await pricing.update_event(server.hub, uuid.UUID(event["id"]))
    await pricing.update_all(server.hub)
    assert tracker.state is state_before and tracker.since == since


async def test_the_tracker_follows_events_as_they_come_and_go(
    server: WsServer, http: httpx.AsyncClient, admin_of: Account
) -> None:
    first = await make_event(http, admin_of)
    tracker = pricing.VelocityTracker(interval_seconds=10.0)
    await pricing.run_tick(server.hub, tracker)
    first_id = uuid.UUID(first["id"])
    assert first_id in tracker.order
    slot = tracker.order[first_id]
    rate = tracker.state.normal_rate[slot]

    second = await make_event(http, admin_of)
    cancelled = await http.post(f"/api/v1/events/{first['id']}/cancel", headers=admin_of.headers)
    assert cancelled.status_code == 200, cancelled.text
    await pricing.run_tick(server.hub, tracker)
    assert first_id not in tracker.order
    second_slot = tracker.order[uuid.UUID(second["id"])]
    # 100 seats: the prior sells them out evenly over a month, weighted as the EWMA would.
    prior = pricing.normal_rate(np.array([100]), np.array([0]), interval_seconds=10.0)
    assert tracker.state.normal_rate[second_slot] == pytest.approx(prior[0])
    assert rate == pytest.approx(prior[0])


def test_normal_rate_blends_history_and_prior() -> None:
    window = engine.VELOCITY_WINDOW_SECONDS
    prior = engine.velocity_prior(np.array([1000.0]), interval_seconds=window)
    # No history: a quarter of the prior (the EWMA's memory of it after two half-lives).
    quiet = pricing.normal_rate(np.array([1000]), np.array([0]), interval_seconds=window)
    assert quiet[0] == pytest.approx(0.25 * prior[0])
    # A steady pace of 48 seats in four hours is one seat per 5-minute window.
    steady = pricing.normal_rate(np.array([1000]), np.array([48]), interval_seconds=window)
    assert steady[0] == pytest.approx(0.75 * 1.0 + 0.25 * prior[0])


async def test_batches_read_every_on_sale_section_once_in_order(
    server: WsServer, http: httpx.AsyncClient, admin_of: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = [await make_event(http, admin_of, rows=2, seats_per_row=5) for _ in range(3)]
    window = pricing_db.Window(engine.VELOCITY_WINDOW_SECONDS, pricing.BASELINE_SECONDS)
    whole = await pricing.read_state(server.hub, window)
    monkeypatch.setattr(pricing, "BATCH_EVENTS", 2)  # several keyset batches
    batched = await pricing.read_state(server.hub, window)

    assert batched.event_ids == whole.event_ids == sorted(set(whole.event_ids))
    assert batched.sections == whole.sections
    for column in ("event", "base_cents", "current_cents", "capacity", "sold", "recent"):
        np.testing.assert_array_equal(getattr(batched, column), getattr(whole, column))
    for event in made:
        i = whole.event_ids.index(uuid.UUID(event["id"]))
        rows = np.flatnonzero(whole.event == i)
        assert [whole.sections[r] for r in rows] == ["Orchestra", "Balcony"]  # venue order
        assert whole.base_cents[rows].tolist() == [
            round(float(event["base_prices"][s]) * 100) for s in ("Orchestra", "Balcony")
        ]
        assert whole.capacity[rows].tolist() == [10, 10]
        assert whole.venue_ids[i] == uuid.UUID(event["venue_id"])


async def test_a_price_set_meanwhile_wins_and_only_the_written_change_is_announced(
    server: WsServer, http: httpx.AsyncClient, admin_of: Account
) -> None:
    event = await make_event(http, admin_of)
    event_id = uuid.UUID(event["id"])
    window = pricing_db.Window(engine.VELOCITY_WINDOW_SECONDS, pricing.BASELINE_SECONDS)
    state = await pricing.read_state(server.hub, window, only=[event_id])
    # An admin sets a price after the run read the state and before it writes.
    edited = await http.patch(
        f"/api/v1/events/{event['id']}",
        json={"section_prices": {"Orchestra": 150.0}},
        headers=admin_of.headers,
    )
    assert edited.status_code == 200, edited.text
    watcher = await WatchClient.open(server.event_url(event["id"]), subprotocol="json")
    try:
        assert (await watcher.next_seat_message())["t"] == "snapshot"
        recent, normal = pricing.history_velocity(state)
        quotes = await pricing._reprice(server.hub, state, recent, normal, source="test")
        sections = _sections(quotes, event["id"])
        assert not sections["Orchestra"]["applied"]
        assert sections["Balcony"]["applied"]  # a first run prices an idle event down
        message = await asyncio.wait_for(_next_price(watcher), 5)
        assert set(message["section_factors"]) == {"Balcony"}
        assert message["prices"]["Orchestra"] == 150.0  # the admin's price, not the old one
        assert message["factors"] == pytest.approx(sections["Balcony"]["factors"])
    finally:
        await watcher.close()
    seen = (await http.get(f"/api/v1/events/{event['id']}")).json()["prices"]
    assert seen == {"Orchestra": 150.0, "Balcony": float(sections["Balcony"]["new_price"])}


async def test_prices_an_admin_sets_reach_watchers_as_a_price_message(
    server: WsServer, http: httpx.AsyncClient, admin_of: Account
) -> None:
    event = await make_event(http, admin_of)
    watcher = await WatchClient.open(server.event_url(event["id"]), subprotocol="json")
    try:
        assert (await watcher.next_seat_message())["t"] == "snapshot"
        edited = await http.patch(
            f"/api/v1/events/{event['id']}",
            json={"section_prices": {"Orchestra": 175.0}},
            headers=admin_of.headers,
        )
        assert edited.status_code == 200, edited.text
        message = await asyncio.wait_for(_next_price(watcher), 5)
    finally:
        await watcher.close()
    assert message["prices"]["Orchestra"] == 175.0
    assert message["prices"]["Balcony"] == float(event["prices"]["Balcony"])
    assert message["factors"] == {"demand": 0.0, "time": 0.0, "velocity": 0.0, "waitlist": 0.0}
    assert set(message["section_factors"]) == {"Orchestra"}


async def test_the_leaders_loop_ticks_in_the_offload_child_and_keeps_its_velocity(
    server: WsServer, http: httpx.AsyncClient, admin_of: Account, settings: Settings
) -> None:
    event = await make_event(http, admin_of, max_tickets_per_user=10)
    event_id = event["id"]
    fast = settings.replace(pricing_interval_seconds=0.5, pricing_offload=True)
    async with open_hub(fast) as hub:
        loop = asyncio.create_task(pricing.pricing_loop(hub))
        try:
            await asyncio.sleep(1.3)  # two ticks: the event is tracked and quiet
            quiet = (await http.get(f"/api/v1/events/{event_id}")).json()["prices"]
            buyers = [await register(http, f"Buyer {n}") for n in range(3)]
            for buyer in buyers:
                response = await http.post(
                    "/api/v1/bookings",
                    json={"event_id": event_id, "quantity": 4},
                    headers=buyer.headers,
                )
                assert response.status_code == 201, response.text
            for _ in range(40):
                await asyncio.sleep(0.25)
                prices = (await http.get(f"/api/v1/events/{event_id}")).json()["prices"]
                if all(prices[s] > quiet[s] for s in quiet):
                    break
            else:
                raise AssertionError(f"prices did not rise: {quiet} -> {prices}")
        finally:
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)
