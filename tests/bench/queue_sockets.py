"""``python -m tests.bench.queue_sockets``: N waiting-room waiters connected to one hub process.

A hub in a process of its own (one uvicorn worker) on the local PostgreSQL and Redis (a
fresh database and key prefix, dropped afterwards). An event gets a waiting room that has
opened but admits next to nobody (``admit_per_second`` 0.001), so everyone stays waiting
with a position. ``--waiters`` users (seeded straight into PostgreSQL, tokens issued with
the hub's code) join its queue over HTTP, then each opens ``/ws/events/{id}`` (msgpack) and
says ``hello`` with its token. This process reads every socket and records when each
``queue`` message arrives.

Prints the hub process's RSS before the sockets and with all of them open (and the cost
per socket), ``queue`` messages received per waiter per second, and the longest gap
between two ``queue`` messages of one waiter (the contract: at most 2 s). Exits 1 if a
socket failed, a waiter heard nothing, the longest gap passed 2 s or the RSS passed
``--max-rss-mb`` (300).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import secrets
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgpack
import psutil
from websockets.asyncio.client import ClientConnection, connect

from hub.settings import Settings
from loadtest.accounts import seed_buyers
from loadtest.surge import create_event
from tests.live import hub_process
from tests.servers import find_servers, scratch_database

ADMIN_EMAIL = "queue-bench-admin@example.com"
ADMIN_PASSWORD = "queue bench admin password"


def _rss_mb(pid: int) -> float:
    """RSS of the serving process alone (its children, e.g. the offload child, apart)."""
    return float(psutil.Process(pid).memory_info().rss) / 2**20


def _children_mb(pid: int) -> float:
    children = psutil.Process(pid).children(recursive=True)
    return sum(float(c.memory_info().rss) for c in children) / 2**20


class Waiter:
    __slots__ = ("arrivals", "ws")

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.arrivals: list[float] = []

    async def read(self) -> None:
        async for frame in self.ws:
            message = msgpack.unpackb(frame)
            if message.get("t") == "queue":
                self.arrivals.append(time.monotonic())


async def _join_all(base: str, event_id: str, tokens: list[str]) -> None:
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        sem = asyncio.Semaphore(32)

        async def join(token: str) -> None:
            async with sem:
                reply = await client.post(
                    f"/api/v1/events/{event_id}/queue",
                    headers={"Authorization": f"Bearer {token}"},
                )
                reply.raise_for_status()

        await asyncio.gather(*(join(t) for t in tokens))


async def _open(url: str, token: str) -> Waiter:
    ws = await connect(url, subprotocols=["evently.v1.msgpack"], compression=None)  # type: ignore[list-item]
    await ws.send(msgpack.packb({"t": "hello", "token": token}))
    return Waiter(ws)


@contextlib.asynccontextmanager
async def scratch_hub(name: str, **overrides: str) -> AsyncIterator[tuple[Any, str, str]]:
    """A hub in a process of its own (one worker, rate limits off) on a fresh database and
    key prefix named after ``name``, dropped afterwards; yields the hub, its database URL
    and its signing key (to seed accounts and issue their tokens)."""
    servers = find_servers()
    token = secrets.token_hex(4)
    secret = secrets.token_urlsafe(48)
    try:
        async with scratch_database(servers, f"evently_{name}") as database_url:
            settings = Settings(
                database_url=database_url,
                redis_url=servers.redis_url,
                secret_key=secret,
                redis_prefix=f"evently:{name}{token}:",
                rate_limits=False,
                pricing_interval_seconds=86_400.0,
            )
            admin = {"admin_email": ADMIN_EMAIL, "admin_password": ADMIN_PASSWORD}
            async with hub_process(
                settings, **admin, max_inflight_requests="256", **overrides
            ) as hub:
                yield hub, database_url, secret
    finally:
        servers.stop()


async def event_with_room(hub: Any, room: dict[str, Any]) -> str:
    """A new event (100 seats) with a waiting room turned on as ``room`` says; its id."""
    event_id = await asyncio.to_thread(create_event, hub.base, ADMIN_EMAIL, ADMIN_PASSWORD, 100, 10)
    async with httpx.AsyncClient(base_url=hub.base, timeout=60) as client:
        login = await client.post(
            "/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
        made = await client.put(f"/api/v1/events/{event_id}/waiting-room", json=room, headers=admin)
        made.raise_for_status()
    return event_id


async def bench(args: argparse.Namespace) -> int:
    async with scratch_hub("qbench", ws_max_per_ip=str(args.waiters + 100)) as found:
        return await _measure(args, *found)


async def _measure(args: argparse.Namespace, hub: Any, database_url: str, secret: str) -> int:
    opens = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).isoformat()
    event_id = await event_with_room(hub, {"opens_at": opens, "admit_per_second": 0.001})
    emails = [f"waiter-{secrets.token_hex(6)}@example.com" for _ in range(args.waiters)]
    tokens = await seed_buyers(database_url, secret, emails, "waiter password")
    started = time.monotonic()
    await _join_all(hub.base, event_id, tokens)
    print(f"{args.waiters} joined the queue in {time.monotonic() - started:.1f} s", flush=True)
    rss_before = _rss_mb(hub.proc.pid)
    url = f"ws://127.0.0.1:{hub.port}/ws/events/{event_id}"
    waiters: list[Waiter] = []
    started = time.monotonic()
    for start in range(0, len(tokens), 200):
        batch = tokens[start : start + 200]
        waiters += await asyncio.gather(*(_open(url, t) for t in batch))
    print(f"{len(waiters)} sockets open in {time.monotonic() - started:.1f} s", flush=True)
    readers = [asyncio.create_task(w.read()) for w in waiters]
    await asyncio.sleep(args.settle)
    window_start = time.monotonic()
    await asyncio.sleep(args.seconds)
    window_end = time.monotonic()
    rss_with = _rss_mb(hub.proc.pid)
    children = _children_mb(hub.proc.pid)
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*(w.ws.close() for w in waiters), return_exceptions=True)

    in_window = [[t for t in w.arrivals if window_start <= t < window_end] for w in waiters]
    silent = sum(1 for a in in_window if not a)
    gaps = [
        b - a
        for w in waiters
        for a, b in zip(w.arrivals, w.arrivals[1:], strict=False)
        if a >= window_start - 2 and b < window_end
    ]
    longest = max(gaps) if gaps else float("inf")
    rate = sum(len(a) for a in in_window) / len(waiters) / (window_end - window_start)
    per_socket_kb = (rss_with - rss_before) * 1024 / len(waiters)
    print(
        f"waiters {len(waiters)}: hub RSS {rss_before:.0f} MB before the sockets, "
        f"{rss_with:.0f} MB with them ({per_socket_kb:.1f} KB a socket); "
        f"queue messages {rate:.2f} per waiter per second over {args.seconds:.0f} s; "
        f"longest gap {longest:.2f} s; waiters that heard nothing: {silent}; "
        f"(its child processes beside: {children:.0f} MB)",
        flush=True,
    )
    ok = silent == 0 and longest <= 2.0 and rss_with <= args.max_rss_mb
    print("OK" if ok else "FAILED", flush=True)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.queue_sockets")
    parser.add_argument("--waiters", type=int, default=10_000, help="waiting sockets (10000)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window (10)")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before it (3)")
    parser.add_argument("--max-rss-mb", type=float, default=300.0, help="RSS bound (300)")
    return asyncio.run(bench(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
