"""Routes: the admin health report (cached 5 minutes, ``?fresh=true`` measures now) and the
last hour of its headline figures as time series. What each figure means and how it is
measured: ``hub.services.health``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from starlette.responses import Response

from hub.api.inputs import QueryInput
from hub.api.routing import Api, Auth, Call, Doc
from hub.services import health

api = Api(tag="health")


class FreshQuery(QueryInput):
    fresh: bool = False


# --- response shapes (documentation only) ------------------------------------------------------


class ApiFiguresOut(BaseModel):
    window_seconds: float
    requests_total: int
    requests_per_s: float
    errors_total: int
    error_rate: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    recent: dict[str, Any]
    holds: dict[str, Any]
    routes: list[dict[str, Any]]


class ProcessOut(BaseModel):
    cpu_percent: float
    rss_bytes: int
    workers: list[dict[str, Any]]


class AlertOut(BaseModel):
    name: str
    state: str
    since: str
    value: float | None
    threshold: float


class HealthOut(BaseModel):
    status: str
    measured_at: str
    database: dict[str, Any]
    redis: dict[str, Any]
    api: ApiFiguresOut
    bookings: dict[str, Any]
    external: dict[str, Any]
    process: ProcessOut
    queues: dict[str, Any]
    alerts: list[AlertOut]
    took_ms: float


class MonitoringOut(BaseModel):
    resolution_seconds: float
    window_seconds: float
    points: int
    series: dict[str, list[Any]]


@api.route(
    "GET",
    "/advanced/health/comprehensive",
    Doc(
        "Every health figure measured: PostgreSQL, Redis, the API over all workers, bookings, "
        "breakers, processes, queues and alerts (cached 5 minutes; ?fresh=true measures now)",
        response=HealthOut,
        errors=(401, 403, 422),
    ),
    auth=Auth.ADMIN,
    query=FreshQuery,
)
async def comprehensive(call: Call) -> Any:
    body = await health.comprehensive(call.hub, fresh=call.query.fresh)
    return Response(body, media_type="application/json")


@api.route(
    "GET",
    "/advanced/health/monitoring",
    Doc(
        "The last hour of the headline health figures at 10 s resolution, as columns",
        response=MonitoringOut,
        errors=(401, 403),
    ),
    auth=Auth.ADMIN,
)
async def monitoring(call: Call) -> Any:
    return await health.monitoring(call.hub)
