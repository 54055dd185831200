"""The hold-path job of ``bench-holds``: connections that hold 1-4 seats and release each win.

Each connection is its own task, on its own keep-alive connection (``loadtest.http1``), with
its own user's token. It loops: pick 1-4 seats (uniform count, uniform seats without
replacement) from the pool, ``POST /api/v1/events/{id}/holds``; on 201 it releases the hold
(``DELETE /api/v1/holds/{hold_id}``, expecting 204) before the next hold; a 409 is a lost
race and the loop goes on. Anything else — another status, a dropped connection, a
malformed response — is an error, counted by kind.

Measured: a level runs a warm-up, then a window; a hold counts when its answer arrives
inside the window (``start <= t < end``), and its latency (request sent → answer read) is
kept. Errors and requests are counted over the whole level, warm-up included, so the error
rate sees every request sent. After the window the loops finish their current hold (and its
release) and stop; one still unfinished after ``DRAIN_TIMEOUT`` is cancelled and counted.
CPU: this process (the client), the target's processes and Redis, over the window only.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import resource
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psutil

from loadtest.http1 import Http1Connection, ProtocolError
from loadtest.report import percentiles

DRAIN_TIMEOUT = 15.0
RECONNECT_PAUSE = 0.05
JSON_HEAD = b"Content-Type: application/json\r\n"


@dataclass(frozen=True, slots=True)
class Target:
    """What a level loads: a server's address, its processes (for CPU), the event."""

    name: str
    host: str
    port: int
    event_id: str
    pids: tuple[int, ...] = ()


@dataclass(slots=True)
class Window:
    start: float = math.inf
    end: float = math.inf

    def holds(self, t: float) -> bool:
        return self.start <= t < self.end


@dataclass(slots=True)
class Tally:
    """What the loops of one level saw."""

    won: int = 0
    lost: int = 0
    latencies: list[float] = field(default_factory=list)
    requests: int = 0
    releases: int = 0
    errors: Counter[str] = field(default_factory=Counter)


async def _open(target: Target, tally: Tally) -> Http1Connection | None:
    try:
        conn = await Http1Connection.open(target.host, target.port)
    except OSError as exc:
        tally.errors[f"connect {type(exc).__name__}"] += 1
    else:
        if conn.is_open:
            return conn
        tally.errors["connect closed at once"] += 1
    await asyncio.sleep(RECONNECT_PAUSE)
    return None


