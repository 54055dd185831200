"""``python -m tests.bench.analytics``: the analytics endpoints on a million bookings.

On the database at ``--database-url`` (seeded by ``tests.bench.seed_analytics`` first when it
has no bookings), an in-process hub (``create_app``, its lifespan, no leader loops, a private
Redis key prefix removed afterwards) is called through an ASGI transport as an admin —
routing, authentication, the query, the service, the engines, the encoding:

- each endpoint fresh (``?fresh=true``: computed from the rollups every time) and cached
  (the bytes from Redis), ``--calls`` timed calls each after one untimed, p50 and p99
  (nearest rank) against the targets (300 ms fresh, 10 ms cached);
- each rollup read the endpoints make (``hub.db.analytics``) next to the same answer
  computed from the raw bookings, tickets, holds and events, ``--scratch-runs`` runs each
  (the median), with a check that both give the same numbers: what the rollups buy.

Exits 1 when a target is missed or an answer differs.

    python -m tests.bench.analytics --database-url postgresql://postgres@127.0.0.1/analytics_bench
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import secrets
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import numpy as np
import redis.asyncio as aioredis

from hub.app import create_app
from hub.db import Connection
from hub.db import analytics as analytics_db
from hub.db.migrate import migrate
from hub.services import accounts
from hub.settings import Settings
from tests.bench import seed_analytics
from tests.bench.bulk import percentile
from tests.servers import LOCAL_REDIS_URL

FRESH_TARGET_MS = 300.0
CACHED_TARGET_MS = 10.0
PREFIX = "/api/v1/advanced/analytics"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--database-url", required=True, help="a database seeded with the history")
    p.add_argument("--redis-url", default=LOCAL_REDIS_URL)
    p.add_argument("--calls", type=int, default=20, help="timed calls per endpoint and mode")
    p.add_argument("--scratch-runs", type=int, default=3, help="runs per from-scratch query")
    p.add_argument("--bookings", type=int, default=1_000_000, help="to seed an empty database")
    p.add_argument("--skip-scratch", action="store_true", help="endpoints only")


def endpoints(now: dt.datetime) -> list[tuple[str, str]]:
    two_years = (now - dt.timedelta(days=730)).date().isoformat()
    return [
        ("trends hourly (30 days)", "/trends?period=hourly"),
        ("trends daily (30 days)", "/trends?period=daily"),
        ("trends daily (2 years)", f"/trends?period=daily&date_from={two_years}"),
        ("trends weekly (52 weeks)", "/trends?period=weekly"),
        ("trends monthly (12 months)", "/trends?period=monthly"),
        ("trends csv (daily, 2 years)", f"/trends?period=daily&format=csv&date_from={two_years}"),
        ("user-behavior", "/user-behavior"),
        ("predictions", "/predictions"),
        ("dashboard", "/dashboard"),
    ]


@dataclass
class Timing:
    name: str
    fresh: list[float]
    cached: list[float]

    def row(self) -> str:
        f50, f99 = percentile(self.fresh, 50), percentile(self.fresh, 99)
        c50, c99 = percentile(self.cached, 50), percentile(self.cached, 99)
        met = f99 <= FRESH_TARGET_MS and c99 <= CACHED_TARGET_MS
        return (
            f"| {self.name} | {f50:.1f} | {f99:.1f} | {c50:.2f} | {c99:.2f} | "
            f"{'met' if met else '**missed**'} |"
        )

    @property
    def met(self) -> bool:
        return (
            percentile(self.fresh, 99) <= FRESH_TARGET_MS
            and percentile(self.cached, 99) <= CACHED_TARGET_MS
        )


async def _timed_calls(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], calls: int
) -> list[float]:
    await _get(client, path, headers)  # untimed: first plan, first cache fill
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        await _get(client, path, headers)
        times.append((time.perf_counter() - started) * 1000)
    return times


async def _get(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> bytes:
    response = await client.get(PREFIX + path, headers=headers)
    if response.status_code != 200:
        raise RuntimeError(f"{path} answered {response.status_code}: {response.text[:300]}")
    return response.content


async def measure_endpoints(app: Any, calls: int) -> list[Timing]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=120) as c:
        email, password = f"bench-{secrets.token_hex(4)}@example.com", secrets.token_urlsafe(12)
        await accounts.ensure_admin(app.state.hub, email, password)
        login = await c.post("/api/v1/auth/login", json={"email": email, "password": password})
        login.raise_for_status()
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        timings = []
        for name, path in endpoints(dt.datetime.now(dt.UTC)):
            fresh_path = path + ("&" if "?" in path else "?") + "fresh=true"
            fresh = await _timed_calls(c, fresh_path, headers, calls)
            cached = await _timed_calls(c, path, headers, calls)
            timings.append(Timing(name, fresh, cached))
            print(f"  {timings[-1].row()}", flush=True)
    return timings


# --- the same numbers from the raw rows -------------------------------------------------------

# Per UTC hour: bookings made (their tickets and revenue), cancellations, holds placed.
_SCRATCH_HOURLY = """
WITH made AS (
    SELECT date_trunc('hour', b.created_at) AS hour, count(*) AS bookings,
           sum(t.n) AS tickets, sum(b.total_cents) AS revenue_cents
      FROM bookings b
      JOIN (SELECT booking_id, count(*) AS n FROM tickets GROUP BY booking_id) t
        ON t.booking_id = b.id
     GROUP BY 1
), cancelled AS (
    SELECT date_trunc('hour', cancelled_at) AS hour, count(*) AS cancellations
      FROM bookings WHERE cancelled_at IS NOT NULL GROUP BY 1
), held AS (
    SELECT date_trunc('hour', created_at) AS hour, count(*) AS holds FROM hold_log GROUP BY 1
), hours AS (
    SELECT hour, coalesce(m.bookings, 0) AS bookings, coalesce(m.tickets, 0) AS tickets,
           coalesce(m.revenue_cents, 0) AS revenue_cents,
           coalesce(c.cancellations, 0) AS cancellations, coalesce(h.holds, 0) AS holds
      FROM made m FULL JOIN cancelled c USING (hour) FULL JOIN held h USING (hour)
)
SELECT array_agg(extract(epoch FROM hour)::int8 ORDER BY hour) AS hour,
       array_agg(bookings::int8 ORDER BY hour) AS bookings,
       array_agg(tickets::int8 ORDER BY hour) AS tickets,
       array_agg(revenue_cents::int8 ORDER BY hour) AS revenue_cents,
       array_agg(cancellations::int8 ORDER BY hour) AS cancellations,
       array_agg(holds::int8 ORDER BY hour) AS holds
  FROM hours
