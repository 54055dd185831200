"""Routes: the admin analytics — trends (JSON or CSV), user behaviour, predictions and the
dashboard. Each answer is cached for ``EVENTLY_ANALYTICS_CACHE_SECONDS``; ``?fresh=true``
recomputes it."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, StringConstraints, field_validator
from starlette.responses import Response

from engines.analytics import Period
from hub.api.inputs import QueryInput
from hub.api.routing import Api, Auth, Call, Doc
from hub.services import analytics
from hub.services.analytics import Format

api = Api(tag="analytics")


class FreshQuery(QueryInput):
    fresh: bool = False


class TrendsQuery(FreshQuery):
    period: Period = Period.DAILY
    event_id: uuid.UUID | None = None
    category: Annotated[str, StringConstraints(max_length=50)] | None = None
    date_from: dt.datetime | dt.date | None = None
    date_to: dt.datetime | dt.date | None = None
    format: Format = Format.JSON

    @field_validator("date_from", "date_to", mode="before")
    @classmethod
    def _time_or_date(cls, value: Any) -> Any:
        # Parsed here, so a bad value is an error of the field itself, not of one of the
        # union's members. "2031-03-20" is a UTC day, not midnight of an unknown time zone.
        if not isinstance(value, str):
            return value
        try:
            if len(value) == 10:
                return dt.date.fromisoformat(value)
            return dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("an ISO 8601 time with a time zone, or a plain date") from None

    @field_validator("date_from", "date_to", mode="after")
    @classmethod
    def _aware(cls, value: dt.datetime | dt.date | None) -> dt.datetime | dt.date | None:
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            raise ValueError("give a time zone (e.g. 2030-01-01T20:00:00Z) or a plain date")
        return value


# --- response shapes (documentation only) ------------------------------------------------------


class BucketOut(BaseModel):
    start: str
    bookings: int
    tickets: int
    revenue: Decimal
    cancellations: int
    conversion: float | None
    growth: float | None


class SeasonalityOut(BaseModel):
    weekday: list[float | None]
    month: list[float | None]


class TrendsOut(BaseModel):
    period: Period
    buckets: list[BucketOut]
    seasonality: SeasonalityOut


class CohortOut(BaseModel):
    month: str
    size: int
    retention: list[float]


class LeadTimesOut(BaseModel):
    p10: float | None
    p50: float | None
    p90: float | None


class UserBehaviourOut(BaseModel):
    cohorts: list[CohortOut]
    repeat_rate: float | None
    booking_hours: list[int]
    booking_weekdays: list[int]
    lead_time_days: LeadTimesOut
    cancellation_rate: float | None


class OutlookOut(BaseModel):
    bookings: int
    revenue: Decimal
    lower: int
    upper: int
    level: float


class CategoryOutlookOut(BaseModel):
    category: str
    bookings: int
    revenue: Decimal
    lower: int
    upper: int


class BacktestOut(BaseModel):
    model_mape: float | None
    baseline: str
    baseline_mape: float | None
    folds: int


class TrendingOut(BaseModel):
    event_id: uuid.UUID
    velocity: float
    normal: float
    ratio: float


class PredictionsOut(BaseModel):
    next_month: OutlookOut
    by_category: list[CategoryOutlookOut]
    backtest: BacktestOut
    trending: list[TrendingOut]


class TopEventOut(BaseModel):
    event_id: uuid.UUID
    name: str
    category: str
    bookings: int
    revenue: Decimal


class RevenueOut(BaseModel):
    today: Decimal
    month: Decimal
    total: Decimal


class LiveOut(BaseModel):
    holds_active: int
    sold_today: int


class DashboardOut(BaseModel):
    conversion_rate: float | None
    retention_rate: float | None
    peak_hours: list[int]
    seasonal_trend: SeasonalityOut
    top_events: list[TopEventOut]
    revenue: RevenueOut
    live: LiveOut


# --- routes ----------------------------------------------------------------------------------


def _sent(answer: analytics.Answer) -> Response:
    return Response(answer.body, media_type=answer.media_type)


@api.route(
    "GET",
    "/advanced/analytics/trends",
    Doc(
        "Bookings per hour, day, week or month, with conversion, growth and seasonality "
        "(?format=csv for a spreadsheet)",
        response=TrendsOut,
        errors=(401, 403, 404, 422),
    ),
    auth=Auth.ADMIN,
    query=TrendsQuery,
)
async def trends(call: Call) -> Any:
    query: TrendsQuery = call.query
    asked = analytics.TrendsQuery(
        period=query.period,
        event_id=query.event_id,
        category=query.category or None,
        date_from=query.date_from,
        date_to=query.date_to,
        format=query.format,
    )
    return _sent(await analytics.trends(call.hub, asked, fresh=query.fresh))


@api.route(
    "GET",
    "/advanced/analytics/user-behavior",
    Doc(
        "Retention cohorts, repeat bookings, booking times, lead times and cancellations",
        response=UserBehaviourOut,
        errors=(401, 403, 422),
    ),
    auth=Auth.ADMIN,
    query=FreshQuery,
)
async def user_behaviour(call: Call) -> Any:
    return _sent(await analytics.user_behaviour(call.hub, fresh=call.query.fresh))


@api.route(
    "GET",
    "/advanced/analytics/predictions",
    Doc(
        "Next-month bookings and revenue with 80 % intervals, the model's back-test and "
        "the trending events",
        response=PredictionsOut,
        errors=(401, 403, 422),
    ),
    auth=Auth.ADMIN,
    query=FreshQuery,
)
async def predictions(call: Call) -> Any:
    return _sent(await analytics.predictions(call.hub, fresh=call.query.fresh))


@api.route(
    "GET",
    "/advanced/analytics/dashboard",
    Doc("The headline figures in one answer", response=DashboardOut, errors=(401, 403, 422)),
    auth=Auth.ADMIN,
    query=FreshQuery,
)
async def dashboard(call: Call) -> Any:
    return _sent(await analytics.dashboard(call.hub, fresh=call.query.fresh))
