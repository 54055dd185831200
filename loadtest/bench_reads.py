"""``python -m loadtest bench-reads``: what the hub's API pipeline costs on a read.

One invocation measures ``GET /api/v1/events/{id}`` for one event already in the hub's
cache against its ceiling: a bare Starlette handler (``loadtest.ceiling``'s read route) on
the same uvicorn options and worker count that returns, from memory, the very bytes and
content type the hub answered for that event once before the load. Each connection loops
on one keep-alive connection (``loadtest.http1``), one request at a time, at each
``--connections`` level: first anonymous (the route is public), then with a bearer token
of the connection's own user on every request. A read counts when it is a 200 with exactly
the expected bytes and content type and its answer arrives inside the measured window
(after the warm-up); anything else is an error.

Setup and pinning are bench-holds' (``bench_holds.setup``: a private Redis, the hub with 2
workers and rate limits off on a fresh database, the hub and the bare app on the first
core, Redis and this client on the second). The bare app runs every level and mode first,
then the hub, like bench-holds. ``--profile-hub FILE`` records one hub worker with py-spy
over the whole hub phase (a flame graph for a ``.svg`` name, else raw collapsed stacks): a
diagnosis run, its figures perturbed.

Output: a line per level, then a table per mode (``connections | bare req/s | hub req/s |
ratio | bare p99 | hub p99 | p99 ratio``; medians over ``--runs``, with the spread) and a
JSON file with every figure. Exit 1 when a level's errors exceed 1 % of its requests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import uvloop

from loadtest import bench_holds, ceiling
from loadtest.bench_holds import Setup, add_level_arguments, levels_of, load_text, setup_hub
from loadtest.bench_holds import on_sigterm as terminate
from loadtest.bench_holds import running_ceiling as start_bare
from loadtest.bench_servers import Hub, hub_overrides
from loadtest.bench_table import CLIENT_SATURATED_PCT, COLUMNS, runs_note, summarise_runs, table
from loadtest.hold_job import (
    RECONNECT_PAUSE,
    Target,
    Window,
    cpu_seconds,
    measure,
    open_connections,
)
from loadtest.http1 import Http1Connection, ProtocolError
from loadtest.launch import clear_ceiling
from loadtest.report import percentiles

ERROR_LIMIT = 0.01
MODES = ("anonymous", "token")
PY_SPY = Path(sys.executable).with_name("py-spy")


def add_arguments(p: argparse.ArgumentParser) -> None:
    # 12 levels (3 x 2 modes x 2 servers) of 1 + 4 s, plus about 15 s of setup: ~80 s.
    add_level_arguments(p, warmup=1.0, duration=4.0, baseline="bare app")
    p.add_argument(
        "--profile-hub",
        type=Path,
        metavar="FILE",
        help="record one hub worker with py-spy over the hub phase: a flame graph when FILE "
        "ends in .svg, else raw collapsed stacks",
    )


@dataclass(frozen=True, slots=True)
class Expected:
    """What every read must answer: the hub's own reply to the first read."""

    body: bytes
    content_type: str


@dataclass(slots=True)
class ReadTally:
    """What the loops of one level saw."""

    latencies: list[float] = field(default_factory=list)
    requests: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    other_bytes: bytes | None = None  # the first 200 that differed, kept to show


