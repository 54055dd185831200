"""The race test: hundreds of buyers over real HTTP against two hub worker processes.

200+ concurrent clients contend for 50 seats with single holds, group holds, confirms,
one-call bookings, releases and cancels. Afterwards PostgreSQL and Redis are audited: no
seat has two active tickets, sold + free + held = capacity, and Redis agrees with
PostgreSQL seat by seat. The control run drops the partial unique index on the run's own
database and lets the one-call bookings of named seats be written by the test itself,
straight into PostgreSQL without asking Redis (both guards off, nothing of it in ``hub/``);
the same audit must then find a double sale — proof that the test can see one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from engines.seats import SeatCode
from hub.auth import Role, issue_token
from hub.inventory import Inventory
from hub.store import Store
from tests.conftest import SECRET, Account
from tests.factories import make_event
from tests.live import free_port
from tests.servers import TestServers, run_token, scratch_database

pytestmark = pytest.mark.slow

CLIENTS = 220


class Unguarded:
    """TEST-ONLY seller for the control run: writes a booking of named seats straight into
    PostgreSQL, asking nobody whether the seats are free (no hold, no Redis), on a database
    whose partial unique index on active tickets has been dropped (no last guard)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    @contextlib.asynccontextmanager
    async def on(cls, database_url: str) -> AsyncIterator[Unguarded]:
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=8)
        try:
            async with pool.acquire() as con:
                await con.execute("DROP INDEX IF EXISTS tickets_one_active_per_seat")
            yield cls(pool)
        finally:
            await pool.close()

    async def sell(self, who: Account, event_id: str, seat_ids: list[str]) -> int:
        async with self.pool.acquire() as con, con.transaction():
            booking_id = await con.fetchval(
                "INSERT INTO bookings (reference, event_id, user_id, subtotal_cents, total_cents) "
                "VALUES ($1, $2, $3, 0, 0) RETURNING id",
                "UNG-" + uuid.uuid4().hex[:12].upper(),
                uuid.UUID(event_id),
                uuid.UUID(who.id),
            )
            await con.execute(
                "INSERT INTO tickets (booking_id, event_id, seat_id, price_cents) "
                "SELECT $1, $2, seat, 0 FROM unnest($3::uuid[]) AS seat",
                booking_id,
                uuid.UUID(event_id),
                [uuid.UUID(s) for s in seat_ids],
            )
        return 201


Sell = Callable[[Account, str, list[str]], Awaitable[int]]
EXPECTED = {200, 201, 204, 402, 404, 409, 410, 422, 503}
FREE, HELD, SOLD = SeatCode.FREE, SeatCode.HELD, SeatCode.SOLD


@dataclass
class Hub:
    base: str
    database_url: str
    redis_url: str
    prefix: str


RACE_ADMIN = ("race-admin@example.com", "race admin password")


