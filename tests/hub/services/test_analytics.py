"""The analytics use cases: ranges and their bound agree with the engine's bucketing; a
booking made, a hold placed and a cancellation through the real flow reach the trends after
an incremental roll-up; predictions are the engine's forecast of the history's daily series;
an answer is computed even with Redis down."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import httpx
import numpy as np
import pytest

from engines import analytics as engine
from engines import forecast
from engines.analytics import Period
from hub import jsonenc
from hub.context import Hub
from hub.db import analytics as analytics_db
from hub.errors import ValidationError
from hub.services import analytics, rollups
from hub.services.analytics import TrendsQuery
from hub.settings import Settings
from hub.store import Store
from tests.conftest import register
from tests.factories import make_event
from tests.hub.analytics_history import History, admin_of, isolated_app
from tests.servers import TestServers
from tests.waiting import eventually

NOW = dt.datetime(2026, 12, 4, 17, 42, 10, tzinfo=dt.UTC)  # a Friday


@pytest.fixture(scope="module")
async def own_app(servers: TestServers, settings: Settings) -> AsyncIterator[Any]:
    async with isolated_app(servers, settings) as app:
        yield app


@pytest.fixture
async def hub(own_app: Any) -> Hub:
    found: Hub = own_app.state.hub
    return found


@pytest.fixture
async def history(hub: Hub) -> History:
    made = History(hub)
    await made.clear()
    return made


def _utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


# --- ranges -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "start", "buckets"),
    [
        (Period.HOURLY, "2026-11-04T17:00", 721),
        (Period.DAILY, "2026-11-04T00:00", 31),
        (Period.WEEKLY, "2025-12-01T00:00", 53),  # the Monday 52 weeks before this week's
        (Period.MONTHLY, "2025-12-01T00:00", 13),
    ],
)
def test_default_ranges_end_with_the_current_bucket_and_start_whole(
    period: Period, start: str, buckets: int
) -> None:
    found = analytics.trend_range(TrendsQuery(period=period), NOW)
    assert found == (_utc(start), _utc("2026-12-04T18:00"))
    assert analytics.bucket_count(period, *found) == buckets
    assert engine.trends(_empty(), period, *found).start.size == buckets


def test_given_times_are_widened_to_whole_hours_and_dates_to_whole_days() -> None:
    query = TrendsQuery(
        period=Period.HOURLY,
        date_from=dt.datetime(2025, 3, 9, 22, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
        date_to=dt.date(2025, 3, 11),
    )
    assert analytics.trend_range(query, NOW) == (_utc("2025-03-10T03:00"), _utc("2025-03-12"))
    # Only date_to: the default window back from it.
    only_end = TrendsQuery(period=Period.DAILY, date_to=dt.date(2025, 3, 11))
    assert analytics.trend_range(only_end, NOW) == (_utc("2025-02-09"), _utc("2025-03-12"))


@pytest.mark.parametrize("period", list(Period))
@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2025-03-09T23:00", "2025-03-10T01:00"),
        ("2025-01-31T05:00", "2025-03-01T00:00"),
        ("2024-02-26T00:00", "2025-03-03T00:00"),  # Monday to Monday across a leap day
        ("2023-12-31T23:00", "2026-01-01T01:00"),
    ],
)
def test_bucket_count_is_the_engines(period: Period, start: str, end: str) -> None:
    # The bound is enforced on this count, so it must be the count the engine makes.
    expected = engine.trends(_empty(), period, _utc(start), _utc(end)).start.size
    assert analytics.bucket_count(period, _utc(start), _utc(end)) == expected


def test_the_bucket_bound_and_an_empty_range_name_their_field() -> None:
    too_many = TrendsQuery(
        period=Period.HOURLY, date_from=dt.date(2020, 1, 1), date_to=dt.date(2022, 12, 31)
    )
    with pytest.raises(ValidationError) as raised:
        analytics.trend_range(too_many, NOW)
    assert raised.value.extra["errors"][0]["field"] == "date_from"
    at_bound = TrendsQuery(
        period=Period.HOURLY,
        date_from=_utc("2024-01-01"),
        date_to=_utc("2024-01-01") + dt.timedelta(hours=analytics.MAX_BUCKETS),
    )
    assert analytics.bucket_count(Period.HOURLY, *analytics.trend_range(at_bound, NOW)) == (
        analytics.MAX_BUCKETS
    )
    backwards = TrendsQuery(date_from=dt.date(2025, 3, 10), date_to=_utc("2025-03-09T12:00"))
    with pytest.raises(ValidationError) as raised:
        analytics.trend_range(backwards, NOW)
    assert raised.value.extra["errors"][0]["field"] == "date_to"


def _empty() -> engine.HourlyRollup:
    none = np.zeros(0, dtype=np.int64)
    return engine.HourlyRollup(none, none, none, none, none, none)


# --- through the real flow ------------------------------------------------------------------------


async def test_a_booking_hold_and_cancellation_reach_the_trends_after_a_roll_up(
    own_app: Any, hub: Hub, history: History
) -> None:
    transport = httpx.ASGITransport(app=own_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://flow") as client:
        admin = await admin_of(client, hub)
        event = await make_event(client, admin)
        buyer = await register(client)
        held = await client.post(
            f"/api/v1/events/{event['id']}/holds", json={"quantity": 2}, headers=buyer.headers
        )
        assert held.status_code == 201, held.text
        booked = await client.post(
            "/api/v1/bookings", json={"hold_id": held.json()["hold_id"]}, headers=buyer.headers
        )
        assert booked.status_code == 201, booked.text
        booking = booked.json()
        cancelled = await client.post(
            f"/api/v1/bookings/{booking['id']}/cancel", headers=buyer.headers
        )
        assert cancelled.status_code == 200, cancelled.text
    await hub.hold_log.flush()
    today = dt.datetime.now(dt.UTC).date()
    query = TrendsQuery(event_id=booking["event_id"], date_from=today, date_to=today)
    expected = {
        "start": f"{today.isoformat()}T00:00:00.000Z",
        "bookings": 1,
        "tickets": 2,
        "revenue": float(booking["total"]),
        "cancellations": 1,
        "conversion": 1.0,
        "growth": None,
    }
    seen: list[Any] = []

    async def counted() -> bool:
        # Each step counts what was stamped up to a second ago (hub.db.rollups).
        await rollups.roll_up(hub)
        answer = await analytics.trends(hub, query, fresh=True)
        seen[:] = jsonenc.loads(answer.body)["buckets"]
        return seen == [expected]

    assert await eventually(counted, within=10.0), seen


# --- the derived tables give the rollups' answers -----------------------------------------------

# The reads as they were over the rollups alone (before migration 006's derived tables).
_ROLLUP_TOTALS = """
SELECT array_agg(extract(epoch FROM hour)::int8 ORDER BY hour) AS hour,
       array_agg(b ORDER BY hour) AS bookings, array_agg(t ORDER BY hour) AS tickets,
       array_agg(r ORDER BY hour) AS revenue_cents, array_agg(c ORDER BY hour) AS cancellations,
       array_agg(h ORDER BY hour) AS holds
  FROM (SELECT hour, sum(bookings)::int8 b, sum(tickets)::int8 t, sum(revenue_cents)::int8 r,
               sum(cancellations)::int8 c, sum(holds)::int8 h
          FROM analytics_hourly GROUP BY hour) x