async def _loop(
    target: Target,
    conn: Http1Connection,
    token: str,
    pool: Sequence[bytes],
    rng: random.Random,
    window: Window,
    tally: Tally,
    stop: asyncio.Event,
    admission: str | None = None,
) -> None:
    """One connection's hold/release loop until ``stop`` is set (see the module docstring);
    ``admission``, when given, goes with every hold as ``X-Admission-Token``."""
    auth = f"Authorization: Bearer {token}\r\n".encode()
    post_head = auth + JSON_HEAD
    if admission is not None:
        post_head += f"X-Admission-Token: {admission}\r\n".encode()
    path = f"/api/v1/events/{target.event_id}/holds"
    current: Http1Connection | None = conn
    try:
        while not stop.is_set():
            if current is None or not current.is_open:
                current = await _open(target, tally)
                continue
            body = b'{"seat_ids":["' + b'","'.join(rng.sample(pool, rng.randint(1, 4))) + b'"]}'
            tally.requests += 1
            sent = time.perf_counter()
            try:
                reply = await current.request("POST", path, post_head, body)
            except (ConnectionError, ProtocolError) as exc:
                tally.errors[f"hold {type(exc).__name__}"] += 1
                current = None
                continue
            answered = time.perf_counter()
            counted = window.holds(answered)
            if reply.status == 409:
                if counted:
                    tally.lost += 1
                    tally.latencies.append(answered - sent)
                continue
            if reply.status != 201:
                tally.errors[f"hold {reply.status}"] += 1
                continue
            if counted:
                tally.won += 1
                tally.latencies.append(answered - sent)
            try:
                hold_id = json.loads(reply.body)["hold_id"]
                tally.requests += 1
                released = await current.request("DELETE", f"/api/v1/holds/{hold_id}", auth)
            except (ValueError, KeyError, TypeError):
                tally.errors["hold 201 without hold_id"] += 1
                continue
            except (ConnectionError, ProtocolError) as exc:
                tally.errors[f"release {type(exc).__name__}"] += 1
                current = None
                continue
            if released.status == 204:
                tally.releases += 1
            else:
                tally.errors[f"release {released.status}"] += 1
    finally:
        if current is not None:
            current.close()


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds used so far by the given processes (gone ones count 0)."""
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run_level(
    target: Target,
    tokens: Sequence[str],
    pool: Sequence[str],
    warmup: float,
    duration: float,
    redis_pid: int | None,
    seed: int,
    admissions: Sequence[str] | None = None,
) -> dict[str, Any]:
    """``len(tokens)`` connections on ``target``: a warm-up, then the measured window.
    ``admissions`` (one per token, same order): waiting-room admission tokens to send.

    Returns:
        The level's figures (see ``summarise``).
    """
    tally, window, stop = Tally(), Window(), asyncio.Event()
    seats = [s.encode() for s in pool]
    conns = await open_connections(target, len(tokens))
    tasks = [
        asyncio.create_task(
            _loop(
                target,
                conn,
                token,
                seats,
                random.Random(seed * 100_003 + i),
                window,
                tally,
                stop,
                admissions[i] if admissions is not None else None,
            )
        )
        for i, (conn, token) in enumerate(zip(conns, tokens, strict=True))
    ]
    seconds, figures = await measure(
        target, tasks, stop, window, warmup=warmup, duration=duration, redis_pid=redis_pid
    )
    return summarise(tally, seconds, connections=len(tokens), **figures)


async def open_connections(target: Target, n: int) -> list[Http1Connection]:
    """``n`` keep-alive connections to ``target``, all or none.

    Raises:
        RuntimeError: some could not be opened (the others are closed again).
    """
    opened = await asyncio.gather(
        *(Http1Connection.open(target.host, target.port) for _ in range(n)),
        return_exceptions=True,
    )
    conns = [c for c in opened if isinstance(c, Http1Connection)]
    if len(conns) != n:
        for c in conns:
            c.close()
        failed = next(c for c in opened if isinstance(c, BaseException))
        raise RuntimeError(f"{target.name}: could not open {n} connections: {failed!r}")
    return conns


async def measure(
    target: Target,
    tasks: list[asyncio.Task[None]],
    stop: asyncio.Event,
    window: Window,
    *,
    warmup: float,
    duration: float,
    redis_pid: int | None,
) -> tuple[float, dict[str, Any]]:
    """Let the running client ``tasks`` warm up, time the measured window with the CPU each
    side used in it, then stop them. Returns the window's length and the figures
    ``summarise`` takes besides the tally and the connection count."""
    load = os.getloadavg()[0]
    try:
        await asyncio.sleep(warmup)
        cpu_before = (_own_cpu(), cpu_seconds(target.pids), _redis_cpu(redis_pid))
        window.start = time.perf_counter()
        await asyncio.sleep(duration)
        window.end = time.perf_counter()
        cpu_after = (_own_cpu(), cpu_seconds(target.pids), _redis_cpu(redis_pid))
    finally:
        stop.set()
        _done, pending = await asyncio.wait(tasks, timeout=DRAIN_TIMEOUT)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    seconds = window.end - window.start
    cpu = [
        (after - before) / seconds * 100
        for before, after in zip(cpu_before, cpu_after, strict=True)
    ]
    return seconds, {
        "warmup": warmup,
        "unfinished": len(pending),
        "client_cpu": cpu[0],
        "server_cpu": cpu[1],
        "redis_cpu": cpu[2] if redis_pid is not None else None,
        "load": load,
    }


def _redis_cpu(pid: int | None) -> float:
    return cpu_seconds([pid]) if pid is not None else 0.0


def summarise(
    tally: Tally,
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
    answered = tally.won + tally.lost
    errors = sum(tally.errors.values()) + unfinished
    latency = percentiles(np.asarray(tally.latencies, dtype=np.float64))
    return {
        "connections": connections,
        "warmup_s": warmup,
        "window_s": round(seconds, 3),
        "holds": answered,
        "won": tally.won,
        "lost": tally.lost,
        "holds_per_s": round(answered / seconds, 1),
        "won_per_s": round(tally.won / seconds, 1),
        "lost_per_s": round(tally.lost / seconds, 1),
        "win_rate": round(tally.won / answered, 4) if answered else None,
        "hold_latency_ms": latency,
        "requests": tally.requests,
        "releases": tally.releases,
        "errors": errors,
        "error_rate": round(errors / tally.requests, 5) if tally.requests else None,
        "errors_by_kind": dict(tally.errors.most_common())
        | ({"unfinished at the end": unfinished} if unfinished else {}),
        "client_cpu_pct": round(client_cpu, 1),
        "server_cpu_pct": round(server_cpu, 1),
        "redis_cpu_pct": round(redis_cpu, 1) if redis_cpu is not None else None,
        "load_1min": round(load, 2),
    }


def median_spread(values: Sequence[float]) -> dict[str, float]:
    """The median of ``values`` and their range (the spread over runs)."""
    if not values:
        raise ValueError("median_spread of no values")
    return {"median": float(statistics.median(values)), "min": min(values), "max": max(values)}
