"""``python -m tests.bench.health``: how long a fresh health report takes (target: 50 ms).

In process, on the local PostgreSQL and Redis (a fresh database and key prefix of its own,
dropped afterwards): the app with its lifespan and leader loops, a few events with live
holds (``--events`` x ``--holds`` holds of 2 seats, all examined by the report's stuck
confirmation scan), a spread of requests over several routes so the per-route table is
full, and the vitals of this process published. Then ``--reports`` reports, one at a time:
the endpoint with ``?fresh=true`` through the ASGI stack (authentication, routing, the
measurement, JSON), the cached one, and ``health.live_summary`` (the admin stream's
per-second read) called directly.

Prints p50/p99/max (ms) of each and whether the fresh p99 meets the target; exits 1 if not.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import time
from typing import Any

import httpx

from hub.services import accounts, health, vitals
from loadtest.launch import LOCAL_PG, LOCAL_REDIS
from tests.bench.bulk import _event, percentile
from tests.bench.in_process import scratch_app
from tests.factories import default_sections

TARGET_P99_MS = 50.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pg-url", default=LOCAL_PG, help="PostgreSQL server to make a database on")
    p.add_argument("--redis-url", default=LOCAL_REDIS)
    p.add_argument("--events", type=int, default=5, help="events with live holds")
    p.add_argument("--holds", type=int, default=200, help="holds of 2 seats per event")
    p.add_argument("--reports", type=int, default=300, help="reports timed, fresh and cached")


async def _login(c: httpx.AsyncClient, app: Any, *, admin: bool) -> dict[str, str]:
    email, password = f"bench-{secrets.token_hex(4)}@example.com", secrets.token_urlsafe(12)
    if admin:
        await accounts.ensure_admin(app.state.hub, email, password)
    else:
        made = await c.post(
            "/api/v1/auth/register", json={"email": email, "password": password, "name": "B"}
        )
        made.raise_for_status()
    login = await c.post("/api/v1/auth/login", json={"email": email, "password": password})
    login.raise_for_status()
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def _setup(c: httpx.AsyncClient, app: Any, events: int, holds: int) -> dict[str, str]:
    admin = await _login(c, app, admin=True)
    rows = max(4, (holds * 2) // 40 + 1)
    venue = await c.post(
        "/api/v1/venues",
        json={"name": "Health hall", "city": "Lisbon",
              "sections": default_sections(rows=rows, seats_per_row=20)},
        headers=admin,
    )  # fmt: skip
    venue.raise_for_status()
    for _ in range(events):
        event_id = await _event(c, admin, str(venue.json()["id"]))
        for _ in range(holds):
            # One user per hold: the per-user ticket cap stays out of the way.
            user = await _login(c, app, admin=False)
            held = await c.post(
                f"/api/v1/events/{event_id}/holds", json={"quantity": 2}, headers=user
            )
            held.raise_for_status()
        for _ in range(20):
            (await c.get(f"/api/v1/events/{event_id}")).raise_for_status()
            (await c.get(f"/api/v1/events/{event_id}/seats")).raise_for_status()
            await c.get(f"/api/v1/events/{event_id}/nothing-here")
    (await c.get("/api/v1/events")).raise_for_status()
    return admin


async def _time(c: httpx.AsyncClient, admin: dict[str, str], n: int, fresh: bool) -> list[float]:
    timings = []
    params = {"fresh": "true"} if fresh else {}
    for _ in range(n):
        started = time.perf_counter()
        response = await c.get(
            "/api/v1/advanced/health/comprehensive", params=params, headers=admin
        )
        timings.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return timings


async def run(args: argparse.Namespace) -> int:
    async with scratch_app(
        args.pg_url, args.redis_url, "health", leader_loops=True, pricing_interval_seconds=86_400.0
    ) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=60) as c:
            admin = await _setup(c, app, args.events, args.holds)
            await asyncio.sleep(vitals.PUBLISH_SECONDS * 1.5)  # this process published
            sample = (await c.get(
                "/api/v1/advanced/health/comprehensive", params={"fresh": "true"},
                headers=admin,
            )).json()  # fmt: skip
            fresh = await _time(c, admin, args.reports, fresh=True)
            cached = await _time(c, admin, args.reports, fresh=False)
            summary = []
            for _ in range(args.reports):
                started = time.perf_counter()
                await health.live_summary(app.state.hub)
                summary.append((time.perf_counter() - started) * 1000)
    print(
        f"health report, in process through the ASGI stack: {sample['bookings']['holds_active']}"
        f" live holds on {args.events} events (examined {sample['bookings']['holds_examined']}),"
        f" {len(sample['api']['routes'])} routes, {len(sample['process']['workers'])} worker(s);"
        f" measured by the report itself: {sample['took_ms']} ms"
    )
    for name, timings in (("fresh", fresh), ("cached", cached), ("live_summary", summary)):
        print(
            f"  {name:12} n={len(timings)}  mean {statistics.fmean(timings):.1f}  "
            f"p50 {percentile(timings, 50):.1f}  p99 {percentile(timings, 99):.1f}  "
            f"max {max(timings):.1f} ms"
        )
    met = percentile(fresh, 99) <= TARGET_P99_MS
    print(f"  fresh p99 target {TARGET_P99_MS:.0f} ms: {'met' if met else 'MISSED'}")
    return 0 if met else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.health")
    add_arguments(parser)
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
