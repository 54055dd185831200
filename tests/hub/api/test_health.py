"""The health routes: admins only; every figure measured (a burst of requests shows in the
request counts and latency percentiles of its route, holds in the live holds); the cached
report against ``?fresh=true``; the monitoring series' shape."""

from __future__ import annotations

import os
import socket
from typing import Any

import httpx
import pytest

from hub.services import health, vitals
from tests.conftest import Account, register
from tests.factories import make_event
from tests.waiting import eventually

BASE = "/api/v1/advanced/health"


async def _report(client: httpx.AsyncClient, admin: Account, **params: Any) -> dict[str, Any]:
    response = await client.get(f"{BASE}/comprehensive", params=params, headers=admin.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    return body


def _route(report: dict[str, Any], method: str, path: str) -> dict[str, Any] | None:
    for row in report["api"]["routes"]:
        if row["method"] == method and row["route"] == path:
            return row
    return None


@pytest.mark.parametrize("route", ["comprehensive", "monitoring"])
async def test_anonymous_is_401_and_a_user_403(client: httpx.AsyncClient, route: str) -> None:
    anonymous = await client.get(f"{BASE}/{route}")
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "unauthorized"
    user = await register(client)
    refused = await client.get(f"{BASE}/{route}", headers=user.headers)
    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"


async def test_a_bad_fresh_flag_is_422_naming_it(client: httpx.AsyncClient, admin: Account) -> None:
    response = await client.get(
        f"{BASE}/comprehensive", params={"fresh": "perhaps"}, headers=admin.headers
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["fresh"]


async def test_the_report_is_measured_in_every_section(
    client: httpx.AsyncClient, admin: Account
) -> None:
    report = await _report(client, admin, fresh="true")
    assert report["status"] in ("ok", "degraded")
    database, redis = report["database"], report["redis"]
    assert database["ok"] and redis["ok"]
    assert 0 < database["probe_ms"] < 1000 and 0 < redis["probe_ms"] < 1000
    pool = database["pool"]
    assert pool["size"] >= 1 and pool["in_use"] + pool["idle"] == pool["size"]
    assert database["connections"] >= 1  # the pool's other sessions, seen in pg_stat_activity
    assert redis["used_memory_bytes"] > 0 and redis["connected_clients"] >= 1
    # This process published its vitals: its pid, its RSS, a CPU share.
    me = f"{socket.gethostname()}:{os.getpid()}"
    assert await eventually(
        lambda: _has_worker(client, admin, me), within=3 * vitals.PUBLISH_SECONDS
    )
    worker = next(
        w
        for w in (await _report(client, admin, fresh="true"))["process"]["workers"]
        if w["id"] == me
    )
    assert worker["pid"] == os.getpid() and worker["rss_bytes"] > 10_000_000
    assert set(report["external"]) == {"payments", "email"}
    assert report["external"]["payments"]["state"] in ("closed", "open", "half_open")
    assert {a["name"] for a in report["alerts"]} <= set(health.SERIES_FIELDS) | {
        "hold_p99_ms",
        "error_rate",
        "breaker_open",
        "outbox_backlog",
        "postgres_down",
        "redis_down",
    }
    assert report["queues"]["outbox_pending"] >= 0
    assert report["took_ms"] > 0


async def _has_worker(client: httpx.AsyncClient, admin: Account, me: str) -> bool:
    report = await _report(client, admin, fresh="true")
    return any(w["id"] == me for w in report["process"]["workers"])


async def test_a_burst_of_requests_raises_the_counts_and_latency_of_its_route(
    client: httpx.AsyncClient, admin: Account
) -> None:
    event = await make_event(client, admin, rows=2, seats_per_row=5)
    path = "/api/v1/events/{event_id}/seats"
    before = _route(await _report(client, admin, fresh="true"), "GET", path)
    counted = before["requests"] if before else 0
    for _ in range(40):
        response = await client.get(f"/api/v1/events/{event['id']}/seats")
        assert response.status_code == 200

    async def seen() -> bool:
        row = _route(await _report(client, admin, fresh="true"), "GET", path)
        return row is not None and row["requests"] >= counted + 40

    assert await eventually(seen, within=3 * vitals.PUBLISH_SECONDS)
    report = await _report(client, admin, fresh="true")
    row = _route(report, "GET", path)
    assert row is not None
    assert row["p50_ms"] is not None and 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
    assert row["errors"] == 0 and row["error_rate"] == 0
    assert report["api"]["requests_total"] >= row["requests"]
    assert report["api"]["recent"]["requests"] >= 40 or report["api"]["recent"]["seconds"] > 0


async def test_holds_show_in_the_live_holds_at_once(
    client: httpx.AsyncClient, admin: Account, user: Account
) -> None:
    event = await make_event(client, admin, rows=2, seats_per_row=5)
    before = (await _report(client, admin, fresh="true"))["bookings"]["holds_active"]
    for _ in range(2):
        held = await client.post(
            f"/api/v1/events/{event['id']}/holds", json={"quantity": 2}, headers=user.headers
        )
        assert held.status_code == 201, held.text
    bookings = (await _report(client, admin, fresh="true"))["bookings"]
    assert bookings["ok"] and bookings["holds_active"] >= before + 2
    assert bookings["expiries_due"] >= 0 and bookings["confirmations_stuck"] == 0


async def test_the_report_is_kept_until_fresh_measures_again(
    client: httpx.AsyncClient, admin: Account
) -> None:
    first = await _report(client, admin)
    again = await _report(client, admin)
    assert again["measured_at"] == first["measured_at"]  # the kept one
    fresh = await _report(client, admin, fresh="true")
    assert fresh["measured_at"] != first["measured_at"]
    assert (await _report(client, admin))["measured_at"] == fresh["measured_at"]


async def test_monitoring_is_columns_of_equal_length(
    client: httpx.AsyncClient, admin: Account, app: Any
) -> None:
    await health.sample(app.state.hub)
    response = await client.get(f"{BASE}/monitoring", headers=admin.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["resolution_seconds"] == 10 and body["window_seconds"] == 3600
    assert body["points"] >= 1
    assert set(body["series"]) == set(health.SERIES_FIELDS)
    assert all(len(column) == body["points"] for column in body["series"].values())
    assert body["series"]["db_probe_ms"][-1] > 0