def run(args: argparse.Namespace) -> int:
    """The whole benchmark; returns the exit status."""
    try:
        levels = levels_of(args.connections)
    except ValueError as exc:
        print(f"bench-reads: {exc}", file=sys.stderr)
        return 2
    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        with contextlib.ExitStack() as stack:
            return _bench(args, levels, stack)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _bench(args: argparse.Namespace, levels: list[int], stack: contextlib.ExitStack) -> int:
    load_before = os.getloadavg()
    started = time.monotonic()
    setup = setup_hub(_holds_args(args), levels, stack)
    expected = first_read(setup.hub, setup.event_id)
    asyncio.run(
        ceiling.set_read_body(setup.redis_url, setup.prefix, expected.body, expected.content_type)
    )
    stack.callback(lambda: asyncio.run(clear_ceiling(setup.redis_url, setup.prefix)))
    print(
        f"GET /api/v1/events/{setup.event_id}: {len(expected.body)} bytes of"
        f" {expected.content_type}; the bare app answers the same",
        flush=True,
    )
    runs = [_one_run(args, number, levels, setup, expected) for number in range(1, args.runs + 1)]
    summary = {mode: summarise_modes(runs, mode, levels) for mode in MODES}
    print(
        f"\nevent read, {args.workers} workers, {runs_note(args.runs)}; load average {load_text()}"
    )
    for mode in MODES:
        print(f"\n{_title(mode)}:")
        print("\n".join(read_table(summary[mode], args.runs)), flush=True)
    failed = [
        f"{target} {mode} {level['connections']}"
        for run_ in runs
        for target in ("bare", "hub")
        for mode in MODES
        for level in run_[target][mode]
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
        "event_id": setup.event_id,
        "body_bytes": len(expected.body),
        "content_type": expected.content_type,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    results = {
        "meta": meta,
        "runs": runs,
        "summary": {mode: [json_row(row) for row in rows] for mode, rows in summary.items()},
        "failed_levels": failed,
    }
    out = args.out or Path("loadtest-results") / (
        "bench-reads-" + dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + ".json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"results: {out}")
    if failed:
        print(f"!!! FAILED: errors above {ERROR_LIMIT:.0%} of requests at {', '.join(failed)}")
        return 1
    return 0


def _holds_args(args: argparse.Namespace) -> argparse.Namespace:
    """bench-holds' arguments, at its own defaults but for the servers and workers given
    here: its setup then reads every option it knows, whatever options it gains."""
    parser = argparse.ArgumentParser()
    bench_holds.add_arguments(parser)
    holds = parser.parse_args([])
    holds.database_url, holds.redis_url = args.database_url, args.redis_url
    holds.workers = args.workers
    return holds


def _title(mode: str) -> str:
    if mode == "anonymous":
        return "anonymous (no Authorization header)"
    return "with a bearer token (each connection its own user's, on every request)"


def first_read(hub: Hub, event_id: str) -> Expected:
    """The hub's answer to one read of the event, which also puts it in the cache.

    Prices first: the pricing leader's first tick moves a new event's prices off its base
    prices (and so changes the answer) some seconds in; an admin's update-all applies them
    now, and later ticks then find nothing to change while nobody books.
    """
    with httpx.Client(base_url=f"{hub.url}/api/v1", timeout=60) as client:
        login = client.post(
            "/auth/login", json={"email": hub.admin_email, "password": hub.admin_password}
        )
        login.raise_for_status()
        admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
        client.post("/advanced/pricing/update-all", headers=admin).raise_for_status()
        reply = client.get(f"/events/{event_id}")
    if reply.status_code != 200:
        raise RuntimeError(f"the hub's event read: {reply.status_code} {reply.text[:500]}")
    return Expected(reply.content, reply.headers["content-type"])


def _one_run(
    args: argparse.Namespace, number: int, levels: list[int], setup: Setup, expected: Expected
) -> dict[str, Any]:
    """The bare app at every mode and level, then the hub at every mode and level."""
    hub = setup.hub
    print(f"\nrun {number}/{args.runs}: the bare app ({args.workers} workers)...", flush=True)
    hub_cpu_before = cpu_seconds(hub.pids())
    started = time.monotonic()
    with start_bare(args.workers, setup) as (port, pids):
        target = Target("bare", "127.0.0.1", port, setup.event_id, tuple(pids))
        bare = _modes(target, levels, args, setup, expected)
    idle = (cpu_seconds(hub.pids()) - hub_cpu_before) / (time.monotonic() - started)
    print(f"  (the idle hub used {idle * 100:.1f} % of a core meanwhile)", flush=True)
    print(f"run {number}/{args.runs}: the hub...", flush=True)
    target = Target("hub", "127.0.0.1", hub.port, setup.event_id, tuple(hub.pids()))
    with _profiled(args.profile_hub, hub.pids()):
        hub_levels = _modes(target, levels, args, setup, expected)
    return {
        "bare": bare,
        "hub": hub_levels,
        "idle_hub_cpu_pct_during_bare": round(idle * 100, 1),
    }


def _modes(
    target: Target, levels: list[int], args: argparse.Namespace, setup: Setup, expected: Expected
) -> dict[str, list[dict[str, Any]]]:
    """Every mode and level on ``target``, in one uvloop loop of this (pinned) process."""
    tokens = [f"Authorization: Bearer {token}\r\n".encode() for token in setup.tokens]

    async def all_levels() -> dict[str, list[dict[str, Any]]]:
        results: dict[str, list[dict[str, Any]]] = {}
        for mode in MODES:
            results[mode] = []
            for n in levels:
                heads = tokens[:n] if mode == "token" else [b""] * n
                level = await run_level(
                    target, heads, expected, args.warmup, args.duration, setup.redis_pid
                )
                level["auth"] = mode
                print(level_line(target.name, mode, level), flush=True)
                results[mode].append(level)
        return results

    return uvloop.run(all_levels())


@contextlib.contextmanager
def _profiled(out: Path | None, hub_pids: list[int]) -> Iterator[None]:
    """py-spy on the hub's first worker while the block runs (nothing when ``out`` is None)."""
    if out is None:
        yield
        return
    worker = _first_worker(hub_pids)
    out.parent.mkdir(parents=True, exist_ok=True)
    kind = "flamegraph" if out.suffix == ".svg" else "raw"
    cmd = [str(PY_SPY), "record", "-p", str(worker), "--format", kind, "-o", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    print(f"  profiling hub worker {worker} with py-spy into {out}", flush=True)
    try:
        yield
    finally:
        # SIGINT makes py-spy write what it sampled and exit.
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        if not out.is_file():
            print(f"  !!! py-spy wrote nothing: {err.decode(errors='replace')[-500:]}")


def _first_worker(pids: list[int]) -> int:
    """The first uvicorn worker (a multiprocessing spawn child) among the hub's processes."""
    for pid in pids[1:]:
        with contextlib.suppress(psutil.NoSuchProcess):
            if "spawn_main" in " ".join(psutil.Process(pid).cmdline()):
                return pid
    raise RuntimeError(f"no hub worker among {pids}")


async def run_level(
    target: Target,
    heads: Sequence[bytes],
    expected: Expected,
    warmup: float,
    duration: float,
    redis_pid: int | None,
) -> dict[str, Any]:
    """One connection per entry of ``heads`` (its extra header lines) on ``target``: a
    warm-up, then the measured window.

    Returns:
        The level's figures (see ``summarise``).
    """
    tally, window, stop = ReadTally(), Window(), asyncio.Event()
    conns = await open_connections(target, len(heads))
    path = f"/api/v1/events/{target.event_id}"
    tasks = [
        asyncio.create_task(_reader(target, conn, path, head, expected, window, tally, stop))
        for conn, head in zip(conns, heads, strict=True)
    ]
    seconds, figures = await measure(
        target, tasks, stop, window, warmup=warmup, duration=duration, redis_pid=redis_pid
    )
    return summarise(tally, seconds, connections=len(heads), **figures)


async def _reader(
    target: Target,
    conn: Http1Connection,
    path: str,
    head: bytes,
    expected: Expected,
    window: Window,
    tally: ReadTally,
    stop: asyncio.Event,
) -> None:
    """One connection's read loop until ``stop`` is set (see the module docstring)."""
    current: Http1Connection | None = conn
    try:
        while not stop.is_set():
            if current is None or not current.is_open:
                try:
                    current = await Http1Connection.open(target.host, target.port)
                except OSError as exc:
                    tally.errors[f"connect {type(exc).__name__}"] += 1
                    await asyncio.sleep(RECONNECT_PAUSE)
                continue
            tally.requests += 1
            sent = time.perf_counter()
            try:
                reply = await current.request("GET", path, head)
            except (ConnectionError, ProtocolError) as exc:
                tally.errors[f"read {type(exc).__name__}"] += 1
                current = None
                continue
            answered = time.perf_counter()
            if reply.status != 200:
                tally.errors[f"read {reply.status}"] += 1
            elif (
                reply.body != expected.body
                or reply.headers.get("content-type") != expected.content_type
            ):
                tally.errors["read 200 with other bytes"] += 1
                if tally.other_bytes is None:
                    tally.other_bytes = reply.body
            elif window.holds(answered):
                tally.latencies.append(answered - sent)
    finally:
        if current is not None:
            current.close()


def summarise(
    tally: ReadTally,
    seconds: float,
    *,
    connections: int,
    warmup: float,
    unfinished: int,
    client_cpu: float,
    server_cpu: float,
    redis_cpu: float | None,
    load: float,
) -> dict[str, Any]:
    """A level's figures as plain data (the JSON file keeps them as they are)."""
    reads = len(tally.latencies)
    errors = sum(tally.errors.values()) + unfinished
    return {
        "connections": connections,
        "warmup_s": warmup,
        "window_s": round(seconds, 3),
        "reads": reads,
        "reads_per_s": round(reads / seconds, 1),
        "latency_ms": percentiles(np.asarray(tally.latencies, dtype=np.float64)),
        "requests": tally.requests,
        "errors": errors,
        "error_rate": round(errors / tally.requests, 5) if tally.requests else None,
        "errors_by_kind": dict(tally.errors.most_common())
        | ({"unfinished at the end": unfinished} if unfinished else {}),
        "other_bytes": tally.other_bytes.decode(errors="replace") if tally.other_bytes else None,
        "client_cpu_pct": round(client_cpu, 1),
        "server_cpu_pct": round(server_cpu, 1),
        "redis_cpu_pct": round(redis_cpu, 1) if redis_cpu is not None else None,
        "load_1min": round(load, 2),
    }


def level_line(name: str, mode: str, level: dict[str, Any]) -> str:
    """One level's figures; errors and a saturated client are said loudly."""
    lat = level["latency_ms"]
    text = f"  {name} {mode} {level['connections']:>4} conns: {level['reads_per_s']:,.0f} reads/s"
    if lat["n"]:
        text += f" p50/p95/p99 {lat['p50']:.1f}/{lat['p95']:.1f}/{lat['p99']:.1f} ms"
    text += (
        f"; cpu % of a core: client {level['client_cpu_pct']:.0f},"
        f" server {level['server_cpu_pct']:.0f}"
    )
    if level["redis_cpu_pct"] is not None:
        text += f", redis {level['redis_cpu_pct']:.0f}"
    text += f"; load {level['load_1min']:.2f}"
    if level["errors"]:
        text += (
            f"\n  !!! {name} {mode} {level['connections']}: {level['errors']} ERRORS in"
            f" {level['requests']} requests: {level['errors_by_kind']}"
        )
    if level["client_cpu_pct"] > CLIENT_SATURATED_PCT:
        text += (
            f"\n  !!! the client used {level['client_cpu_pct']:.0f} % of its core: it may be"
            " the bottleneck, and these figures understate the server"
        )
    return text


def summarise_modes(runs: list[dict[str, Any]], mode: str, levels: list[int]) -> list[Any]:
    """bench-holds' per-level rows (medians, per-run ratios, spreads) over one mode's reads,
    in bench_table's shape: its "ceiling" is the bare app, its "holds" are reads."""

    def as_holds(level: dict[str, Any]) -> dict[str, Any]:
        return {
            "holds_per_s": level["reads_per_s"],
            "hold_latency_ms": level["latency_ms"],
            "win_rate": None,  # a read has none: the table leaves it out
        }

    shaped = [
        {
            "ceiling": [as_holds(level) for level in run_["bare"][mode]],
            "hub": [as_holds(level) for level in run_["hub"][mode]],
        }
        for run_ in runs
    ]
    return summarise_runs(shaped, levels)


READ_COLUMNS = tuple(c.replace("ceiling", "bare").replace("holds/s", "req/s") for c in COLUMNS)


def read_table(rows: list[dict[str, Any]], runs: int) -> list[str]:
    """bench-holds' table over ``summarise_modes`` rows, with the reads' headings."""
    lines = table(rows, runs)
    return ["| " + " | ".join(READ_COLUMNS) + " |", *lines[1:]]


def json_row(row: dict[str, Any]) -> dict[str, Any]:
    """A ``summarise_modes`` row under the reads' own names, for the JSON file."""
    return {
        key.replace("ceiling", "bare").replace("holds", "reads"): value
        for key, value in row.items()
        if not key.endswith("win_rate")
    }
