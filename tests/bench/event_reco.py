"""``python -m tests.bench.event_reco``: event recommendations end to end, in process.

Seeds a scratch database (created on the given PostgreSQL server, migrated, dropped after)
with the offline evaluation's world of planted tastes (``engines.recommend_eval``, as
``loadtest.bench_engines recommend`` uses it: by default 50,000 users x 5,000 events, about
1,000,000 bookings), moved in time so that its "now" is the database's: users, venues with
one section and as many seats as their busiest event needs, events with a price, and every
booking with one ticket on its own seat, written by ``COPY`` (tickets by one ``INSERT ...
SELECT``). Then it times, on the local Redis under a private prefix:

- the leader's build and store (``build_and_publish``: read the catalogue and the bookings,
  build the model, encode it, store it in Redis), in this process, with its phases; and once
  more through the offload child as the leader runs it (``rebuild``: the child's start
  included);
- a hub process's first request, which loads the stored model from Redis;
- ``--requests`` calls of the service (``recommend_events``, limit 10) for distinct users
  (every one a cache miss: Redis read, the user's history, the engine, the closed-events
  check, the cache write), then as many through the HTTP endpoint (routing, token, body,
  JSON) for other distinct users, then those users again (cache hits).

Prints each figure and whether the targets hold (build <= 60 s, p99 per request <= 20 ms);
exits 1 when one is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import inspect
import secrets
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
import httpx
import numpy as np

from engines.recommend_eval import EPOCH, World, generate_world
from hub.app import create_app
from hub.auth import issue_token
from hub.context import open_hub
from hub.db.migrate import create_migrated, drop_database
from hub.services import event_recommendations as reco
from hub.settings import Settings
from hub.tokens import Role
from loadtest.launch import LOCAL_PG, LOCAL_REDIS, _drop_keys

BUILD_TARGET_S = 60.0
REQUEST_TARGET_MS = 20.0
BOOKING_DAYS = 240
PATH = "/api/v1/advanced/events/recommendations"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pg-url", default=LOCAL_PG, help="PostgreSQL server to make a database on")
    p.add_argument("--redis-url", default=LOCAL_REDIS)
    p.add_argument("--users", type=int, default=50_000)
    p.add_argument("--events", type=int, default=5_000)
    p.add_argument(
        "--mean-bookings", type=float, default=21.0, help="per user (21: about 1,000,000)"
    )
    p.add_argument("--requests", type=int, default=2_000, help="per measured series")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--no-offload", action="store_true", help="skip the build through the offload child"
    )


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of ``values`` (0 < q <= 100)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def _line(name: str, ms: list[float]) -> str:
    return (
        f"{name:34s} n={len(ms):5d}  mean {statistics.fmean(ms):6.2f}  "
        f"p50 {percentile(ms, 50):6.2f}  p90 {percentile(ms, 90):6.2f}  "
        f"p99 {percentile(ms, 99):6.2f}  max {max(ms):7.2f} ms"
    )


# --- seeding ---------------------------------------------------------------------------------


async def seed(url: str, world: World, shift: dt.timedelta) -> dict[str, uuid.UUID]:
    """Write the world into the scratch database; returns each world user's id."""
    events = world.events
    event_index = {event.event_id: i for i, event in enumerate(events)}
    event_ids = [uuid.uuid4() for _ in events]
    users = sorted({booking.user_id for booking in world.bookings} | set(world.tastes))
    user_ids = {user: uuid.uuid4() for user in users}
    venues = sorted({event.venue_id for event in events})
    venue_ids = {venue: uuid.uuid4() for venue in venues}
    venue_names = {event.venue_id: event.venue_name for event in events}
    per_event = np.bincount(
        [event_index[b.event_id] for b in world.bookings], minlength=len(events)
    )
    capacity = dict.fromkeys(venues, 1)
    for i, event in enumerate(events):
        capacity[event.venue_id] = max(capacity[event.venue_id], int(per_event[i]) + 1)
    con = await asyncpg.connect(url)
    try:
        # The rows are consistent by construction: no foreign-key trigger per row (a scratch
        # database, and the connection is the server's superuser's).
        await con.execute("SET session_replication_role = replica")
        await con.copy_records_to_table(
            "users",
            records=[(user_ids[u], f"{u}@bench.invalid", u, "-") for u in users],
            columns=["id", "email", "name", "password_hash"],
        )
        await con.copy_records_to_table(
            "venues",
            records=[(venue_ids[v], venue_names[v], "Bench", capacity[v]) for v in venues],
            columns=["id", "name", "city", "capacity"],
        )
        await con.copy_records_to_table(
            "venue_sections",
            records=[(venue_ids[v], "Main", 0, 5_000) for v in venues],
            columns=["venue_id", "name", "position", "base_price_cents"],
        )
        await con.execute(
            """INSERT INTO seats (venue_id, idx, section, row_label, number, x, y, distance)
               SELECT v.id, g, 'Main', (g / 50)::text, g % 50 + 1, g % 50, g / 50, g / 50
                 FROM venues v, generate_series(0, v.capacity - 1) g"""
        )
        await con.copy_records_to_table(
            "events",
            records=[
                (
                    event_ids[i],
                    venue_ids[e.venue_id],
                    e.name,
                    e.category,
                    list(e.keywords),
                    e.starts_at + shift,
                )
                for i, e in enumerate(events)
            ],
            columns=["id", "venue_id", "name", "category", "keywords", "starts_at"],
        )
        await con.copy_records_to_table(
            "event_prices",
            records=[(event_ids[i], "Main", e.price_cents, e.price_cents)
                     for i, e in enumerate(events)],
            columns=["event_id", "section", "base_price_cents", "current_price_cents"],
        )  # fmt: skip
        await con.copy_records_to_table(
            "bookings",
            records=(
                (f"B{n:08d}", event_ids[event_index[b.event_id]], user_ids[b.user_id],
                 3_000, 3_000, b.booked_at + shift)
                for n, b in enumerate(world.bookings)
            ),
            columns=["reference", "event_id", "user_id", "subtotal_cents", "total_cents",
                     "created_at"],
        )  # fmt: skip
        # One ticket per booking, on the seat numbered by the booking's rank in its event.
        await con.execute(
            """INSERT INTO tickets (booking_id, event_id, seat_id, price_cents)
               SELECT b.id, b.event_id, s.id, b.total_cents
                 FROM (SELECT id, event_id, total_cents,
                              row_number() OVER (PARTITION BY event_id ORDER BY id) - 1 AS k
                         FROM bookings) b
                 JOIN events e ON e.id = b.event_id
                 JOIN seats s ON s.venue_id = e.venue_id AND s.idx = b.k"""
        )
        # As autovacuum would leave them: statistics, and a visibility map for the
        # index-only counts of a venue's active tickets.
        await con.execute("VACUUM ANALYZE")
    finally:
        await con.close()
    return user_ids