"""
# Per hour of the week (0 = Monday 00:00 UTC): bookings made and cancellations.
_SCRATCH_CLOCK = """
WITH slots AS (
    SELECT ((date_part('epoch', date_trunc('hour', created_at))::int8 / 3600 - 96) % 168
            + 168) % 168 AS slot, 1 AS booked, 0 AS cancelled FROM bookings
    UNION ALL
    SELECT ((date_part('epoch', date_trunc('hour', cancelled_at))::int8 / 3600 - 96) % 168
            + 168) % 168, 0, 1 FROM bookings WHERE cancelled_at IS NOT NULL
)
SELECT array_agg(slot ORDER BY slot) AS slot, array_agg(b ORDER BY slot) AS bookings,
       array_agg(c ORDER BY slot) AS cancellations
  FROM (SELECT slot, sum(booked)::int8 AS b, sum(cancelled)::int8 AS c FROM slots
         GROUP BY slot) s
"""
# Per cohort (the month of a user's first booking) and month: the cohort's users booking then.
_SCRATCH_COHORTS = """
WITH months AS (
    SELECT user_id, date_trunc('month', created_at AT TIME ZONE 'UTC')::date AS month
      FROM bookings GROUP BY 1, 2
), cells AS (
    SELECT f.first_month, m.month, count(*)::int8 AS users
      FROM months m
      JOIN (SELECT user_id, min(month) AS first_month FROM months GROUP BY 1) f USING (user_id)
     GROUP BY 1, 2
)
SELECT array_agg((first_month - DATE '1970-01-01')::int8 * 86400 ORDER BY first_month, month)
           AS first_month,
       array_agg((month - DATE '1970-01-01')::int8 * 86400 ORDER BY first_month, month) AS month,
       array_agg(users ORDER BY first_month, month) AS users
  FROM cells
