"""``python -m tests.bench.admin_stream``: what the admin stream costs a hub process.

Starts one hub process (uvicorn, one worker, the CLI's options) on a scratch database and a
private Redis prefix, with a demo-sized catalogue of ``--events`` upcoming events so the
sales board has something to read, and then alternates, ``--rounds`` times:

- idle: nothing connected for ``--minutes``;
- panels: ``--panels`` admin connections on ``/ws/admin`` (JSON, as the page uses it),
  each reading its one message a second, for ``--minutes``.

Each phase's CPU-seconds are the process's user + system time from ``/proc/PID/stat``
read at its start and end; the answer is each phase as a percentage of one core, and the
difference panels - idle, which is the stream's own cost (the health sampler and the leader
loops run in both phases, so they are in the idle figure). The clients run in this process,
not the hub's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator

import httpx

from loadtest.client import WatchClient
from tests.live import free_port
from tests.servers import find_servers, scratch_database

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
ADMIN_PASSWORD = "bench admin password 1"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (fields 14 and 15 of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@contextlib.asynccontextmanager
async def hub(
    database_url: str, redis_url: str, admin_email: str
) -> AsyncIterator[tuple[int, int]]:
    """A hub process; yields its pid and port. Stopped by its pid."""
    port = free_port()
    env = dict(os.environ)
    env.update(
        EVENTLY_DATABASE_URL=database_url,
        EVENTLY_REDIS_URL=redis_url,
        EVENTLY_REDIS_PREFIX=f"bench-admin-{uuid.uuid4().hex[:8]}:",
        EVENTLY_SECRET_KEY=uuid.uuid4().hex * 2,
        EVENTLY_ADMIN_EMAIL=admin_email,
        EVENTLY_ADMIN_PASSWORD=ADMIN_PASSWORD,
        EVENTLY_LOG_LEVEL="warning",
        EVENTLY_LOG_FORMAT="json",
        EVENTLY_RATE_LIMITS="off",
    )
    code = (
        "import uvicorn; from hub.cli import uvicorn_options; "
        f"uvicorn.run('hub.asgi:create', **uvicorn_options('127.0.0.1', {port}, 1))"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)  # noqa: ASYNC220
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(600):
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                        break
                assert proc.poll() is None, "the hub process died"
                await asyncio.sleep(0.1)
        yield proc.pid, port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def seed(base: str, token: str, n_events: int) -> None:
    """A venue of two 500-seat sections and ``n_events`` upcoming events on it."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http:
        venue = await http.post(
            "/api/v1/venues",
            json={
                "name": "Bench Hall",
                "city": "Bench",
                "sections": [
                    {"name": "Stalls", "rows": 20, "seats_per_row": 25, "base_price": 80},
                    {"name": "Circle", "rows": 20, "seats_per_row": 25, "base_price": 50},
                ],
            },
        )
        assert venue.status_code == 201, venue.text
        for n in range(n_events):
            starts = dt.datetime.now(dt.UTC) + dt.timedelta(days=10 + n)
            made = await http.post(
                "/api/v1/events",
                json={
                    "name": f"Bench event {n}",
                    "description": "admin stream benchmark",
                    "category": "concert",
                    "keywords": ["bench"],
                    "venue_id": venue.json()["id"],
                    "starts_at": starts.isoformat(),
                    "section_prices": {"Stalls": 90, "Circle": 55},
                },
            )
            assert made.status_code == 201, made.text


async def idle(pid: int, seconds: float) -> float:
    start = cpu_seconds(pid)
    await asyncio.sleep(seconds)
    return cpu_seconds(pid) - start


async def panels(pid: int, port: int, token: str, count: int, seconds: float) -> tuple[float, int]:
    """CPU-seconds of the hub over ``seconds`` with ``count`` admin sockets reading, and the
    number of metrics messages they received."""
    conns = [
        await WatchClient.open(f"ws://127.0.0.1:{port}/ws/admin", subprotocol="json")
        for _ in range(count)
    ]
    received = 0

    async def read(conn: WatchClient) -> None:
        nonlocal received
        while True:
            if (await conn.recv())["t"] == "metrics":
                received += 1

    for conn in conns:
        await conn.send({"t": "hello", "token": token})
    readers = [asyncio.create_task(read(conn)) for conn in conns]
    await asyncio.sleep(2)  # the first messages: the feed and the board are running
    start = cpu_seconds(pid)
    counted = received
    await asyncio.sleep(seconds)
    used = cpu_seconds(pid) - start
    counted = received - counted
    for task in readers:
        task.cancel()
    for conn in conns:
        with contextlib.suppress(Exception):
            await conn.close()
    await asyncio.sleep(2)  # let the feed notice and stop before the next idle phase
    return used, counted


async def main(args: argparse.Namespace) -> None:
    servers = find_servers()
    admin_email = f"bench-admin-{uuid.uuid4().hex[:8]}@example.com"
    async with (
        scratch_database(servers, "evently_bench_admin") as database_url,
        hub(database_url, servers.redis_url, admin_email) as (pid, port),
    ):
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base) as http:
            login = await http.post(
                "/api/v1/auth/login", json={"email": admin_email, "password": ADMIN_PASSWORD}
            )
            assert login.status_code == 200, login.text
            token = login.json()["access_token"]
        await seed(base, token, args.events)
        await asyncio.sleep(5)  # start-up work (first leader ticks) out of the way
        seconds = args.minutes * 60
        idle_pct: list[float] = []
        panel_pct: list[float] = []
        for round_ in range(1, args.rounds + 1):
            used = await idle(pid, seconds)
            idle_pct.append(100 * used / seconds)
            used, messages = await panels(pid, port, token, args.panels, seconds)
            panel_pct.append(100 * used / seconds)
            print(
                f"round {round_}: idle {idle_pct[-1]:.2f} % of one core, "
                f"{args.panels} panels {panel_pct[-1]:.2f} % ({messages} messages, "
                f"{messages / seconds / args.panels:.2f} a second per panel)",
                flush=True,
            )
        diffs = [p - i for p, i in zip(panel_pct, idle_pct, strict=True)]
        at = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        print(
            f"{args.rounds} round(s) of {args.minutes} min: "
            f"idle median {statistics.median(idle_pct):.2f} %, "
            f"panels median {statistics.median(panel_pct):.2f} %, "
            f"stream cost (panels - idle) median {statistics.median(diffs):.2f} % of one core "
            f"(min {min(diffs):.2f}, max {max(diffs):.2f}); at {at}"
        )


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=5.0, help="length of each phase")
    p.add_argument("--rounds", type=int, default=1, help="idle/panels pairs, interleaved")
    p.add_argument("--panels", type=int, default=5, help="admin connections in a panels phase")
    p.add_argument("--events", type=int, default=20, help="upcoming events on the sales board")
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