@contextlib.asynccontextmanager
async def running_hub(servers: TestServers, home: Path) -> AsyncIterator[Hub]:
    """``evently serve --workers 2`` on a database of its own (the control run drops an index)."""
    async with scratch_database(servers, "evently_race") as database_url:
        prefix = f"evently:race{run_token()}:"
        port = free_port()
        env = {
            **os.environ,
            "EVENTLY_DATABASE_URL": database_url,
            "EVENTLY_REDIS_URL": servers.redis_url,
            "EVENTLY_SECRET_KEY": SECRET,
            "EVENTLY_REDIS_PREFIX": prefix,
            "EVENTLY_RATE_LIMITS": "off",
            "EVENTLY_HOME": str(home),
            "EVENTLY_LOG_LEVEL": "error",
            "EVENTLY_LOG_FORMAT": "json",
            "EVENTLY_PAYMENT_LATENCY_MS": "5",  # widen the window between check and write
            "EVENTLY_DB_POOL_MAX": "10",
            "EVENTLY_DB_POOL_MIN": "1",
            # The admin must exist through the hub (roles are read per request from each
            # process's standing set, kept current by the hub's own writes).
            "EVENTLY_ADMIN_EMAIL": RACE_ADMIN[0],
            "EVENTLY_ADMIN_PASSWORD": RACE_ADMIN[1],
        }
        command = [sys.executable, "-m", "hub.cli", "serve", "--workers", "2", "--port", str(port)]
        proc = subprocess.Popen(  # noqa: ASYNC220 - started once, stopped by PID below
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        base = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient() as http:
                for _ in range(300):
                    with contextlib.suppress(httpx.HTTPError):
                        if (await http.get(f"{base}/readyz")).status_code == 200:
                            break
                    assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                    await asyncio.sleep(0.1)
            yield Hub(base, database_url, servers.redis_url, prefix)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            store = Store.connect(servers.redis_url, prefix=prefix, max_connections=4)
            async for key in store.client.scan_iter(match=f"{prefix}*", count=1000):
                await store.client.delete(key)
            await store.close()


async def _accounts(database_url: str, n: int) -> tuple[Account, list[Account]]:
    """An admin and ``n`` buyers, made in SQL with tokens signed directly (no slow hashing)."""
    con = await asyncpg.connect(database_url)
    try:
        rows = await con.fetch(
            "INSERT INTO users (email, name, password_hash, role) "
            "SELECT 'race-' || g || '-' || $2 || '@example.com', 'Buyer ' || g, 'x', "
            "CASE WHEN g = 0 THEN 'admin' ELSE 'user' END "
            "FROM generate_series(0, $1) AS g RETURNING id, email, role",
            n,
            uuid.uuid4().hex[:6],
        )
    finally:
        await con.close()
    accounts = [
        Account(str(r["id"]), r["email"], "x", issue_token(SECRET, r["id"], Role(r["role"]), 3600))
        for r in rows
    ]
    admin = next(a for a, r in zip(accounts, rows, strict=True) if r["role"] == "admin")
    return admin, [a for a in accounts if a is not admin]


@dataclass
class Tally:
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    hold_ms: list[float] = field(default_factory=list)
    book_ms: list[float] = field(default_factory=list)

    def note(self, what: str, response: httpx.Response, started: float) -> httpx.Response:
        self.statuses[(what, response.status_code)] += 1
        elapsed = (time.perf_counter() - started) * 1000
        if what == "hold" and response.status_code == 201:
            self.hold_ms.append(elapsed)
        if what in ("confirm", "book") and response.status_code == 201:
            self.book_ms.append(elapsed)
        return response


async def _buyer(
    http: httpx.AsyncClient,
    who: Account,
    event_id: str,
    seat_ids: list[str],
    rng: random.Random,
    tally: Tally,
    go: asyncio.Event,
    sell: Sell | None = None,
) -> None:
    headers = who.headers
    api = "/api/v1"

    async def call(what: str, method: str, url: str, body: Any = None) -> httpx.Response:
        started = time.perf_counter()
        response = await http.request(method, f"{api}{url}", json=body, headers=headers)
        return tally.note(what, response, started)

    await go.wait()
    for _ in range(2):
        kind = rng.random()
        booking: dict[str, Any] | None = None
        if kind < 0.3:  # single hold of named seats, then confirm or release
            held = await call(
                "hold",
                "POST",
                f"/events/{event_id}/holds",
                {"seat_ids": rng.sample(seat_ids, rng.randint(1, 2))},
            )
            if held.status_code == 201:
                if rng.random() < 0.2:
                    await call("release", "DELETE", f"/holds/{held.json()['hold_id']}")
                else:
                    done = await call(
                        "confirm", "POST", "/bookings", {"hold_id": held.json()["hold_id"]}
                    )
                    booking = done.json() if done.status_code == 201 else None
        elif kind < 0.5:  # group hold, best available, then confirm
            held = await call(
                "hold", "POST", f"/events/{event_id}/holds", {"quantity": rng.randint(2, 4)}
            )
            if held.status_code == 201:
                done = await call(
                    "confirm", "POST", "/bookings", {"hold_id": held.json()["hold_id"]}
                )
                booking = done.json() if done.status_code == 201 else None
        elif kind < 0.8:  # hold and confirm in one call, named seats
            chosen = rng.sample(seat_ids, rng.randint(1, 2))
            if sell is not None:  # the control run: written around both guards
                tally.statuses[("unguarded", await sell(who, event_id, chosen))] += 1
                continue
            done = await call(
                "book", "POST", "/bookings", {"event_id": event_id, "seat_ids": chosen}
            )
            booking = done.json() if done.status_code == 201 else None
        else:  # hold and confirm in one call, best available
            done = await call(
                "book", "POST", "/bookings", {"event_id": event_id, "quantity": rng.randint(1, 3)}
            )
            booking = done.json() if done.status_code == 201 else None
        if booking is not None and rng.random() < 0.25:
            await call("cancel", "POST", f"/bookings/{booking['id']}/cancel")


@dataclass
class Audit:
    double_sold: int
    sold_pg: set[int]
    states: bytes
    held_by_holds: list[int]
    availability: dict[str, int]  # what the API tells buyers


async def _audit(hub: Hub, event_id: str) -> Audit:
    con = await asyncpg.connect(hub.database_url)
    try:
        double = await con.fetchval(
            "SELECT count(*) FROM (SELECT seat_id FROM tickets WHERE event_id = $1 AND active "
            "GROUP BY seat_id HAVING count(*) > 1) d",
            uuid.UUID(event_id),
        )
        sold = {
            r["idx"]
            for r in await con.fetch(
                "SELECT s.idx FROM tickets t JOIN seats s ON s.id = t.seat_id "
                "WHERE t.event_id = $1 AND t.active",
                uuid.UUID(event_id),
            )
        }
    finally:
        await con.close()
    store = Store.connect(hub.redis_url, prefix=hub.prefix, max_connections=4)
    try:
        inventory = Inventory(store.client, store.keys)
        snapshot = await inventory.snapshot(uuid.UUID(event_id))
        assert snapshot is not None
        held: list[int] = []
        for hold_id in await inventory.hold_ids(uuid.UUID(event_id)):
            record = await inventory.get_hold(uuid.UUID(event_id), hold_id)
            if record is not None:
                held.extend(record.seats)
    finally:
        await store.close()
    async with httpx.AsyncClient(base_url=hub.base) as http:
        availability = (await http.get(f"/api/v1/events/{event_id}")).json()["availability"]
    return Audit(int(double), sold, snapshot[1], held, availability)


async def _contend(hub: Hub, sell: Sell | None = None) -> tuple[str, Tally]:
    _, buyers = await _accounts(hub.database_url, CLIENTS)
    limits = httpx.Limits(max_connections=CLIENTS + 20, max_keepalive_connections=CLIENTS + 20)
    async with httpx.AsyncClient(base_url=hub.base, limits=limits, timeout=60) as http:
        login = await http.post(
            "/api/v1/auth/login", json={"email": RACE_ADMIN[0], "password": RACE_ADMIN[1]}
        )
        assert login.status_code == 200, login.text
        admin = Account(
            login.json()["user"]["id"], RACE_ADMIN[0], RACE_ADMIN[1], login.json()["access_token"]
        )
        event = await make_event(http, admin, rows=5, seats_per_row=5)  # 2 x 25 = 50 seats
        seats = (await http.get(f"/api/v1/events/{event['id']}/seats")).json()["seats"]
        seat_ids = [s["id"] for s in seats]
        assert len(seat_ids) == 50
        tally = Tally()
        go = asyncio.Event()
        rng = random.Random(20240611)
        tasks = [
            asyncio.create_task(
                _buyer(
                    http, buyer, event["id"], seat_ids, random.Random(rng.random()), tally, go, sell
                )
            )
            for buyer in buyers
        ]
        await asyncio.sleep(0.05)
        go.set()
        await asyncio.gather(*tasks)
    return event["id"], tally


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def test_no_double_sale_under_contention(servers: TestServers, tmp_path: Path) -> None:
    async with running_hub(servers, tmp_path) as hub:
        event_id, tally = await _contend(hub)
        audit = await _audit(hub, event_id)
    print(
        f"\nrace: {sorted(tally.statuses.items())}\n"
        f"hold p50 {_pct(tally.hold_ms, 0.5):.1f} ms p95 {_pct(tally.hold_ms, 0.95):.1f} ms; "
        f"book p50 {_pct(tally.book_ms, 0.5):.1f} ms p95 {_pct(tally.book_ms, 0.95):.1f} ms; "
        f"sold {len(audit.sold_pg)} held {audit.states.count(HELD)} free {audit.states.count(FREE)}"
    )
    unexpected = {k: v for k, v in tally.statuses.items() if k[1] not in EXPECTED}
    assert not unexpected, unexpected  # never a 500, never a hang
    assert tally.statuses[("confirm", 201)] + tally.statuses[("book", 201)] > 0
    assert sum(v for (_, code), v in tally.statuses.items() if code == 409) > 0  # real contention
    assert audit.double_sold == 0
    states = audit.states
    assert len(states) == 50 and set(states) <= set(SeatCode)
    # What buyers are told adds up to the venue, and agrees with the seat state seat by seat.
    shown = audit.availability
    assert shown["available"] + shown["held"] + shown["sold"] == shown["total"] == 50, shown
    assert (shown["available"], shown["held"], shown["sold"]) == (
        states.count(FREE),
        states.count(HELD),
        states.count(SOLD),
    ), shown
    assert {i for i, code in enumerate(states) if code == SOLD} == audit.sold_pg  # Redis == PG
    assert sorted(i for i, code in enumerate(states) if code == HELD) == sorted(audit.held_by_holds)
    assert len(audit.held_by_holds) == len(set(audit.held_by_holds))  # no seat in two holds


async def test_control_run_without_guards_finds_a_double_sale(
    servers: TestServers, tmp_path: Path
) -> None:
    async with running_hub(servers, tmp_path) as hub, Unguarded.on(hub.database_url) as unguarded:
        event_id, tally = await _contend(hub, unguarded.sell)
        audit = await _audit(hub, event_id)
    print(f"\ncontrol: {audit.double_sold} seats sold twice; {sorted(tally.statuses.items())}")
    assert audit.double_sold > 0