"""
_SCRATCH_USER_COUNTS = """
SELECT count(*) AS users, count(*) FILTER (WHERE n >= 2) AS repeat_users
  FROM (SELECT user_id, count(*) AS n FROM bookings GROUP BY user_id) u
"""
_SCRATCH_LEAD_DAYS = """
SELECT array_agg(d ORDER BY d) AS lead_days, array_agg(n ORDER BY d) AS bookings
  FROM (SELECT greatest(0, floor(extract(epoch FROM e.starts_at - b.created_at) / 86400))::int8
               AS d, count(*)::int8 AS n
          FROM bookings b JOIN events e ON e.id = b.event_id GROUP BY 1) x
"""
_SCRATCH_DAILY_BY_CATEGORY = """
SELECT min(d.name) AS category,
       array_agg(d.day * 86400 ORDER BY d.day) AS day,
       array_agg(d.bookings ORDER BY d.day) AS bookings,
       array_agg(d.revenue_cents ORDER BY d.day) AS revenue_cents
  FROM (SELECT lower(e.category) AS key, min(e.category) AS name,
               floor(date_part('epoch', b.created_at) / 86400)::int8 AS day,
               count(*)::int8 AS bookings, sum(b.total_cents)::int8 AS revenue_cents
          FROM bookings b JOIN events e ON e.id = b.event_id
         WHERE b.created_at >= $1 AND b.created_at < $2
         GROUP BY 1, 3) d
 GROUP BY d.key ORDER BY d.key
