"""The admin stream's figures: they move when the system moves (bookings, latency, an event's
fill on the sales board, a waiting room's queue), the window arithmetic, the board's choice
of events (a far-off event that is selling is on it), and a failing source that leaves its
fields out and is logged once, not every second."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections import deque
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from hub import metrics
from hub.channels.admin import AdminFeed, Reading, read_counters, window_figures
from hub.services import admin_stream
from hub.services.admin_stream import SalesBoard, candidates, choose
from loadtest.client import WatchClient
from tests.conftest import Account, register
from tests.factories import make_event
from tests.hub.channels.conftest import WsServer
from tests.waiting import eventually

BUCKETS = len(metrics.LATENCY_BUCKETS) + 1


def _reading(at: float, buckets: list[float], **counters: float) -> Reading:
    base = dict.fromkeys(
        (
            "deliveries",
            "holds",
            "hold_attempts",
            "bookings",
            "booking_attempts",
            "http_requests",
            "http_errors",
            "http_5xx",
            "http_4xx",
        ),
        0.0,
    )
    base.update(counters)
    return Reading(at, base, tuple(buckets), tuple([0.0] * BUCKETS))


def test_rates_are_per_last_second_and_latency_and_errors_over_the_window() -> None:
    zero = [0.0] * BUCKETS
    # 100 requests in the window: 90 at most 5 ms, 10 between 50 and 100 ms; 3 were 5xx.
    cumulative = [0, 0, 90, 90, 90, 90, 100, 100, 100, 100, 100, 100, 100, 100]
    readings = deque(
        [
            _reading(0.0, zero),
            _reading(9.0, [c * 0.5 for c in cumulative], http_requests=50, holds=10),
            _reading(10.0, cumulative, http_requests=100, http_5xx=3, http_4xx=7, holds=30),
        ]
    )
    figures = window_figures(readings)
    assert figures["holds_per_s"] == 20.0
    assert figures["http_requests_per_s"] == 50.0
    assert figures["window_seconds"] == 10.0
    assert figures["error_rate"] == 0.03 and figures["client_error_rate"] == 0.07
    http = figures["latency"]["http"]
    assert http["samples"] == 100
    assert 2.5 < http["p50_ms"] <= 5.0  # inside the (2.5, 5] ms bucket
    assert 50.0 < http["p95_ms"] <= 100.0 and 50.0 < http["p99_ms"] <= 100.0
    assert figures["latency"]["hold"] == {
        "p50_ms": None,
        "p95_ms": None,
        "p99_ms": None,
        "samples": 0,
    }


def test_a_quiet_window_has_no_error_rate_rather_than_zero() -> None:
    zero = [0.0] * BUCKETS
    figures = window_figures(deque([_reading(0.0, zero), _reading(1.0, zero)]))
    assert figures["error_rate"] is None and figures["latency"]["http"]["p99_ms"] is None


def test_the_board_shows_the_events_whose_seats_changed_most_then_the_soonest() -> None:
    a, b, c, d = (uuid.uuid4() for _ in range(4))
    rows = [{"id": a}, {"id": b}, {"id": c}, {"id": d}]  # soonest first
    before = {a: 10, b: 10, c: 10}
    now = {a: 10, b: 15, c: 40, d: 99}  # d was not seen before: unchanged
    assert [r["id"] for r in choose(rows, now, before, 3)] == [c, b, a]
    assert [r["id"] for r in choose(rows, now, {}, 2)] == [a, b]


def test_candidates_are_the_recently_held_events_then_the_soonest() -> None:
    a, b, c, d = (uuid.uuid4() for _ in range(4))
    active = [{"id": d, "status": "scheduled"}, {"id": b, "status": "scheduled"}]
    soonest = [
        {"id": a, "status": "scheduled"},
        {"id": b, "status": "scheduled"},
        {"id": c, "status": "cancelled"},
        {"id": uuid.uuid4(), "status": "scheduled"},
    ]
    assert [r["id"] for r in candidates(active, soonest, 3)] == [d, b, a]
    assert [r["id"] for r in candidates(active, soonest, 1)] == [d]


async def test_a_far_off_event_that_is_selling_joins_the_board(
    ws: WsServer, client: httpx.AsyncClient, admin: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Few candidates, and more events sooner than ours than that: only its sales can
    # bring it onto the board. A short window of activity keeps the suite's other holds
    # out of the count (ours, three holds, outrank any stray event's one or two).
    monkeypatch.setattr(admin_stream, "CANDIDATES", 3)
    monkeypatch.setattr(admin_stream, "ACTIVE_SECONDS", 10.0)
    for _ in range(3):
        await make_event(client, admin, rows=1, seats_per_row=5, starts_in_days=0.2)
    far = await make_event(client, admin, rows=2, seats_per_row=10, starts_in_days=300)
    board = SalesBoard(ws.hub)
    await board.refresh()
    assert far["id"] not in {str(e.id) for e in board.board}

    seats = (await client.get(f"/api/v1/events/{far['id']}/seats")).json()["seats"]
    buyer = await register(client, "Far Buyer")
    for seat in seats[:3]:
        booked = await client.post(
            "/api/v1/bookings",
            json={"event_id": far["id"], "seat_ids": [seat["id"]]},
            headers=buyer.headers,
        )
        assert booked.status_code == 201, booked.text

    async def on_board() -> bool:
        await board.refresh()  # the hold log is written in batches: ask until it is in
        return far["id"] in {str(e.id) for e in board.board}

    assert await eventually(on_board, within=10), "the selling event never reached the board"
    ours = [e for e in (await board())["events"] if e["event_id"] == far["id"]]
    assert ours and ours[0]["sold"] == 3 and ours[0]["total"] == 40


async def test_a_waiting_rooms_queue_is_in_the_stream(
    ws: WsServer, client: httpx.AsyncClient, admin: Account
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=10)
    event_id = event["id"]
    path = f"/api/v1/events/{event_id}/waiting-room"
    opens_at = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    made = await client.put(
        path, json={"opens_at": opens_at, "admit_per_second": 4}, headers=admin.headers
    )
    assert made.status_code == 200, made.text
    for n in range(3):
        waiter = await register(client, f"Waiter {n}")
        joined = await client.post(f"/api/v1/events/{event_id}/queue", headers=waiter.headers)
        assert joined.status_code == 201, joined.text

    conn = await WatchClient.open(ws.url("/ws/admin"), subprotocol="json")
    try:
        await conn.send({"t": "hello", "token": admin.token})
        room: dict[str, Any] | None = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15  # the room feed hears of the room through pub/sub
        while loop.time() < deadline and room is None:
            message = await _metrics(conn)
            found = [r for r in message.get("waiting_rooms", []) if r["event_id"] == event_id]
            if found and found[0]["waiting"] == 3:
                room = found[0]
        assert room == {
            "event_id": event_id,
            "name": event["name"],
            "status": "scheduled",
            "waiting": 3,
            "admitted": 0,
            "admission_rate": 4.0,
        }

        off = await client.delete(path, headers=admin.headers)
        assert off.status_code == 200, off.text
        gone = False
        deadline = loop.time() + 15
        while loop.time() < deadline and not gone:
            message = await _metrics(conn)
            gone = all(r["event_id"] != event_id for r in message["waiting_rooms"])
        assert gone, "a room turned off stayed in the stream"
    finally:
        await conn.close()


async def test_a_failing_source_is_left_out_and_logged_once_per_spell(ws: WsServer) -> None:
    hub = ws.hub
    feed = AdminFeed(hub.channels, hub.store, hub.db)
    healthy = True

    async def flaky() -> dict[str, Any]:
        if not healthy:
            raise ConnectionError("down")
        return {"flaky": {"ok": True}}

    feed.attach("flaky", flaky)
    readings = deque([read_counters(hub.channels), read_counters(hub.channels)])
    with capture_logs() as logs:
        assert (await feed.message(readings))["flaky"] == {"ok": True}
        healthy = False
        for _ in range(3):
            message = await feed.message(readings)
            assert "flaky" not in message and message["redis"]["ok"]
        healthy = True
        assert "flaky" in await feed.message(readings)
    failed = [entry for entry in logs if entry.get("event") == "admin_source_failed"]
    assert [entry["source"] for entry in failed] == ["flaky"]  # one line for three seconds


async def _metrics(conn: WatchClient) -> dict[str, Any]:
    while True:
        message = await asyncio.wait_for(conn.recv(), 5)
        if message["t"] == "metrics":
            return message


async def test_the_stream_moves_with_bookings_latency_and_an_events_fill(
    ws: WsServer, client: httpx.AsyncClient, admin: Account
) -> None:
    event = await make_event(client, admin, rows=2, seats_per_row=10)
    event_id = event["id"]
    seats = (await client.get(f"/api/v1/events/{event_id}/seats")).json()["seats"]
    conn = await WatchClient.open(ws.url("/ws/admin"), subprotocol="json")
    try:
        await conn.send({"t": "hello", "token": admin.token})
        first = await _metrics(conn)
        for key in ("events", "latency", "error_rate", "window_seconds", "hub", "alerts"):
            assert key in first, key
        assert first["breakers"]["payments"]["state"] == "closed"
        assert first["hub"]["processes"] >= 1

        buyers = [await register(client, f"Buyer {n}") for n in range(4)]
        booked = await asyncio.gather(
            *(
                client.post(
                    "/api/v1/bookings",
                    json={
                        "event_id": event_id,
                        "seat_ids": [s["id"] for s in seats[n * 3 : n * 3 + 3]],
                    },
                    headers=buyer.headers,
                )
                for n, buyer in enumerate(buyers)
            )
        )
        assert [r.status_code for r in booked] == [201] * 4, [r.text for r in booked]

        saw_bookings = saw_latency = False
        ours: dict[str, Any] | None = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20  # the board is chosen again every 5 s
        while loop.time() < deadline and not (saw_bookings and saw_latency and ours):
            message = await _metrics(conn)
            saw_bookings |= message["bookings_per_s"] > 0
            saw_latency |= message["latency"]["http"]["samples"] > 0
            found = [e for e in message.get("events", []) if e["event_id"] == event_id]
            if found and found[0]["sold"] == 12:
                ours = found[0]
        assert saw_bookings and saw_latency
        assert ours is not None, "the booked event never reached the sales board"
        assert ours["total"] == 40 and ours["available"] == 28 and ours["held"] == 0
        assert ours["fill"] == pytest.approx(12 / 40)
        assert ours["prices"]["Orchestra"] == pytest.approx(120.0)
        assert ours["name"] == event["name"]
    finally:
        await conn.close()
