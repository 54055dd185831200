"""``python -m tests.bench.bulk``: bulk group bookings of 200 seats on a 20,000-seat venue.

End to end through the hub's HTTP stack, in process: the app (``create_app``, with its
lifespan) on the local PostgreSQL and Redis (a fresh database and key prefix of its own,
dropped afterwards), called through an ASGI transport — routing, authentication, body
validation, the seat engine under the event's lock, the hold script, the payment and the
booking transaction, the receipt — one booking at a time, each timed from request to
response. Each event of the venue takes ``--per-event`` bookings (so later ones choose on
a fuller venue); the first event's first booking (layout build, caches) is timed apart.

Prints the latency figures (ms) and whether the p99 meets the target (150 ms); exits 1
when a booking fails or the target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import secrets
import statistics
import sys
import time
import uuid
from typing import Any

import httpx

from hub.services import accounts
from loadtest.launch import LOCAL_PG, LOCAL_REDIS
from loadtest.surge import venue_sections
from tests.bench.in_process import scratch_app

TARGET_P99_MS = 150.0
SEATS = 20_000
GROUP = 200


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pg-url", default=LOCAL_PG, help="PostgreSQL server to make a database on")
    p.add_argument("--redis-url", default=LOCAL_REDIS)
    p.add_argument("--events", type=int, default=3, help="events on the venue")
    p.add_argument("--per-event", type=int, default=40, help="bulk bookings per event")
    p.add_argument("--group", type=int, default=GROUP, help="seats per booking")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of ``values`` (0 < q <= 100)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


async def _admin_headers(client: httpx.AsyncClient, app: Any) -> dict[str, str]:
    email, password = f"bench-{secrets.token_hex(4)}@example.com", secrets.token_urlsafe(12)
    await accounts.ensure_admin(app.state.hub, email, password)
    login = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    login.raise_for_status()
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def _event(client: httpx.AsyncClient, admin: dict[str, str], venue_id: str) -> str:
    starts = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    event = await client.post(
        "/api/v1/events",
        json={"name": f"Bulk {uuid.uuid4().hex[:6]}", "category": "concert",
              "venue_id": venue_id, "starts_at": starts.isoformat()},
        headers=admin,
    )  # fmt: skip
    event.raise_for_status()
    return str(event.json()["id"])


async def measure(app: Any, events: int, per_event: int, group: int) -> tuple[float, list[float]]:
    """The first booking's time and every later booking's, in ms."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=60) as c:
        admin = await _admin_headers(c, app)
        venue = await c.post(
            "/api/v1/venues",
            json={"name": "Bulk arena", "city": "Lisbon", "sections": venue_sections(SEATS)},
            headers=admin,
        )
        venue.raise_for_status()
        register = await c.post(
            "/api/v1/auth/register",
            json={"email": f"group-{secrets.token_hex(4)}@example.com",
                  "password": "correct horse battery", "name": "Group leader"},
        )  # fmt: skip
        register.raise_for_status()
        user = {"Authorization": f"Bearer {register.json()['access_token']}"}
        timings: list[float] = []
        for _ in range(events):
            event_id = await _event(c, admin, str(venue.json()["id"]))
            for i in range(per_event):
                body = {"event_id": event_id, "quantity": group, "group_name": f"Group {i}"}
                started = time.perf_counter()
                response = await c.post("/api/v1/advanced/bookings/bulk", json=body, headers=user)
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code != 201:
                    raise RuntimeError(
                        f"booking {i} answered {response.status_code}: {response.text}"
                    )
                if len(response.json()["seats"]) != group:
                    raise RuntimeError("a booking got the wrong number of seats")
                timings.append(elapsed)
    return timings[0], timings[1:]


async def run(args: argparse.Namespace) -> int:
    async with scratch_app(args.pg_url, args.redis_url, "bulk") as app:
        first, timings = await measure(app, args.events, args.per_event, args.group)
        latency_ms = app.state.hub.settings.payment_latency_ms
    p99 = percentile(timings, 99)
    print(
        f"bulk bookings of {args.group} seats on a {SEATS:,}-seat venue, end to end (in process), "
        f"{len(timings)} timed after a first of {first:.1f} ms; payment latency "
        f"{latency_ms} ms"
    )
    print(
        f"  mean {statistics.fmean(timings):.1f}  p50 {percentile(timings, 50):.1f}  "
        f"p90 {percentile(timings, 90):.1f}  p99 {p99:.1f}  max {max(timings):.1f} ms"
    )
    met = p99 <= TARGET_P99_MS
    print(f"  p99 target {TARGET_P99_MS:.0f} ms: {'met' if met else 'MISSED'}")
    return 0 if met else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bulk")
    add_arguments(parser)
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