"""


def _arrays(row: Any, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    return {name: np.array(row[name] or [], dtype=np.int64) for name in names}


def _same(left: dict[str, np.ndarray], right: dict[str, np.ndarray]) -> bool:
    return left.keys() == right.keys() and all(np.array_equal(left[k], right[k]) for k in left)


@dataclass
class Comparison:
    name: str
    rollup_ms: float
    scratch_ms: float
    same: bool

    def row(self) -> str:
        return (
            f"| {self.name} | {self.rollup_ms:.1f} | {self.scratch_ms:.0f} | "
            f"{self.scratch_ms / max(self.rollup_ms, 1e-9):.0f}x | "
            f"{'yes' if self.same else '**NO**'} |"
        )


async def _median_ms(
    con: Connection, runs: int, read: Callable[[Connection], Awaitable[Any]]
) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = await read(con)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


async def compare_queries(url: str, runs: int) -> list[Comparison]:
    """Each rollup read of the reports next to the same numbers from the raw rows."""
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    since = today - dt.timedelta(days=3 * 365)
    hourly_cols = ("hour", "bookings", "tickets", "revenue_cents", "cancellations", "holds")

    async def rollup_hourly(con: Connection) -> dict[str, np.ndarray]:
        r = await analytics_db.hourly(con, None, None)
        return {name: getattr(r, name) for name in hourly_cols}

    async def scratch_hourly(con: Connection) -> dict[str, np.ndarray]:
        return _arrays(await con.fetchrow(_SCRATCH_HOURLY), hourly_cols)

    async def rollup_clock(con: Connection) -> dict[str, np.ndarray]:
        c = await analytics_db.clock(con)
        return {"slot": c.week_hour // 3600 - 96, "b": c.bookings, "c": c.cancellations}

    async def scratch_clock(con: Connection) -> dict[str, np.ndarray]:
        a = _arrays(await con.fetchrow(_SCRATCH_CLOCK), ("slot", "bookings", "cancellations"))
        return {"slot": a["slot"], "b": a["bookings"], "c": a["cancellations"]}

    async def rollup_cohorts(con: Connection) -> dict[str, np.ndarray]:
        c = await analytics_db.cohort_cells(con)
        return {"first_month": c.first_month, "month": c.month, "users": c.users}

    async def scratch_cohorts(con: Connection) -> dict[str, np.ndarray]:
        return _arrays(await con.fetchrow(_SCRATCH_COHORTS), ("first_month", "month", "users"))

    async def rollup_user_counts(con: Connection) -> dict[str, np.ndarray]:
        return {"counts": np.array(await analytics_db.user_counts(con))}

    async def scratch_user_counts(con: Connection) -> dict[str, np.ndarray]:
        row = await con.fetchrow(_SCRATCH_USER_COUNTS)
        return {"counts": np.array([row["users"], row["repeat_users"]])}

    async def rollup_lead(con: Connection) -> dict[str, np.ndarray]:
        days, bookings = await analytics_db.lead_days(con)
        return {"lead_days": days, "bookings": bookings}

    async def scratch_lead(con: Connection) -> dict[str, np.ndarray]:
        return _arrays(await con.fetchrow(_SCRATCH_LEAD_DAYS), ("lead_days", "bookings"))

    async def rollup_categories(con: Connection) -> dict[str, np.ndarray]:
        found = await analytics_db.daily_by_category(con, since, today)
        return {
            f"{name}.{col}": getattr(r, col)
            for name, r in found.items()
            for col in ("hour", "bookings", "revenue_cents")
        }

    async def scratch_categories(con: Connection) -> dict[str, np.ndarray]:
        out = {}
        for row in await con.fetch(_SCRATCH_DAILY_BY_CATEGORY, since, today):
            for col, key in (("hour", "day"), ("bookings", "bookings"), ("revenue_cents",) * 2):
                out[f"{row['category']}.{col}"] = np.array(row[key], dtype=np.int64)
        return out

    pairs = [
        ("every event per hour (trends, dashboard)", rollup_hourly, scratch_hourly),
        ("per hour of the week (user behaviour)", rollup_clock, scratch_clock),
        ("cohort cells (user behaviour, dashboard)", rollup_cohorts, scratch_cohorts),
        ("users and repeat users (user behaviour)", rollup_user_counts, scratch_user_counts),
        ("lead days (user behaviour)", rollup_lead, scratch_lead),
        ("per category and day, 3 years (predictions)", rollup_categories, scratch_categories),
    ]
    con = await asyncpg.connect(url)
    try:
        out = []
        for name, rollup, scratch in pairs:
            rollup_ms, a = await _median_ms(con, max(runs, 5), rollup)
            scratch_ms, b = await _median_ms(con, runs, scratch)
            out.append(Comparison(name, rollup_ms, scratch_ms, _same(a, b)))
            print(f"  {out[-1].row()}", flush=True)
        return out
    finally:
        await con.close()


async def drop_keys(redis_url: str, prefix: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        async for key in client.scan_iter(match=f"{prefix}*", count=1000):
            await client.delete(key)
    finally:
        await client.aclose()


async def run(args: argparse.Namespace) -> int:
    con = await asyncpg.connect(args.database_url)
    try:
        bookings = await con.fetchval("SELECT count(*) FROM bookings")
    except asyncpg.InvalidCatalogNameError:
        bookings = 0
    finally:
        await con.close()
    if not bookings:
        print(f"seeding {args.bookings:,} bookings first")
        report = await seed_analytics.seed(args.database_url, bookings=args.bookings)
        print("\n".join(report.lines()))
        bookings = args.bookings
    await migrate(args.database_url)
    print(f"{bookings:,} bookings in {args.database_url}")
    prefix = f"evently:analyticsbench{secrets.token_hex(4)}:"
    settings = Settings(
        database_url=args.database_url,
        redis_url=args.redis_url,
        secret_key=secrets.token_urlsafe(32),
        redis_prefix=prefix,
        rate_limits=False,
        log_format="json",
        log_level="warning",
    )
    print("| endpoint | fresh p50 ms | fresh p99 ms | cached p50 ms | cached p99 ms | targets |")
    print("|---|---:|---:|---:|---:|---|")
    app = create_app(settings, leader_loops=())
    try:
        async with app.router.lifespan_context(app):
            timings = await measure_endpoints(app, args.calls)
    finally:
        await drop_keys(args.redis_url, prefix)
    comparisons: list[Comparison] = []
    if not args.skip_scratch:
        print("| read | rollups ms | from scratch ms | ratio | same numbers |")
        print("|---|---:|---:|---:|---|")
        comparisons = await compare_queries(args.database_url, args.scratch_runs)
    ok = all(t.met for t in timings) and all(c.same for c in comparisons)
    print("all targets met" if ok else "a target was missed or an answer differs")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.analytics")
    add_arguments(parser)
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
