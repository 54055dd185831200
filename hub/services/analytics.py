"""Analytics for admins: trends, user behaviour, predictions and the dashboard.

Each report sums the rollup tables, or the tables derived from them (hours over every event,
days per event, cohort cells, users, lead days over every event), in PostgreSQL
(``hub.db.analytics``; the leader keeps both, ``hub.services.rollups``) and models the sums
with the pure engines
(``engines.analytics``, ``engines.forecast``). The definitions (revenue, conversion, growth,
buckets in UTC, weeks from Monday) are DESIGN.md §4's and ``engines.analytics``'s.

Caching. An answer is kept in Redis as the very bytes sent, for
``analytics_cache_seconds`` (15 minutes by default), under a key made of the report and its
normalised query (explicit times as UTC instants widened to whole hours, a default range as
``default``, the category in lower case, the format), so a repeat costs one ``GET``.
``fresh`` recomputes and stores the new answer. Redis being down costs the cache, never the
answer: the report is computed and sent.

Freshness. The rollups reach the watermark of the leader's last step (one step every
``rollup_interval_seconds``); what was stamped after it shows from the next step. The two
live figures of the dashboard (holds active, tickets sold today) read the source tables.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import structlog

from engines import analytics as engine
from engines import forecast
from engines.analytics import HOUR, HourlyRollup, Period
from engines.money import cents_to_decimal
from hub import jsonenc
from hub.cache import kept_in_redis
from hub.context import Hub
from hub.db import analytics as analytics_db
from hub.db import events as events_db
from hub.errors import NotFound, ValidationError

log = structlog.get_logger(__name__)

#: The most buckets one trends answer may hold: hourly over about 2 years and 3 months.
MAX_BUCKETS = 20_000
#: Default ranges, ending now: hourly and daily the last 30 days, weekly the last 52 weeks
#: and monthly the last 12 months, each from the start of its first bucket.
DEFAULT_DAYS = 30
DEFAULT_WEEKS = 52
DEFAULT_MONTHS = 12
#: Accepted times: from the epoch to the year 9998 (bucket starts must stay printable).
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)
#: The dashboard's recent window (conversion, top events) and its top list's length.
DASHBOARD_DAYS = 30
TOP_EVENTS = 5
#: Forecasts learn from at most the last three years of days (the yearly terms need one;
#: older days cost time and teach little), so predictions do not slow as history grows.
FORECAST_HISTORY_DAYS = 3 * 365
#: Trending: bookings of the last day against the 14 days before it (the engine's windows).
TRENDING_RECENT_DAYS = 1
TRENDING_NORMAL_DAYS = 14

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
JSON_MEDIA_TYPE = "application/json"
CSV_HEADER = "start,bookings,tickets,revenue,cancellations,conversion,growth"


class Format(enum.StrEnum):
    JSON = "json"
    CSV = "csv"


@dataclass(frozen=True, slots=True)
class Answer:
    """A report as sent: its bytes and their media type."""

    body: bytes
    media_type: str


@dataclass(frozen=True, slots=True)
class TrendsQuery:
    """What the trends report is asked for. A plain date means its whole UTC day:
    ``date_from`` from its start, ``date_to`` up to its end."""

    period: Period = Period.DAILY
    event_id: uuid.UUID | None = None
    category: str | None = None
    date_from: dt.datetime | dt.date | None = None
    date_to: dt.datetime | dt.date | None = None
    format: Format = Format.JSON


# --- the use cases ---------------------------------------------------------------------------


async def trends(hub: Hub, query: TrendsQuery, *, fresh: bool = False) -> Answer:
    """Bookings, tickets, revenue, cancellations, conversion and growth per bucket, oldest
    first, with the range's seasonality; as JSON or as CSV rows.

    Raises:
        ValidationError: the range is empty (names ``date_to``) or holds more than
            `MAX_BUCKETS` buckets (names ``date_from``), or a time is out of range.
        NotFound: ``event_id`` names no event.
    """
    now = _now()
    start, end = trend_range(query, now)
    key = ":".join(
        [
            "trends",
            query.period.value,
            str(query.event_id or "-"),
            (query.category or "-").lower(),
            "default" if query.date_from is None else _stamp(start),
            "default" if query.date_to is None else _stamp(end),
            query.format.value,
        ]
    )
    media = CSV_MEDIA_TYPE if query.format is Format.CSV else JSON_MEDIA_TYPE

    async def compute() -> bytes:
        async with hub.db.connection() as con:
            if query.event_id is not None and await events_db.by_id(con, query.event_id) is None:
                raise NotFound(f"No such event: {query.event_id}")
            if query.period is Period.HOURLY or (query.event_id is None and query.category is None):
                rollup = await analytics_db.hourly(
                    con, start, end, event_id=query.event_id, category=query.category
                )
            else:  # buckets of whole days: the whole days inside come summed per day
                rollup = await analytics_db.hours_and_days(
                    con, start, end, event_id=query.event_id, category=query.category
                )
        found = engine.trends(rollup, query.period, start, end)
        if query.format is Format.CSV:
            return render_csv(found)
        return jsonenc.dumps(
            {
                "period": found.period.value,
                "buckets": bucket_rows(found),
                "seasonality": _seasonality(found.seasonality),
            }
        )

    return Answer(await _cached(hub, key, fresh, compute), media)


async def user_behaviour(hub: Hub, *, fresh: bool = False) -> Answer:
    """Monthly retention cohorts, repeat-booking rate, bookings per hour of day and weekday,
    lead-time percentiles and the cancellation rate, over all history."""

    async def compute() -> bytes:
        now = _now()
        cells, (users, repeat_users), clock, (lead, lead_bookings) = await asyncio.gather(
            _read(hub, analytics_db.cohort_cells),
            _read(hub, analytics_db.user_counts),
            _read(hub, analytics_db.clock),
            _read(hub, analytics_db.lead_days),
        )
        cohorts = engine.cohorts_from_counts(cells.first_month, cells.month, cells.users, now)
        hours, weekdays = engine.booking_clock(clock.week_hour, clock.bookings)
        p10, p50, p90 = engine.percentiles(lead, (0.1, 0.5, 0.9), lead_bookings)
        return jsonenc.dumps(
            {
                "cohorts": [_cohort(c) for c in cohorts],
                "repeat_rate": _ratio(repeat_users, users),
                "booking_hours": list(hours),
                "booking_weekdays": list(weekdays),
                "lead_time_days": {"p10": p10, "p50": p50, "p90": p90},
                "cancellation_rate": _ratio(
                    int(clock.cancellations.sum()), int(clock.bookings.sum())
                ),
            }
        )

    return Answer(await _cached(hub, "user-behavior", fresh, compute), JSON_MEDIA_TYPE)


async def predictions(hub: Hub, *, fresh: bool = False) -> Answer:
    """Bookings and revenue over the next 30 days, overall and per category, with 80 %
    intervals, learnt from up to `FORECAST_HISTORY_DAYS` days; the rolling back-test of the
    overall model against seasonal naive; and the events selling fastest against their own
    normal."""

    async def compute() -> bytes:
        now = _now()
        today = _midnight(now)
        end = int(now.timestamp())
        recent_from = end - TRENDING_RECENT_DAYS * engine.DAY
        normal_from = recent_from - TRENDING_NORMAL_DAYS * engine.DAY
        by_category, windows = await asyncio.gather(
            _read(
                hub,
                analytics_db.daily_by_category,
                today - dt.timedelta(days=FORECAST_HISTORY_DAYS),
                today,
            ),
            _read(hub, analytics_db.event_windows, _at(normal_from), _at(recent_from), _at(end)),
        )
        overall, series = daily_series(by_category, today)
        found = forecast.predict_next_month(overall, series)
        trending = trending_events(windows, normal_from, recent_from, end)
        categories = sorted(
            found.by_category.items(), key=lambda item: (-item[1].bookings, item[0].lower())
        )
        outlook = found.next_month
        return jsonenc.dumps(
            {
                "next_month": {
                    "bookings": outlook.bookings,
                    "revenue": cents_to_decimal(outlook.revenue_cents),
                    "lower": outlook.lower,
                    "upper": outlook.upper,
                    "level": outlook.level,
                },
                "by_category": [
                    {
                        "category": name,
                        "bookings": o.bookings,
                        "revenue": cents_to_decimal(o.revenue_cents),
                        "lower": o.lower,
                        "upper": o.upper,
                    }
                    for name, o in categories
                ],
                "backtest": {
                    "model_mape": found.backtest.model_mape,
                    "baseline": found.backtest.baseline.value,
                    "baseline_mape": found.backtest.baseline_mape,
                    "folds": found.backtest.folds,
                },
                "trending": trending,
            }
        )

    return Answer(await _cached(hub, "predictions", fresh, compute), JSON_MEDIA_TYPE)


async def dashboard(hub: Hub, *, fresh: bool = False) -> Answer:
    """The headline figures in one answer: conversion (last 30 days), retention, peak hours,
    the seasonal pattern, the top events of the last 30 days, revenue today / this month /
    in total, and the live figures (holds active, tickets sold today)."""

    async def compute() -> bytes:
        now = _now()
        today = _midnight(now)
        recent = now - dt.timedelta(days=DASHBOARD_DAYS)
        rollup, cells, top, holds, sold = await asyncio.gather(
            _read(hub, analytics_db.hourly, None, None),
            _read(hub, analytics_db.cohort_cells),
            _read(hub, analytics_db.top_events, recent, now, TOP_EVENTS),
            _read(hub, analytics_db.holds_active, hub.settings.hold_max_lifetime_seconds),
            _read(hub, analytics_db.tickets_sold_since, today),
        )
        cohorts = engine.cohorts_from_counts(cells.first_month, cells.month, cells.users, now)
        hours, _ = engine.booking_clock(rollup.hour, rollup.bookings)
        since = rollup.hour >= int(_floor_hour(recent).timestamp())

        def revenue_since(moment: dt.datetime) -> int:
            return int(rollup.revenue_cents[rollup.hour >= int(moment.timestamp())].sum())

        return jsonenc.dumps(
            {
                "conversion_rate": _ratio(
                    int(rollup.bookings[since].sum()), int(rollup.holds[since].sum())
                ),
                "retention_rate": engine.retention_rate(cohorts),
                "peak_hours": list(engine.peak_hours(hours)),
                "seasonal_trend": _seasonality(_history_seasonality(rollup, now)),
                "top_events": [
                    {
                        "event_id": row["event_id"],
                        "name": row["name"],
                        "category": row["category"],
                        "bookings": row["bookings"],
                        "revenue": cents_to_decimal(row["revenue_cents"]),
                    }
                    for row in top
                ],
                "revenue": {
                    "today": cents_to_decimal(revenue_since(today)),
                    "month": cents_to_decimal(revenue_since(today.replace(day=1))),
                    "total": cents_to_decimal(int(rollup.revenue_cents.sum())),
                },
                "live": {"holds_active": holds, "sold_today": sold},
            }
        )

    return Answer(await _cached(hub, "dashboard", fresh, compute), JSON_MEDIA_TYPE)


# --- ranges ----------------------------------------------------------------------------------


def trend_range(query: TrendsQuery, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The range a trends query covers, widened to whole hours: ``date_to`` or now at the
    end; ``date_from`` or the default window back from the end, from the start of its
    first bucket (so a default range holds whole buckets only).

    Raises:
        ValidationError: a time out of range, an empty range, or too many buckets.
    """
    period = query.period
    end = _ceil_hour(
        _instant(query.date_to, "date_to", end_of_day=True) if query.date_to is not None else now
    )
    if query.date_from is not None:
        start = _floor_hour(_instant(query.date_from, "date_from", end_of_day=False))
    else:
        start = _default_start(period, end - dt.timedelta(microseconds=1))
    if end <= start:
        if query.date_to is None:
            raise ValidationError.field("date_from", "must be before now (date_to's default)")
        raise ValidationError.field("date_to", "must be after date_from")
    buckets = bucket_count(period, start, end)
    if buckets > MAX_BUCKETS:
        raise ValidationError.field(
            "date_from",
            f"the range holds {buckets} {period.value} buckets, more than {MAX_BUCKETS}: "
            "choose a later date_from, an earlier date_to or a longer period",
        )
    return start, end


