"""``python -m tests.bench.queue_joins``: what joining a waiting room's queue costs the hub.

A hub in a process of its own (one uvicorn worker, rate limits off as for every load test)
on the local PostgreSQL and Redis (a fresh database and key prefix, dropped afterwards).
An event gets a waiting room opening in an hour, so every join is a pre-opening join, as
in the surge's join window. ``--rounds`` times, ``--joins`` new users (seeded straight into
PostgreSQL, tokens issued with the hub's code) join over HTTP, ``--concurrency`` at a time.

Prints, per round, joins a second and the hub process's CPU per join (user + system time
of the serving process, read with psutil: the client's own CPU is not in it), then the
median and spread of each. The client shares the machine, so compare trees in one session,
interleaved, by the CPU per join.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import secrets
import statistics
import sys
import time
from typing import Any

import httpx
import psutil

from loadtest.accounts import seed_buyers
from tests.bench.queue_sockets import event_with_room, scratch_hub


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def _round(base: str, event_id: str, tokens: list[str], concurrency: int) -> float:
    """Every token joins once; returns the wall seconds taken."""
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        sem = asyncio.Semaphore(concurrency)

        async def join(token: str) -> None:
            async with sem:
                reply = await client.post(
                    f"/api/v1/events/{event_id}/queue",
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert reply.status_code == 201, reply.text

        started = time.monotonic()
        await asyncio.gather(*(join(t) for t in tokens))
        return time.monotonic() - started


async def _measure(args: argparse.Namespace, hub: Any, database_url: str, secret: str) -> int:
    opens = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    event_id = await event_with_room(hub, {"opens_at": opens})
    emails = [f"joiner-{secrets.token_hex(6)}@example.com" for _ in range(args.joins * args.rounds)]
    tokens = await seed_buyers(database_url, secret, emails, "joiner password")
    process = psutil.Process(hub.proc.pid)
    await _round(hub.base, event_id, tokens[:50], args.concurrency)  # warm the caches
    rates: list[float] = []
    cpus: list[float] = []
    for n in range(args.rounds):
        batch = tokens[n * args.joins : (n + 1) * args.joins][50 if n == 0 else 0 :]
        cpu_before = _cpu_seconds(process)
        seconds = await _round(hub.base, event_id, batch, args.concurrency)
        cpu_ms = (_cpu_seconds(process) - cpu_before) * 1000 / len(batch)
        rates.append(len(batch) / seconds)
        cpus.append(cpu_ms)
        print(f"round {n + 1}: {rates[-1]:.0f} joins/s, hub CPU {cpu_ms:.3f} ms a join", flush=True)
    print(
        f"joins/s median {statistics.median(rates):.0f} ({min(rates):.0f}-{max(rates):.0f}); "
        f"hub CPU a join median {statistics.median(cpus):.3f} ms "
        f"({min(cpus):.3f}-{max(cpus):.3f}) over {args.rounds} rounds of {args.joins}",
        flush=True,
    )
    return 0


async def bench(args: argparse.Namespace) -> int:
    async with scratch_hub("jbench") as found:
        return await _measure(args, *found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.queue_joins")
    parser.add_argument("--joins", type=int, default=2000, help="joins a round (2000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (3)")
    parser.add_argument("--concurrency", type=int, default=32, help="joins in flight (32)")
    return asyncio.run(bench(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
