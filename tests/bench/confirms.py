"""``python -m tests.bench.confirms``: confirmations end to end, one buyer and several at once.

Through the hub's HTTP stack in process, like ``tests.bench.bulk`` (the app on the local
PostgreSQL and Redis, a fresh database and key prefix of its own, dropped afterwards, an
ASGI transport): each buyer holds 2 seats, then confirms the hold with an
``Idempotency-Key`` (the idempotency claim, the begin-confirm script, the payment, the
booking's transaction, the finish script), and only the confirmation is timed. For each
concurrency in ``--concurrency`` it prints confirmations a second, their latency and the
process's CPU time per confirmation (this process is the hub and its client both, so the
CPU figure compares trees, it is not the hub's alone).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
from typing import Any

import httpx

from loadtest.launch import LOCAL_PG, LOCAL_REDIS
from loadtest.surge import venue_sections
from tests.bench.bulk import _admin_headers, percentile
from tests.bench.in_process import scratch_app

SEATS = 20_000
WARM_UP = 20  # confirmations before the timed ones of a level


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pg-url", default=LOCAL_PG, help="PostgreSQL server to make a database on")
    p.add_argument("--redis-url", default=LOCAL_REDIS)
    p.add_argument("--concurrency", default="1,8", help="buyers confirming at once, one level each")
    p.add_argument(
        "--confirms", type=int, default=400, help="confirmations timed per level (at most 480)"
    )


async def _buyer(c: httpx.AsyncClient, n: int) -> dict[str, str]:
    register = await c.post(
        "/api/v1/auth/register",
        json={"email": f"buyer{n}-{secrets.token_hex(4)}@example.com",
              "password": "correct horse battery", "name": f"Buyer {n}"},
    )  # fmt: skip
    register.raise_for_status()
    return {"Authorization": f"Bearer {register.json()['access_token']}"}


async def _event(c: httpx.AsyncClient, admin: dict[str, str]) -> str:
    venue = await c.post(
        "/api/v1/venues",
        json={"name": "Confirm arena", "city": "Porto", "sections": venue_sections(SEATS)},
        headers=admin,
    )
    venue.raise_for_status()
    event = await c.post(
        "/api/v1/events",
        json={"name": f"Confirms {secrets.token_hex(3)}", "category": "concert",
              "venue_id": venue.json()["id"], "starts_at": "2099-01-01T20:00:00Z",
              "max_tickets_per_user": 1000},
        headers=admin,
    )  # fmt: skip
    event.raise_for_status()
    return str(event.json()["id"])


async def _confirm_once(c: httpx.AsyncClient, who: dict[str, str], event_id: str) -> float:
    """Hold 2 seats, then confirm; returns the confirmation's time in ms."""
    held = await c.post(f"/api/v1/events/{event_id}/holds", json={"quantity": 2}, headers=who)
    if held.status_code != 201:
        raise RuntimeError(f"hold answered {held.status_code}: {held.text}")
    hold_id = held.json()["hold_id"]
    headers = {**who, "Idempotency-Key": f"bench-{hold_id}"}
    started = time.perf_counter()
    booked = await c.post("/api/v1/bookings", json={"hold_id": hold_id}, headers=headers)
    elapsed = (time.perf_counter() - started) * 1000
    if booked.status_code != 201:
        raise RuntimeError(f"confirm answered {booked.status_code}: {booked.text}")
    return elapsed


async def _level(
    c: httpx.AsyncClient, buyers: list[dict[str, str]], event_id: str, confirms: int
) -> dict[str, Any]:
    per_buyer = max(confirms // len(buyers), 1)
    timings: list[float] = []

    async def one(who: dict[str, str], count: int) -> None:
        for _ in range(count):
            timings.append(await _confirm_once(c, who, event_id))

    await one(buyers[0], WARM_UP)  # caches, prepared statements, pooled connections
    timings.clear()
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(who, per_buyer) for who in buyers))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "concurrency": len(buyers),
        "confirms": len(timings),
        "per_second": len(timings) / wall,
        "p50": percentile(timings, 50),
        "p99": percentile(timings, 99),
        "cpu_ms": cpu * 1000 / len(timings),
    }


async def run(args: argparse.Namespace) -> int:
    levels = [int(n) for n in args.concurrency.split(",")]
    async with scratch_app(args.pg_url, args.redis_url, "confirms") as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=60) as c:
            admin = await _admin_headers(c, app)
            buyers = [await _buyer(c, n) for n in range(max(levels))]
            results = []
            for level in levels:
                event_id = await _event(c, admin)
                results.append(await _level(c, buyers[:level], event_id, args.confirms))
    print("confirmations end to end (in process), holds of 2 seats, with an Idempotency-Key")
    for r in results:
        print(
            f"  {r['concurrency']:>3} at once: {r['confirms']} confirms, "
            f"{r['per_second']:.0f}/s, p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms, "
            f"CPU {r['cpu_ms']:.2f} ms per hold and confirmation"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.confirms")
    add_arguments(parser)
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