"""
_ROLLUP_TOP = """
SELECT event_id, sum(bookings)::int8 AS bookings, sum(revenue_cents)::int8 AS revenue_cents
  FROM analytics_hourly WHERE hour >= $1 AND hour < $2
 GROUP BY event_id HAVING sum(bookings) > 0
 ORDER BY 2 DESC, 3 DESC, event_id LIMIT $3
"""
_ROLLUP_WINDOWS = """
SELECT event_id, coalesce(sum(bookings) FILTER (WHERE hour >= $2), 0)::int8 AS recent,
       coalesce(sum(bookings) FILTER (WHERE hour < $2), 0)::int8 AS normal
  FROM analytics_hourly WHERE hour >= $1 AND hour < $3 AND bookings > 0
 GROUP BY event_id ORDER BY event_id
"""
_ROLLUP_CATEGORY_DAYS = """
SELECT min(e.category) AS category, floor(date_part('epoch', h.hour) / 86400)::int8 AS day,
       sum(h.bookings)::int8 AS bookings, sum(h.revenue_cents)::int8 AS revenue_cents
  FROM analytics_hourly h JOIN events e ON e.id = h.event_id
 WHERE h.hour >= $1 AND h.hour < $2
 GROUP BY lower(e.category), 2
"""
_ROLLUP_LEAD = "SELECT lead_days, sum(bookings)::int8 AS n FROM analytics_lead_days GROUP BY 1"


async def test_the_derived_tables_answer_what_the_rollups_answer(
    hub: Hub, history: History
) -> None:
    rng = np.random.default_rng(15)
    now = dt.datetime.now(dt.UTC)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    users = await history.users(6)
    events = [
        await history.event(category="Concert", starts_at=now + dt.timedelta(days=5)),
        await history.event(category="concert", starts_at=now + dt.timedelta(days=9)),
        await history.event(category="Comedy", starts_at=now - dt.timedelta(days=3)),
    ]
    for k in range(40):  # with tickets, some cancelled, over the last 80 days
        made = now - dt.timedelta(seconds=int(rng.integers(60, 80 * 86_400)))
        gone = made + dt.timedelta(hours=int(rng.integers(1, 200))) if k % 4 == 0 else None
        await history.booking(
            events[k % 3],
            users[int(rng.integers(0, 6))],
            made,
            tickets=1 + k % 3,
            total_cents=1000 + 250 * k,
            cancelled=gone if gone is not None and gone < now else None,
            refund_cents=500 if gone is not None and gone < now else None,
        )
    for event in events:  # many more, and holds, in the last 20 days (the windows)
        stamps = [now - dt.timedelta(seconds=int(t)) for t in rng.integers(60, 20 * 86_400, 60)]
        await history.bookings(event, users[int(rng.integers(0, 6))], stamps, total_cents=700)
        for t in rng.integers(60, 20 * 86_400, 30):
            await history.hold(event, users[0], now - dt.timedelta(seconds=int(t)))
    # And at the edges of the ranges read below: their first and last hours, midnights.
    edges = [
        today + dt.timedelta(minutes=10),
        today - dt.timedelta(days=60, hours=5) + dt.timedelta(minutes=1),
        today - dt.timedelta(days=60, hours=1),
        today - dt.timedelta(days=60) + dt.timedelta(minutes=5),
        today - dt.timedelta(days=31, minutes=-1),
        today - dt.timedelta(days=2, minutes=1),
        today - dt.timedelta(days=2, minutes=-1),
    ]
    for event in events:
        await history.bookings(event, users[1], [e for e in edges if e < now])
    await history.rebuild()
    # A category edited after counting: the next step moves the event's days to it.
    await hub.db.execute("UPDATE events SET category = 'Comedy' WHERE id = $1", events[1])
    await rollups.roll_up(hub)

    def columns(rollup: engine.HourlyRollup) -> dict[str, list[int]]:
        names = ("hour", "bookings", "tickets", "revenue_cents", "cancellations", "holds")
        return {n: getattr(rollup, n).tolist() for n in names}

    async with hub.db.connection() as con:
        totals = await con.fetchrow(_ROLLUP_TOTALS)
        assert columns(await analytics_db.hourly(con, None, None)) == {
            k: list(totals[k]) for k in totals.keys()
        }
        # Filtered trends by day or longer: whole days from the days, the ends from the hours.
        starts = [today - dt.timedelta(days=60, hours=5), today - dt.timedelta(days=31)]
        ends = [now.replace(minute=0, second=0, microsecond=0), today - dt.timedelta(days=2)]
        filters: list[dict[str, Any]] = [
            {"event_id": events[0]},
            {"category": "CONCERT"},
            {"category": "comedy"},
            {"event_id": events[2], "category": "Comedy"},
            {"event_id": events[2], "category": "Concert"},
        ]
        for start, end, where in [(a, b, f) for a in starts for b in ends for f in filters]:
            span = await analytics_db.hours_and_days(con, start, end, **where)
            hours = await analytics_db.hourly(con, start, end, **where)
            for period in (Period.DAILY, Period.WEEKLY, Period.MONTHLY):
                got, want = (
                    engine.trends(span, period, start, end),
                    engine.trends(hours, period, start, end),
                )
                for name in ("start", "bookings", "tickets", "revenue_cents", "cancellations"):
                    assert getattr(got, name).tolist() == getattr(want, name).tolist(), name
                assert np.array_equal(got.conversion, want.conversion, equal_nan=True)
                assert got.seasonality == want.seasonality
        # Just under a day: hours only.
        short = await analytics_db.hours_and_days(
            con, ends[0] - dt.timedelta(hours=23), ends[0], event_id=events[0]
        )
        assert columns(short) == columns(
            await analytics_db.hourly(
                con, ends[0] - dt.timedelta(hours=23), ends[0], event_id=events[0]
            )
        )
        # The dashboard's top events and the trending windows.
        recent = now - dt.timedelta(days=30)
        top = await analytics_db.top_events(con, recent, now, 2)
        assert [(r["event_id"], r["bookings"], r["revenue_cents"]) for r in top] == [
            tuple(r) for r in await con.fetch(_ROLLUP_TOP, recent, now, 2)
        ]
        assert len(top) == 2
        for normal_from, recent_from in (
            (now - dt.timedelta(days=15), now - dt.timedelta(days=1)),
            (now - dt.timedelta(hours=20), now - dt.timedelta(hours=3)),
        ):
            windows = await analytics_db.event_windows(con, normal_from, recent_from, now)
            assert list(
                zip(
                    windows.event_ids, windows.recent.tolist(), windows.normal.tolist(), strict=True
                )
            ) == [tuple(r) for r in await con.fetch(_ROLLUP_WINDOWS, normal_from, recent_from, now)]
        # Forecast days per category.
        since = today - dt.timedelta(days=365)
        by_category = await analytics_db.daily_by_category(con, since, today)
        expected: dict[str, dict[int, tuple[int, int]]] = {}
        for r in await con.fetch(_ROLLUP_CATEGORY_DAYS, since, today):
            expected.setdefault(r["category"], {})[r["day"] * 86_400] = (
                r["bookings"],
                r["revenue_cents"],
            )
        assert {
            name: dict(
                zip(
                    r.hour.tolist(),
                    zip(r.bookings.tolist(), r.revenue_cents.tolist(), strict=True),
                    strict=True,
                )
            )
            for name, r in by_category.items()
        } == expected
        assert sorted(by_category) == ["Comedy", "Concert"]
        # User behaviour: the clock, lead days, cohorts and the repeat rate.
        clock = await analytics_db.clock(con)
        hours_clock = engine.booking_clock(totals["hour"], totals["bookings"])
        assert engine.booking_clock(clock.week_hour, clock.bookings) == hours_clock
        lead, lead_bookings = await analytics_db.lead_days(con)
        assert dict(zip(lead.tolist(), lead_bookings.tolist(), strict=True)) == {
            r["lead_days"]: r["n"] for r in await con.fetch(_ROLLUP_LEAD)
        }
        months = await analytics_db.user_months(con)
        cells = await analytics_db.cohort_cells(con)
        assert engine.cohorts_from_counts(cells.first_month, cells.month, cells.users, now) == (
            engine.retention_cohorts(months.user, months.month, now)
        )
        counted, repeat = await analytics_db.user_counts(con)
        assert counted == months.users and repeat / counted == engine.repeat_rate(
            months.user, months.bookings
        )


# --- predictions --------------------------------------------------------------------------------


async def test_predictions_are_the_engines_forecast_of_the_daily_history(
    hub: Hub, history: History
) -> None:
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    days = 120
    first = today - dt.timedelta(days=days)
    # Concert: 2 a day, 5 on Fridays and Saturdays, 15.00 each; comedy: 1 a day, 2 every
    # third day, 8.00 each; all at fixed hours of each day up to yesterday.
    concert = np.array(
        [5 if (first + dt.timedelta(days=d)).weekday() in (4, 5) else 2 for d in range(days)]
    )
    comedy = np.array([2 if d % 3 == 0 else 1 for d in range(days)])
    buyer = await history.user()
    for category, per_day, cents, hour in (
        ("Concert", concert, 1500, 12),
        ("Comedy", comedy, 800, 18),
    ):
        event = await history.event(category=category)
        made = [
            first + dt.timedelta(days=d, hours=hour, minutes=k)
            for d in range(days)
            for k in range(int(per_day[d]))
        ]
        await history.bookings(event, buyer, made, total_cents=cents)
    await history.rebuild()

    answer = jsonenc.loads((await analytics.predictions(hub, fresh=True)).body)

    def series(bookings: np.ndarray, cents: int) -> forecast.DailySeries:
        return forecast.DailySeries(first, bookings.astype(float), bookings * float(cents))

    expected = forecast.predict_next_month(
        forecast.DailySeries(
            first, (concert + comedy).astype(float), concert * 1500.0 + comedy * 800.0
        ),
        {"Concert": series(concert, 1500), "Comedy": series(comedy, 800)},
    )
    outlook = expected.next_month
    assert answer["next_month"] == {
        "bookings": outlook.bookings,
        "revenue": pytest.approx(outlook.revenue_cents / 100),
        "lower": outlook.lower,
        "upper": outlook.upper,
        "level": 0.8,
    }
    assert answer["by_category"] == [
        {
            "category": name,
            "bookings": o.bookings,
            "revenue": pytest.approx(o.revenue_cents / 100),
            "lower": o.lower,
            "upper": o.upper,
        }
        for name, o in sorted(expected.by_category.items(), key=lambda kv: -kv[1].bookings)
    ]
    test = expected.backtest
    assert answer["backtest"] == {
        "model_mape": test.model_mape,
        "baseline": test.baseline.value,
        "baseline_mape": test.baseline_mape,
        "folds": test.folds,
    }
    assert test.folds >= 1
    # Under four months of history: the baseline is the last four weeks' same weekday.
    assert answer["backtest"]["baseline"] == "last_4_weeks"
    # What the patterns will sell in the next 30 days: the model (a trend and the weekday)
    # fits the concerts' weekly pattern, and the comedies' every-third-day one on average.
    ahead = [today + dt.timedelta(days=d) for d in range(30)]
    actual = sum(5 if day.weekday() in (4, 5) else 2 for day in ahead)
    actual += sum(2 if d % 3 == 0 else 1 for d in range(days, days + 30))
    assert abs(answer["next_month"]["bookings"] - actual) <= 0.05 * actual
    assert answer["next_month"]["lower"] <= answer["next_month"]["bookings"]
    assert answer["next_month"]["bookings"] <= answer["next_month"]["upper"]


# --- the cache ------------------------------------------------------------------------------------


async def test_an_answer_is_computed_with_redis_down(hub: Hub, history: History) -> None:
    event = await history.event()
    await history.booking(event, await history.user(), dt.datetime(2025, 5, 5, tzinfo=dt.UTC))
    await history.rebuild()
    dead = Store.connect("redis://127.0.0.1:1/0", prefix=hub.settings.redis_prefix)
    try:
        cut_off = Hub(settings=hub.settings, db=hub.db, store=dead)
        answer = await analytics.user_behaviour(cut_off)
    finally:
        await dead.close()
    body = jsonenc.loads(answer.body)
    assert body["cohorts"][0]["month"] == "2025-05-01" and body["cohorts"][0]["size"] == 1