def bucket_count(period: Period, start: dt.datetime, end: dt.datetime) -> int:
    """How many buckets of ``period`` ``[start, end)`` touches (both whole hours)."""
    last = end - dt.timedelta(hours=1)
    if period is Period.HOURLY:
        return (end - start) // dt.timedelta(hours=1)
    if period is Period.DAILY:
        return (last.date() - start.date()).days + 1
    if period is Period.WEEKLY:
        monday = start.date() - dt.timedelta(days=start.weekday())
        return (last.date() - monday).days // 7 + 1
    return (last.year - start.year) * 12 + last.month - start.month + 1


def _default_start(period: Period, last: dt.datetime) -> dt.datetime:
    """The start of the default window whose last instant is ``last``."""
    if period is Period.HOURLY:
        return _floor_hour(last - dt.timedelta(days=DEFAULT_DAYS))
    day = _midnight(last)
    if period is Period.DAILY:
        return day - dt.timedelta(days=DEFAULT_DAYS)
    if period is Period.WEEKLY:
        return day - dt.timedelta(days=day.weekday(), weeks=DEFAULT_WEEKS)
    months = day.year * 12 + day.month - 1 - DEFAULT_MONTHS
    return day.replace(year=months // 12, month=months % 12 + 1, day=1)


def _instant(value: dt.datetime | dt.date, field: str, *, end_of_day: bool) -> dt.datetime:
    """A query time as a UTC instant; a plain date is its day's start, or with
    ``end_of_day`` the next day's start (the day is included)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValidationError.field(field, "give a time zone or a plain date")
        moment = value.astimezone(dt.UTC)
        if not EARLIEST <= moment < LATEST:
            raise ValidationError.field(field, "must be from 1970-01-01 to 9998-12-31")
        return moment
    if not EARLIEST.date() <= value < LATEST.date():
        raise ValidationError.field(field, "must be from 1970-01-01 to 9998-12-31")
    moment = dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC)
    return moment + dt.timedelta(days=1) if end_of_day else moment


# --- shaping ---------------------------------------------------------------------------------


def bucket_rows(found: engine.Trends) -> list[dict[str, Any]]:
    """The JSON buckets of a trends result."""
    return [
        {
            "start": start,
            "bookings": bookings,
            "tickets": tickets,
            "revenue": cents_to_decimal(revenue),
            "cancellations": cancellations,
            "conversion": conversion,
            "growth": growth,
        }
        for start, bookings, tickets, revenue, cancellations, conversion, growth in _columns(found)
    ]


def render_csv(found: engine.Trends) -> bytes:
    """The CSV of a trends result: DESIGN §4's header and one row per bucket, money with
    two decimals, fractions as decimals (as JSON writes them), null as an empty field."""
    lines = [CSV_HEADER]
    for start, bookings, tickets, revenue, cancellations, conversion, growth in _columns(found):
        lines.append(
            f"{start},{bookings},{tickets},{cents_to_decimal(revenue)},{cancellations},"
            f"{_csv_number(conversion)},{_csv_number(growth)}"
        )
    lines.append("")
    return "\r\n".join(lines).encode()


def _columns(found: engine.Trends) -> zip[tuple[Any, ...]]:
    """Each bucket's fields as plain Python values: start (ISO text), bookings, tickets,
    revenue cents, cancellations, conversion and growth (None for null)."""
    starts = np.datetime_as_string(found.start.astype("datetime64[s]").astype("datetime64[ms]"))
    return zip(
        [f"{s}Z" for s in starts.tolist()],
        found.bookings.tolist(),
        found.tickets.tolist(),
        found.revenue_cents.tolist(),
        found.cancellations.tolist(),
        _nullable(found.conversion),
        _nullable(found.growth),
        strict=True,
    )


def _nullable(values: np.ndarray) -> list[float | None]:
    return [None if v != v else v for v in values.tolist()]  # NaN is the only v != v


def _csv_number(value: float | None) -> str:
    return "" if value is None else jsonenc.dumps(value).decode()


def _seasonality(found: engine.Seasonality) -> dict[str, list[float | None]]:
    return {"weekday": list(found.weekday), "month": list(found.month)}


def _history_seasonality(rollup: HourlyRollup, now: dt.datetime) -> engine.Seasonality:
    """The seasonality of all history up to now (no history: every average None)."""
    if len(rollup) == 0:
        return engine.Seasonality(weekday=(None,) * 7, month=(None,) * 12)
    first = int(rollup.hour.min())
    return engine.seasonality(rollup, first, max(int(now.timestamp()), first + HOUR))


def _cohort(cohort: engine.Cohort) -> dict[str, Any]:
    return {
        "month": cohort.month.isoformat(),
        "size": cohort.size,
        "retention": list(cohort.retention),
    }


def daily_series(
    by_category: dict[str, HourlyRollup], today: dt.datetime
) -> tuple[forecast.DailySeries, dict[str, forecast.DailySeries]]:
    """Daily series from the first day with a booking or revenue to yesterday, overall and
    per category, every day present (zeros included). With no history, one day of zeros."""
    first = min(
        (int(r.hour.min()) for r in by_category.values() if len(r)),
        default=int(today.timestamp()) - engine.DAY,
    )
    first = min(first, int(today.timestamp()) - engine.DAY)
    end = int(today.timestamp())

    def series(rollup: HourlyRollup) -> forecast.DailySeries:
        return forecast.DailySeries.from_trends(engine.trends(rollup, Period.DAILY, first, end))

    parts = list(by_category.values())
    names = ("hour", "bookings", "tickets", "revenue_cents", "cancellations", "holds")
    overall = HourlyRollup(
        *(np.concatenate([np.zeros(0, np.int64), *(getattr(p, n) for p in parts)]) for n in names)
    )
    return series(overall), {name: series(r) for name, r in by_category.items()}


def trending_events(
    windows: analytics_db.EventWindows, normal_from: int, recent_from: int, end: int
) -> list[dict[str, Any]]:
    """The engine's trending events from each event's bookings in the two windows: one row
    per event and window, stamped with the window's start."""
    n = len(windows.event_ids)
    codes = np.concatenate([np.arange(n), np.arange(n)])
    stamps = np.concatenate([np.full(n, recent_from), np.full(n, normal_from)]).astype(np.int64)
    counts = np.concatenate([windows.recent, windows.normal])
    found = engine.trending_events(
        codes,
        stamps,
        counts,
        end,
        recent_days=TRENDING_RECENT_DAYS,
        normal_days=TRENDING_NORMAL_DAYS,
    )
    return [
        {
            "event_id": windows.event_ids[t.event],
            "velocity": t.velocity,
            "normal": t.normal,
            "ratio": t.ratio,
        }
        for t in found
    ]


# --- plumbing --------------------------------------------------------------------------------


async def _cached(
    hub: Hub, key: str, fresh: bool, compute: Callable[[], Awaitable[bytes]]
) -> bytes:
    """The cached answer under ``key`` unless ``fresh`` or missing; else ``compute`` it
    and keep it for ``analytics_cache_seconds``."""
    return await kept_in_redis(
        hub.store,
        f"analytics:{key}",
        hub.settings.analytics_cache_seconds,
        compute,
        fresh=fresh,
        label="analytics",
    )


async def _read(hub: Hub, query: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """One query on a connection of its own (a report's queries run side by side)."""
    async with hub.db.connection() as con:
        return await query(con, *args)


def _ratio(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else numerator / denominator


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _at(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def _midnight(moment: dt.datetime) -> dt.datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _floor_hour(moment: dt.datetime) -> dt.datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _ceil_hour(moment: dt.datetime) -> dt.datetime:
    floor = _floor_hour(moment)
    return floor if floor == moment else floor + dt.timedelta(hours=1)


def _stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y%m%dT%H")
