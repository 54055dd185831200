"""The analytics routes on a constructed history with known answers: exact counts per bucket
(UTC edges of days, weeks and months), filters, conversion from known holds, growth, revenue
and cancellations in their own buckets, CSV rows equal to the JSON buckets; a cohort with
known retention, lead times with known percentiles, the booking clock; trending events; the
dashboard's figures; the cache; and who may ask (401 before 403 before 422)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from hub.context import Hub
from hub.settings import Settings
from tests.conftest import Account, register
from tests.hub.analytics_history import History, admin_of, at, isolated_app
from tests.servers import TestServers

BASE = "/api/v1/advanced/analytics"
ROUTES = ("trends", "user-behavior", "predictions", "dashboard")


@pytest.fixture(scope="module")
async def own_app(servers: TestServers, settings: Settings) -> AsyncIterator[Any]:
    async with isolated_app(servers, settings) as app:
        yield app


@pytest.fixture
async def http(own_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=own_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://analytics") as client:
        yield client


@pytest.fixture
async def boss(http: httpx.AsyncClient, own_app: Any) -> Account:
    return await admin_of(http, own_app.state.hub)


@pytest.fixture
async def history(own_app: Any) -> History:
    hub: Hub = own_app.state.hub
    made = History(hub)
    await made.clear()
    return made


async def _get(http: httpx.AsyncClient, who: Account, route: str, **params: Any) -> dict[str, Any]:
    response = await http.get(f"{BASE}/{route}", params=params, headers=who.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    return body


def _fields(response: httpx.Response) -> set[str]:
    return {error["field"] for error in response.json()["errors"]}


# --- who may ask --------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
async def test_anonymous_is_401_and_a_user_403_before_the_query_is_read(
    http: httpx.AsyncClient, route: str
) -> None:
    bad = {"period": "yearly", "fresh": "perhaps"}
    anonymous = await http.get(f"{BASE}/{route}", params=bad)
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "unauthorized"
    user = await register(http)
    refused = await http.get(f"{BASE}/{route}", params=bad, headers=user.headers)
    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"


async def test_bad_queries_are_422_naming_the_field(
    http: httpx.AsyncClient, boss: Account, history: History
) -> None:
    cases = [
        ({"period": "yearly"}, "period"),
        ({"format": "xml"}, "format"),
        ({"event_id": "not-a-uuid"}, "event_id"),
        ({"date_from": "yesterday"}, "date_from"),
        ({"date_from": "2025-03-01T10:00:00"}, "date_from"),  # no time zone
        ({"date_to": "0900-01-01"}, "date_to"),
        ({"date_from": "2025-03-10", "date_to": "2025-03-09"}, "date_to"),
        ({"date_from": "2025-03-10T05:00:00Z", "date_to": "2025-03-10T05:00:00Z"}, "date_to"),
        ({"date_from": "2999-01-01"}, "date_from"),  # after now, date_to's default
        # 2020-01-01 to 2023-01-01 hourly is 26,304 buckets, over the 20,000 bound.
        ({"period": "hourly", "date_from": "2020-01-01", "date_to": "2022-12-31"}, "date_from"),
        ({"fresh": "perhaps"}, "fresh"),
    ]
    for params, field in cases:
        response = await http.get(f"{BASE}/trends", params=params, headers=boss.headers)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["code"] == "validation_error"
        assert field in _fields(response), (params, response.json())
    # Two years hourly is within the bound.
    within = await http.get(
        f"{BASE}/trends",
        params={"period": "hourly", "date_from": "2023-01-01", "date_to": "2024-12-31"},
        headers=boss.headers,
    )
    assert within.status_code == 200, within.text
    assert len(within.json()["buckets"]) == 731 * 24


async def test_an_unknown_event_is_404(
    http: httpx.AsyncClient, boss: Account, history: History
) -> None:
    response = await http.get(
        f"{BASE}/trends", params={"event_id": str(uuid.uuid4())}, headers=boss.headers
    )
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


# --- trends -------------------------------------------------------------------------------------


async def _march(history: History) -> dict[str, uuid.UUID]:
    """2025-03-09 is a Sunday, 03-10 a Monday. Jazz: two bookings on Sunday (one at
    23:59:59Z, one at 01:30 on Monday in UTC+2, which is Sunday 23:30Z), two on Monday (one
    cancelled on Tuesday), one on each side of the January/February edge; Theatre: one on
    Monday. Holds: 3 on Sunday (two in its last hour), 2 on Tuesday."""
    jazz = await history.event(category="Jazz", starts_at=at("2025-04-01T20:00:00Z"))
    theatre = await history.event(category="Theatre", starts_at=at("2025-04-02T20:00:00Z"))
    ada = await history.user("Ada")
    await history.booking(jazz, ada, at("2025-03-09T23:59:59Z"), tickets=2, total_cents=5000)
    await history.booking(jazz, ada, at("2025-03-10T01:30:00+02:00"), total_cents=1000)
    await history.booking(jazz, ada, at("2025-03-10T00:00:00Z"), total_cents=1234)
    await history.booking(
        jazz,
        ada,
        at("2025-03-10T12:00:00Z"),
        total_cents=1000,
        cancelled=at("2025-03-11T08:00:00Z"),
        refund_cents=1000,
    )
    await history.booking(theatre, ada, at("2025-03-10T05:00:00Z"), total_cents=1000)
    await history.booking(jazz, ada, at("2025-01-31T23:59:59Z"), total_cents=700)
    await history.booking(jazz, ada, at("2025-02-01T00:00:00Z"), total_cents=800)
    for placed in ("2025-03-09T10:00:00Z", "2025-03-09T23:00:00Z", "2025-03-09T23:59:00Z"):
        await history.hold(jazz, ada, at(placed), outcome="booked")
    for placed in ("2025-03-11T09:00:00Z", "2025-03-11T10:00:00Z"):
        await history.hold(theatre, ada, at(placed), outcome="expired")
    await history.rebuild()
    return {"jazz": jazz, "theatre": theatre}


def _rows(body: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (
            b["start"],
            b["bookings"],
            b["tickets"],
            b["revenue"],
            b["cancellations"],
            b["conversion"],
            b["growth"],
        )
        for b in body["buckets"]
    ]


async def test_daily_buckets_count_each_booking_in_its_utc_day(
    http: httpx.AsyncClient, boss: Account, history: History
) -> None:
    await _march(history)
    body = await _get(
        http, boss, "trends", period="daily", date_from="2025-03-08", date_to="2025-03-11"
    )
    assert body["period"] == "daily"
    assert _rows(body) == [
        ("2025-03-08T00:00:00.000Z", 0, 0, 0.0, 0, None, None),
        # 23:59:59Z and 01:30+02:00 are both Sunday in UTC; 3 holds: conversion 2/3.
        ("2025-03-09T00:00:00.000Z", 2, 3, 60.0, 0, 2 / 3, None),
        # The cancelled booking's revenue stays in the day it was made; no holds: null.
        ("2025-03-10T00:00:00.000Z", 3, 3, 32.34, 0, None, 0.5),
        # Its cancellation counts on Tuesday; 2 holds, no bookings: conversion 0.
        ("2025-03-11T00:00:00.000Z", 0, 0, 0.0, 1, 0.0, -1.0),
    ]
    # Saturday to Tuesday: each of those weekdays once, March once.
    assert body["seasonality"]["weekday"] == [3.0, 0.0, None, None, None, 0.0, 2.0]
    assert body["seasonality"]["month"] == [None, None, 5.0] + [None] * 9


async def test_hourly_weekly_and_monthly_edges(
    http: httpx.AsyncClient, boss: Account, history: History
) -> None:
    await _march(history)
    hourly = await _get(
        http,
        boss,
        "trends",
        period="hourly",
        date_from="2025-03-09T22:00:00Z",
        date_to="2025-03-10T01:00:00Z",
    )
    assert _rows(hourly) == [
        ("2025-03-09T22:00:00.000Z", 0, 0, 0.0, 0, None, None),
        ("2025-03-09T23:00:00.000Z", 2, 3, 60.0, 0, 1.0, None),
        ("2025-03-10T00:00:00.000Z", 1, 1, 12.34, 0, None, -0.5),
    ]
    # Sunday 23:59:59Z closes the week of Monday 03-03; Monday 00:00Z opens the next.
    weekly = await _get(
        http, boss, "trends", period="weekly", date_from="2025-03-03", date_to="2025-03-16"
    )
    assert [(b["start"], b["bookings"], b["cancellations"]) for b in weekly["buckets"]] == [
        ("2025-03-03T00:00:00.000Z", 2, 0),
        ("2025-03-10T00:00:00.000Z", 3, 1),
    ]
    monthly = await _get(
        http, boss, "trends", period="monthly", date_from="2025-01-01", date_to="2025-03-31"
    )
    assert [(b["start"], b["bookings"], b["revenue"]) for b in monthly["buckets"]] == [
        ("2025-01-01T00:00:00.000Z", 1, 7.0),
        ("2025-02-01T00:00:00.000Z", 1, 8.0),
        ("2025-03-01T00:00:00.000Z", 5, 92.34),
    ]
    assert [b["growth"] for b in monthly["buckets"]] == [None, 0.0, 4.0]


async def test_event_and_category_filters(
    http: httpx.AsyncClient, boss: Account, history: History
) -> None:
    ids = await _march(history)
    day = {"period": "daily", "date_from": "2025-03-10", "date_to": "2025-03-10"}
    jazz = await _get(http, boss, "trends", event_id=str(ids["jazz"]), **day)
    assert [(b["bookings"], b["revenue"]) for b in jazz["buckets"]] == [(2, 22.34)]
    theatre = await _get(http, boss, "trends", category="THEATRE", **day)
    assert [(b["bookings"], b["revenue"]) for b in theatre["buckets"]] == [(1, 10.0)]
    # An event outside the category: nothing.
    neither = await _get(http, boss, "trends", category="jazz", event_id=str(ids["theatre"]), **day)
    assert [b["bookings"] for b in neither["buckets"]] == [0]
    unknown = await _get(http, boss, "trends", category="opera", **day)
    assert [b["bookings"] for b in unknown["buckets"]] == [0]


async def test_csv_rows_are_the_json_buckets(
    http: httpx.AsyncClient, boss: Account, history: History
) -> None:
    await _march(history)
    params = {"period": "daily", "date_from": "2025-03-08", "date_to": "2025-03-12"}
    body = await _get(http, boss, "trends", **params)
    response = await http.get(
        f"{BASE}/trends", params={**params, "format": "csv"}, headers=boss.headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    text = response.text
    assert text.startswith("start,bookings,tickets,revenue,cancellations,conversion,growth\r\n")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(body["buckets"]) == 5
    for row, bucket in zip(rows, body["buckets"], strict=True):
        assert row["start"] == bucket["start"]
        for name in ("bookings", "tickets", "cancellations"):
            assert int(row[name]) == bucket[name]
        assert row["revenue"] == f"{bucket['revenue']:.2f}"
        for name in ("conversion", "growth"):
            assert (None if row[name] == "" else float(row[name])) == bucket[name]
    assert "2025-03-10T00:00:00.000Z,3,3,32.34,0,,0.5\r\n" in text


async def test_default_ranges_end_now_in_whole_buckets(
    http: httpx.AsyncClient, boss: Account, history: History
) -> None:
    event = await history.event()
    now = dt.datetime.now(dt.UTC)
    # A booking an hour ago, rolled up: the default range ends with the current bucket.
    await history.booking(event, await history.user(), now - dt.timedelta(hours=1))
    await history.rebuild()
    daily = await _get(http, boss, "trends")
    assert daily["period"] == "daily" and len(daily["buckets"]) == 31
    today = now.strftime("%Y-%m-%dT00:00:00.000Z")
    last_hour = (now - dt.timedelta(hours=1)).strftime("%Y-%m-%dT00:00:00.000Z")
    assert daily["buckets"][-1]["start"] == today
    assert sum(b["bookings"] for b in daily["buckets"]) == 1
    assert any(b["start"] == last_hour and b["bookings"] == 1 for b in daily["buckets"])
    weekly = await _get(http, boss, "trends", period="weekly")
    assert len(weekly["buckets"]) == 53
    first = dt.datetime.fromisoformat(weekly["buckets"][0]["start"].replace("Z", "+00:00"))
    assert first.weekday() == 0 and first.time() == dt.time()
    monthly = await _get(http, boss, "trends", period="monthly")
    assert len(monthly["buckets"]) == 13
    assert all(b["start"][8:] == "01T00:00:00.000Z" for b in monthly["buckets"])
    hourly = await _get(http, boss, "trends", period="hourly")
    assert len(hourly["buckets"]) == 30 * 24 + 1


# --- user behaviour -----------------------------------------------------------------------------


def _months_since(year: int, month: int, now: dt.datetime) -> int:
    return (now.year - year) * 12 + now.month - month


async def test_cohorts_repeat_rate_clock_and_cancellations(
    http: httpx.AsyncClient, boss: Account, history: History
) -> None:
    event = await history.event(starts_at=at("2025-06-01T20:00:00Z"))
    a, b, c, d, e = await history.users(5)
    made = [
        # January's cohort: a, b, c (its last second), d.
        (a, "2025-01-05T10:15:00Z"),
        (b, "2025-01-20T14:00:00Z"),
        (c, "2025-01-31T23:59:59Z"),
        (d, "2025-01-10T08:00:00Z"),
        # February's: e, at its first instant.
        (e, "2025-02-01T00:00:00Z"),
        # Back: a twice in February and again in March, b in March, c in April; e in March.
        (a, "2025-02-10T10:00:00Z"),
        (a, "2025-02-11T20:30:00Z"),
        (a, "2025-03-03T10:45:00Z"),
        (b, "2025-03-15T14:10:00Z"),
        (c, "2025-04-02T20:00:00Z"),
        (e, "2025-03-01T10:00:00Z"),
    ]
    for who, when in made:
        await history.booking(event, who, at(when))
    await history.booking(
        event, d, at("2025-04-20T10:00:00Z"), cancelled=at("2025-04-21T10:00:00Z")
    )
    await history.rebuild()
    now = dt.datetime.now(dt.UTC)
    body = await _get(http, boss, "user-behavior", fresh="true")

    january, february = body["cohorts"]
    assert january["month"] == "2025-01-01" and january["size"] == 4
    # Feb: a; Mar: a, b; Apr: c and d (d's booking counts although cancelled later).
    assert january["retention"][:5] == [1.0, 0.25, 0.5, 0.5, 0.0]
    assert len(january["retention"]) == _months_since(2025, 1, now) + 1
    assert set(january["retention"][4:]) == {0.0}
    assert february["month"] == "2025-02-01" and february["size"] == 1
    assert february["retention"][:3] == [1.0, 1.0, 0.0]
    assert len(february["retention"]) == _months_since(2025, 2, now) + 1
    # a: 4, b: 2, c: 2, d: 2, e: 2 bookings: all five booked twice or more.
    assert body["repeat_rate"] == 1.0
    stamps = [at(when) for _, when in made] + [at("2025-04-20T10:00:00Z")]
    hours = Counter(s.astimezone(dt.UTC).hour for s in stamps)
    weekdays = Counter(s.astimezone(dt.UTC).weekday() for s in stamps)
    assert body["booking_hours"] == [hours[h] for h in range(24)]
    assert body["booking_weekdays"] == [weekdays[w] for w in range(7)]
    assert body["cancellation_rate"] == pytest.approx(1 / 12)


async def test_lead_time_percentiles(
    http: httpx.AsyncClient, boss: Account, history: History
) -> None:
    starts = at("2025-06-01T20:00:00Z")
    event = await history.event(starts_at=starts)
    buyer = await history.user()
    # Lead times of 0 to 9 whole days (each an hour more), and one booked after the start
    # (counted as 0): 0, 0, 1, ..., 9.
    for days in range(10):
        await history.booking(event, buyer, starts - dt.timedelta(days=days, hours=1))
    await history.booking(event, buyer, starts + dt.timedelta(hours=2))
    await history.rebuild()
    body = await _get(http, boss, "user-behavior", fresh="true")
    # Of 11: the 2nd (10 %), the 6th (50 %) and the 10th (90 %) smallest.
    assert body["lead_time_days"] == {"p10": 0.0, "p50": 4.0, "p90": 8.0}


async def test_no_history_gives_empty_figures(
    http: httpx.AsyncClient, boss: Account, history: History
) -> None:
    body = await _get(http, boss, "user-behavior", fresh="true")
    assert body == {
        "cohorts": [],
        "repeat_rate": None,
        "booking_hours": [0] * 24,
        "booking_weekdays": [0] * 7,
        "lead_time_days": {"p10": None, "p50": None, "p90": None},
        "cancellation_rate": None,
    }
    predicted = await _get(http, boss, "predictions", fresh="true")
    assert predicted["next_month"] == {
        "bookings": 0,
        "revenue": 0.0,
        "lower": 0,
        "upper": 0,
        "level": 0.8,
    }
    assert predicted["by_category"] == [] and predicted["trending"] == []
    assert predicted["backtest"]["folds"] == 0
    dashboard = await _get(http, boss, "dashboard", fresh="true")
    assert dashboard["conversion_rate"] is None and dashboard["top_events"] == []
    assert dashboard["revenue"] == {"today": 0.0, "month": 0.0, "total": 0.0}
    assert dashboard["seasonal_trend"] == {"weekday": [None] * 7, "month": [None] * 12}


# --- predictions --------------------------------------------------------------------------------


async def test_trending_events_by_velocity_against_their_normal(
    http: httpx.AsyncClient, boss: Account, history: History
) -> None:
    now = dt.datetime.now(dt.UTC)
    steady = await history.event(name="Steady")
    sudden = await history.event(name="Sudden")
    quiet = await history.event(name="Quiet")
    buyer = await history.user()
    hours = dt.timedelta(hours=1)
    # Steady: 10 in the last day, 14 in the 14 days before: 10 a day against 1 a day.
    for k in range(1, 11):
        await history.booking(steady, buyer, now - k * hours)
    for k in range(14):
        await history.booking(steady, buyer, now - dt.timedelta(days=2) - 20 * k * hours)
    # Sudden: 4 in the last day and none before; quiet: 2 in the last day (too few).
    for k in range(1, 5):
        await history.booking(sudden, buyer, now - 2 * k * hours)
    for k in range(1, 3):
        await history.booking(quiet, buyer, now - 3 * k * hours)
    await history.rebuild()
    body = await _get(http, boss, "predictions", fresh="true")
    assert body["trending"] == [
        # No past sales: normal counted as one booking in 14 days, so 4 ÷ (1/14).
        {"event_id": str(sudden), "velocity": 4.0, "normal": 0.0, "ratio": pytest.approx(56.0)},
        {"event_id": str(steady), "velocity": 10.0, "normal": 1.0, "ratio": 10.0},
    ]
    assert body["next_month"]["level"] == 0.8
    assert {c["category"] for c in body["by_category"]} == {"concert"}


# --- dashboard ----------------------------------------------------------------------------------


async def test_dashboard_figures(
    http: httpx.AsyncClient, boss: Account, history: History, own_app: Any
) -> None:
    now = dt.datetime.now(dt.UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    alpha = await history.event(name="Alpha", category="concert")
    beta = await history.event(name="Beta", category="comedy")
    gamma = await history.event(name="Gamma", category="concert")
    old1, old2, fan = await history.users(3)
    days = dt.timedelta(days=1)
    # Earlier today, between midnight and now (the rollups reach a second before now).
    earlier_today = midnight + (now - midnight) / 2
    made = [
        (alpha, fan, now - 2 * days, 1000, 1),
        (alpha, fan, now - 3 * days, 1000, 1),
        (alpha, fan, now - 5 * days, 1000, 1),
        (beta, fan, now - 1 * days, 2000, 1),
        (beta, fan, earlier_today, 2000, 3),
        # Two old customers: one came back the next month, one did not (only much later,
        # outside the last 30 days).
        (gamma, old2, now - 40 * days, 10000, 1),
        (gamma, old1, at("2025-01-10T19:00:00Z"), 500, 1),
        (gamma, old1, at("2025-02-10T19:00:00Z"), 500, 1),
        (gamma, old2, at("2025-01-15T19:00:00Z"), 500, 1),
    ]
    for event, who, when, cents, tickets in made:
        await history.booking(event, who, when, total_cents=cents, tickets=tickets)
    # Holds: 10 in the last 30 days, 3 before; and the live ones below.
    for k in range(10):
        await history.hold(alpha, fan, now - dt.timedelta(days=k + 1), outcome="booked")
    for k in range(3):
        await history.hold(gamma, fan, now - dt.timedelta(days=40 + k), outcome="expired")
    # Live: two holds now, one released, one "held" placed longer ago than a hold can live.
    lifetime = own_app.state.hub.settings.hold_max_lifetime_seconds
    for _ in range(2):
        await history.hold(beta, fan, now - dt.timedelta(minutes=1))
    await history.hold(beta, fan, now - dt.timedelta(minutes=2), outcome="released", ended=now)
    await history.hold(beta, fan, now - dt.timedelta(seconds=lifetime + 60))
    await history.rebuild()

    body = await _get(http, boss, "dashboard", fresh="true")
    recent_holds = 10 + 4  # the live ones were placed in the window too
    assert body["conversion_rate"] == pytest.approx(5 / recent_holds)
    assert body["retention_rate"] == 0.5
    hours = Counter(when.astimezone(dt.UTC).hour for _, _, when, _, _ in made)
    ranked = sorted(hours, key=lambda h: (-hours[h], h))[:3]
    assert body["peak_hours"] == ranked
    assert [(t["name"], t["bookings"], t["revenue"]) for t in body["top_events"]] == [
        ("Alpha", 3, 30.0),
        ("Beta", 2, 40.0),
    ]
    assert body["top_events"][0]["event_id"] == str(alpha)
    assert body["top_events"][0]["category"] == "concert"
    month_start = midnight.replace(day=1)
    in_month = sum(cents for _, _, when, cents, _ in made if when >= month_start)
    assert body["revenue"] == {
        "today": 20.0,
        "month": in_month / 100,
        "total": sum(cents for *_, cents, _ in made) / 100,
    }
    assert body["live"] == {"holds_active": 2, "sold_today": 3}
    assert len(body["seasonal_trend"]["weekday"]) == 7
    assert len(body["seasonal_trend"]["month"]) == 12
    # Every weekday and month of two years of history is touched: none is null.
    assert None not in body["seasonal_trend"]["weekday"]
    assert None not in body["seasonal_trend"]["month"]


# --- the cache ----------------------------------------------------------------------------------


async def test_answers_are_cached_until_fresh_is_asked(
    http: httpx.AsyncClient, boss: Account, history: History
) -> None:
    event = await history.event()
    buyer = await history.user()
    await history.booking(event, buyer, at("2025-05-05T12:00:00Z"))
    await history.rebuild()
    params = {"event_id": str(event), "date_from": "2025-05-05", "date_to": "2025-05-05"}

    async def booked(**extra: Any) -> int:
        body = await _get(http, boss, "trends", **params, **extra)
        return int(body["buckets"][0]["bookings"])

    assert await booked() == 1
    await history.booking(event, buyer, at("2025-05-05T13:00:00Z"))
    await history.rebuild()
    # Within the cache time the same answer comes back, however the data changed; the same
    # range asked as instants is the same entry.
    assert await booked() == 1
    same_range = {"date_from": "2025-05-05T00:00:00Z", "date_to": "2025-05-06T00:00:00+00:00"}
    body = await _get(http, boss, "trends", **{**params, **same_range})
    assert body["buckets"][0]["bookings"] == 1
    assert await booked(fresh="true") == 2
    # The fresh answer replaced the cached one.
    assert await booked() == 2

    before = await _get(http, boss, "dashboard")
    await history.hold(event, buyer, dt.datetime.now(dt.UTC))
    assert (await _get(http, boss, "dashboard"))["live"] == before["live"]
    after = await _get(http, boss, "dashboard", fresh="true")
    assert after["live"]["holds_active"] == before["live"]["holds_active"] + 1