# --- timing ----------------------------------------------------------------------------------

#: The steps of a build, each timed on its own (module attributes the service looks up).
_PHASES: tuple[tuple[str, Any, str], ...] = (
    ("catalogue", reco.reco_db, "catalogue"),
    ("read", reco, "_read_inputs"),
    ("build+encode", reco, "_build"),
    ("store", reco, "_publish"),
)


@contextlib.contextmanager
def _timed_phases(spent: dict[str, float]) -> Iterator[None]:
    saved = [(phase, module, name, getattr(module, name)) for phase, module, name in _PHASES]

    def wrap(phase: str, step: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            out = step(*args, **kwargs)
            if not inspect.isawaitable(out):
                spent[phase] = spent.get(phase, 0.0) + time.perf_counter() - started
                return out

            async def waited() -> Any:
                try:
                    return await out
                finally:
                    spent[phase] = spent.get(phase, 0.0) + time.perf_counter() - started

            return waited()

        return timed

    for phase, module, name, step in saved:
        setattr(module, name, wrap(phase, step))
    try:
        yield
    finally:
        for _, module, name, step in saved:
            setattr(module, name, step)


async def _time_builds(settings: Settings, offload: bool) -> bool:
    async with open_hub(settings) as hub:
        spent: dict[str, float] = {}
        with _timed_phases(spent):
            started = time.perf_counter()
            version = await reco.build_and_publish(hub, reco.Builder.LEADER, True)
            seconds = time.perf_counter() - started
        size = await hub.store.client.strlen(hub.store.keys.global_(f"reco:model:{version}"))
        phases = ", ".join(f"{name} {value:.1f} s" for name, value in spent.items())
        print(f"build and store, in process: {seconds:.1f} s ({phases}); model {size / 1e6:.1f} MB")
        met = seconds <= BUILD_TARGET_S
        if offload:
            started = time.perf_counter()
            await reco.rebuild(hub, by=reco.Builder.LEADER, replace=True)
            child = time.perf_counter() - started
            print(f"build and store, offload child (its start included): {child:.1f} s")
            met = met and child <= BUILD_TARGET_S
    print(f"  build target {BUILD_TARGET_S:.0f} s: {'met' if met else 'MISSED'}")
    return met


async def _time_requests(
    settings: Settings, user_ids: dict[str, uuid.UUID], requests: int, seed: int
) -> bool:
    rng = np.random.default_rng(seed)
    users = [user_ids[u] for u in sorted(user_ids)]
    chosen = [users[i] for i in rng.permutation(len(users))[: 2 * requests]]
    service_users, http_users = chosen[:requests], chosen[requests:]
    app = create_app(settings, leader_loops=())
    async with app.router.lifespan_context(app):
        hub = app.state.hub
        started = time.perf_counter()
        await reco.recommend_events(hub, service_users[0])
        loaded = (time.perf_counter() - started) * 1000
        print(f"first request (loads the model from Redis): {loaded:.0f} ms")
        gc.collect()
        service: list[float] = []
        for user in service_users[1:]:
            started = time.perf_counter()
            await reco.recommend_events(hub, user)
            service.append((time.perf_counter() - started) * 1000)
        tokens = {
            u: issue_token(settings.secret_key or "", u, Role.USER, 3_600) for u in http_users
        }
        transport = httpx.ASGITransport(app=app)
        misses: list[float] = []
        hits: list[float] = []
        methods: dict[str, int] = {}
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for series in (misses, hits):
                for user in http_users:
                    headers = {"Authorization": f"Bearer {tokens[user]}"}
                    started = time.perf_counter()
                    response = await client.post(PATH, json={}, headers=headers)
                    series.append((time.perf_counter() - started) * 1000)
                    if response.status_code != 200:
                        raise RuntimeError(f"{response.status_code}: {response.text}")
                    if series is misses:
                        for item in response.json()["recommendations"][:1]:
                            methods[item["method"]] = methods.get(item["method"], 0) + 1
    print(_line("service, cache misses", service))
    print(_line("endpoint (ASGI), cache misses", misses))
    print(_line("endpoint (ASGI), cache hits", hits))
    print(f"  method of the first result (endpoint misses): {methods}")
    met = max(percentile(service, 99), percentile(misses, 99)) <= REQUEST_TARGET_MS
    print(f"  p99 target {REQUEST_TARGET_MS:.0f} ms: {'met' if met else 'MISSED'}")
    return met


async def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    world = generate_world(
        np.random.default_rng(args.seed),
        users=args.users,
        events=args.events,
        mean_bookings=args.mean_bookings,
        booking_days=BOOKING_DAYS,
    )
    generated = time.perf_counter() - started
    token = secrets.token_hex(4)
    prefix = f"evently:recobench{token}:"
    database_url = await create_migrated(args.pg_url, f"evently_reco_{token}")
    try:
        con = await asyncpg.connect(database_url)
        now = await con.fetchval("SELECT now()")
        await con.close()
        # The world's "now" (its last booking day) becomes the database's.
        shift = now - (EPOCH + dt.timedelta(days=BOOKING_DAYS))
        started = time.perf_counter()
        user_ids = await seed(database_url, world, shift)
        print(
            f"world: {args.users:,} users x {args.events:,} events, {len(world.bookings):,} "
            f"bookings (generated in {generated:.0f} s, seeded in "
            f"{time.perf_counter() - started:.0f} s)"
        )
        del world
        gc.collect()
        settings = Settings(
            database_url=database_url,
            redis_url=args.redis_url,
            secret_key=secrets.token_urlsafe(32),
            redis_prefix=prefix,
            rate_limits=False,
            log_format="json",
            log_level="warning",
        )
        built = await _time_builds(settings, not args.no_offload)
        served = await _time_requests(settings, user_ids, args.requests, args.seed)
    finally:
        await drop_database(args.pg_url, database_url)
        await _drop_keys(args.redis_url, prefix)
    return 0 if built and served else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.event_reco")
    add_arguments(parser)
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
