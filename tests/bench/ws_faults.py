"""WebSocket faults (issue 18, item 7): watchers of one event, of which a share stop reading
and a share drop without closing, against watchers that all read.

``python -m tests.bench.ws_faults --watchers 5000 --stalled-share 0.1 --dropped-share 0.1``

One hub process (``evently serve``, pinned to CPU 0 like ``loadtest.fanout``) and watcher
processes (``loadtest.watchers``, on CPU 1). The healthy watchers connect first and the
hub's RSS is taken (the baseline); then the watchers that will fail connect too and read
like the others, and after a warm-up a *clean* run of seat changes is measured; then the
faults: the stalled process stops reading on every socket (they stay open; nothing is
read, no ping is answered) and the dropped process is SIGSTOPped (its sockets stay open
with no close frame, as a client whose machine vanished), and a *faulty* run is measured.
The healthy watchers' delta latency (receipt minus the moment the change was sent to
Redis, counted from the oldest change a frame carries) gives each run's p99. Then the
hub's established connections on its port are counted until only the healthy ones are
left, or the heartbeat time (uvicorn's ping interval + ping timeout, 20 + 20 s) and a
slack have passed, and its RSS is taken again a few seconds later.

`measure` is the whole procedure against any hub (``tests/hub/channels/test_ws_faults.py``
runs a small one in the test process with a short heartbeat).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import redis.asyncio as aioredis

from hub.inventory import HoldKind, HoldPlaced, HoldRequest, Inventory, Released, ReleaseMode
from hub.store import Keys
from loadtest.fanout import (
    DEFAULT_DB,
    DEFAULT_REDIS,
    _ensure_database,
    _free_port,
    _raise_nofile,
    _start_hub,
    _stop,
    _wait_port,
)
from loadtest.watchers import watcher_process

#: uvicorn's keepalive as ``evently serve`` runs it (hub.cli): a ping every 20 s, and a
#: connection whose pong has not come 20 s later is closed.
SERVE_HEARTBEAT_SECONDS = 40.0


@dataclass
class Faults:
    """What one measurement found (latencies in seconds, memory in bytes)."""

    healthy: int
    stalled: int
    dropped: int
    clean_p99: float = 0.0
    faulty_p99: float = 0.0
    clean_p50: float = 0.0
    faulty_p50: float = 0.0
    clean_frames: int = 0
    faulty_frames: int = 0
    healthy_gaps: int = 0
    healthy_closed: int = 0
    connections_at_fault: int = 0
    connections_left: int = 0
    gone_after_s: float | None = None
    rss: dict[str, int] = field(default_factory=dict)
    # the hub's heap at some of the same moments (``--heap-probe``): tracked objects, and
    # bytes in use / free in glibc's heap
    heap: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.faulty_p99 / max(self.clean_p99, 1e-9)

    def lines(self) -> list[str]:
        mb = {k: v / 2**20 for k, v in self.rss.items()}
        gone = "never" if self.gone_after_s is None else f"{self.gone_after_s:.1f} s"
        return [
            f"watchers: {self.healthy} healthy, {self.stalled} stop reading, "
            f"{self.dropped} dropped without closing",
            f"healthy delta p99: clean {self.clean_p99 * 1000:.1f} ms, faulty "
            f"{self.faulty_p99 * 1000:.1f} ms, ratio {self.ratio:.2f}x "
            f"(p50 {self.clean_p50 * 1000:.1f} / {self.faulty_p50 * 1000:.1f} ms; "
            f"{self.clean_frames} / {self.faulty_frames} frames; gaps {self.healthy_gaps}, "
            f"healthy closed {self.healthy_closed})",
            f"hub connections: {self.connections_at_fault} at the fault, "
            f"{self.connections_left} left at the end (healthy {self.healthy}); "
            f"dead ones gone after {gone}",
            "hub RSS: " + ", ".join(f"{name} {value:.0f} MB" for name, value in mb.items()),
            *(
                f"hub heap at {name}: {h['objects']} objects, in use {h['in_use'] / 2**20:.1f} MB, "
                f"free kept by the allocator {h['free'] / 2**20:.1f} MB"
                for name, h in self.heap.items()
            ),
        ]


def established(pid: int, port: int) -> int:
    """Established connections of process ``pid`` on its listening ``port``."""
    conns = psutil.Process(pid).net_connections("tcp")
    return sum(1 for c in conns if c.laddr and c.laddr.port == port and c.status == "ESTABLISHED")


class _Clients:
    """A group of watcher processes (``loadtest.watchers``), driven over pipes."""

    def __init__(
        self, port: int, path: str, count: int, first: int, processes: int, cpus: set[int]
    ) -> None:
        ctx = mp.get_context("spawn")
        self.pipes: list[Any] = []
        self.procs: list[Any] = []
        per = [count // processes + (1 if i < count % processes else 0) for i in range(processes)]
        for n in per:
            if not n:
                continue
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=watcher_process,
                args=(("127.0.0.1", port, path, n, first, "msgpack", child, cpus),),
            )
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)
            first += n

    async def ready(self) -> None:
        for pipe in self.pipes:
            _, failed, example = await asyncio.to_thread(pipe.recv)
            if failed:
                raise RuntimeError(f"{failed} watchers failed to connect, e.g. {example}")

    async def pause(self) -> None:
        for pipe in self.pipes:
            pipe.send("pause")
        for pipe in self.pipes:
            await asyncio.to_thread(pipe.recv)

    def signal(self, sig: int) -> None:
        for proc in self.procs:
            if proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, sig)

    async def records(self) -> list[dict[str, Any]]:
        for pipe in self.pipes:
            pipe.send("stop")
        out = [(await asyncio.to_thread(pipe.recv))[1] for pipe in self.pipes]
        for proc in self.procs:
            await asyncio.to_thread(proc.join, 10)
        return out

    def kill(self) -> None:
        for proc in self.procs:
            if proc.is_alive():
                proc.kill()
            proc.join(10)


async def _drive(
    inventory: Inventory, event_id: uuid.UUID, seats: range, rate: float, duration: float
) -> tuple[np.ndarray, np.ndarray]:
    """Seat changes at ``rate``/s for ``duration`` s, one seat each: a hold of the next seat
    of ``seats``, then its release. Returns (seq, sent wall clock) per change."""
    seqs: list[int] = []
    sent: list[float] = []
    start = time.monotonic()
    k = 0
    held: uuid.UUID | None = None
    k_seat = 0
    while (now := time.monotonic()) - start < duration:
        due = start + k / rate
        if due > now:
            await asyncio.sleep(due - now)
        k += 1
        sent.append(time.time())
        if held is None:
            held = uuid.uuid4()
            seat = seats[k_seat % len(seats)]
            request = HoldRequest(held, uuid.uuid4(), HoldKind.SINGLE, [seat], [100], 600_000, None)
            placed = await inventory.place_hold(event_id, request)
            assert isinstance(placed, HoldPlaced), placed
            seqs.append(placed.seq)
        else:
            released = await inventory.release(event_id, held, mode=ReleaseMode.FORCE)
            assert isinstance(released, Released), released
            seqs.append(released.seq)
            held, k_seat = None, k_seat + 1
    if held is not None:  # the seats are free again for the next run
        await inventory.release(event_id, held, mode=ReleaseMode.FORCE)
    return np.array(seqs, dtype=np.int64), np.array(sent)


def _latencies(records: list[dict[str, Any]], seqs: np.ndarray, sent: np.ndarray) -> np.ndarray:
    """Each ``seats`` frame's latency for the frames of this run: receipt minus the send time
    of the oldest change it carries (``from + 1``)."""
    out = []
    for rec in records:
        frm = np.frombuffer(rec["from"], dtype=np.int64)
        at = np.frombuffer(rec["at"], dtype=np.float64)
        oldest = frm + 1
        idx = np.searchsorted(seqs, oldest)
        ok = idx < len(seqs)
        ok[ok] &= seqs[idx[ok]] == oldest[ok]
        out.append(at[ok] - sent[idx[ok]])
    return np.concatenate(out) if out else np.array([])


async def measure(
    *,
    port: int,
    server_pid: int,
    inventory: Inventory,
    event_id: uuid.UUID,
    watchers: int,
    stalled_share: float,
    dropped_share: float,
    rate: float,
    duration: float,
    heartbeat_s: float,
    slack_s: float = 10.0,
    processes: int = 3,
    cpus: set[int] | None = None,
    cycles: int = 1,
    heap: Callable[[], Awaitable[dict[str, int]]] | None = None,
) -> Faults:
    """The procedure of the module docstring against a hub serving ``port``. With
    ``cycles`` above one, fresh stalled and dropped watchers connect, fail and go again
    that many times in all, and the RSS is taken after each: memory that came back for
    reuse stays flat from one cycle to the next, a leak grows by the same step each time.
    ``heap`` reads the hub's heap (``tests.bench.heap_probe``) beside the baseline's and the
    later RSS readings: memory the dead gave back but the allocator keeps shows as ``free``,
    memory still held as ``in_use``."""
    n_stalled = round(watchers * stalled_share)
    n_dropped = round(watchers * dropped_share)
    result = Faults(watchers - n_stalled - n_dropped, n_stalled, n_dropped)
    path = f"/ws/events/{event_id}"
    server = psutil.Process(server_pid)
    cpus = cpus or set(range(os.cpu_count() or 1))
    result.rss["before watchers"] = server.memory_info().rss
    peak = [0]

    async def sample() -> None:
        while True:
            with contextlib.suppress(psutil.Error):
                peak[0] = max(peak[0], server.memory_info().rss)
            await asyncio.sleep(0.25)

    sampling = asyncio.get_running_loop().create_task(sample())
    healthy = _Clients(port, path, result.healthy, 0, processes, cpus)
    stalled = dropped = None
    failed: list[_Clients] = []
    try:
        await healthy.ready()
        await asyncio.sleep(1.0)
        result.rss["healthy connected"] = server.memory_info().rss
        # The baseline: the healthy crowd after the same traffic as the runs below, with no
        # one failing -- what the hub holds for them once it has served changes (buffers
        # grown, the collector's freeze), which the dead should give back to.
        await _drive(inventory, event_id, range(0, 1000), rate, duration + min(duration, 3.0))
        await asyncio.sleep(1.0)
        result.rss["baseline (healthy after traffic)"] = server.memory_info().rss
        if heap is not None:
            result.heap["the baseline"] = await heap()
        stalled = _Clients(port, path, n_stalled, result.healthy, 1, cpus)
        dropped = _Clients(port, path, n_dropped, result.healthy + n_stalled, 1, cpus)
        await stalled.ready()
        await dropped.ready()
        result.rss["all connected"] = server.memory_info().rss
        # A warm-up first (not counted): the crowd that just joined settles (snapshots,
        # the collector's freeze), so the clean run measures the steady state.
        await _drive(inventory, event_id, range(0, 500), rate, min(duration, 3.0))
        await asyncio.sleep(1.0)
        clean = await _drive(inventory, event_id, range(0, 500), rate, duration)
        await asyncio.sleep(1.0)

        await stalled.pause()
        dropped.signal(signal.SIGSTOP)  # TCP left open, no close frame, no pong
        faulted_at = time.monotonic()
        result.connections_at_fault = established(server_pid, port)
        peak[0] = server.memory_info().rss  # the peak from the fault on
        faulty = await _drive(inventory, event_id, range(500, 1000), rate, duration)
        await asyncio.sleep(1.0)

        deadline = faulted_at + heartbeat_s + slack_s
        while time.monotonic() < deadline:
            if established(server_pid, port) <= result.healthy:
                result.gone_after_s = time.monotonic() - faulted_at
                break
            await asyncio.sleep(0.5)
        result.connections_left = established(server_pid, port)
        result.rss["peak with faults"] = peak[0]
        await asyncio.sleep(3.0)
        result.rss["after the dead are gone"] = server.memory_info().rss
        if heap is not None:
            result.heap["the dead gone"] = await heap()
        for cycle in range(2, cycles + 1):
            failed += [g for g in (stalled, dropped) if g is not None]
            for done in failed:
                done.kill()
            stalled = _Clients(port, path, n_stalled, result.healthy, 1, cpus)
            dropped = _Clients(port, path, n_dropped, result.healthy + n_stalled, 1, cpus)
            await stalled.ready()
            await dropped.ready()
            await stalled.pause()
            dropped.signal(signal.SIGSTOP)
            faulted_at = time.monotonic()
            await _drive(inventory, event_id, range(0, 500), rate, duration)
            while time.monotonic() < faulted_at + heartbeat_s + slack_s:
                if established(server_pid, port) <= result.healthy:
                    break
                await asyncio.sleep(0.5)
            await asyncio.sleep(3.0)
            left = established(server_pid, port) - result.healthy
            result.rss[f"after cycle {cycle} ({left} dead left)"] = server.memory_info().rss
            if heap is not None:
                result.heap[f"cycle {cycle}"] = await heap()

        records = await healthy.records()
        result.healthy_gaps = sum(r["gaps"] for r in records)
        result.healthy_closed = sum(r["closed"] for r in records)
        for name, (seqs, sent) in (("clean", clean), ("faulty", faulty)):
            lat = _latencies(records, seqs, sent)
            p50, p99 = (float(np.percentile(lat, q)) for q in (50, 99)) if lat.size else (0, 0)
            setattr(result, f"{name}_p99", p99)
            setattr(result, f"{name}_p50", p50)
            setattr(result, f"{name}_frames", int(lat.size))
    finally:
        sampling.cancel()
        for group in (healthy, stalled, dropped, *failed):
            if group is not None:
                group.signal(signal.SIGCONT)
                group.kill()
    return result


async def run(args: argparse.Namespace) -> int:
    _raise_nofile()
    os.sched_setaffinity(0, {1})
    prefix = f"evently:bench:faults:{uuid.uuid4().hex[:8]}:"
    client = aioredis.Redis.from_url(args.redis_url)
    inventory = Inventory(client, Keys(prefix))
    event_id = uuid.uuid4()
    await inventory.load(event_id, 1000, [], {})
    await _ensure_database(args.database_url)
    port = _free_port()
    hub_args = argparse.Namespace(
        database_url=args.database_url, redis_url=args.redis_url, tick_ms=args.tick_ms
    )
    probe_file = Path(tempfile.mkdtemp()) / "heap.jsonl"
    if args.heap_probe:  # every object from glibc, so that its heap figures are the whole
        hub = _start_hub(
            hub_args,
            prefix,
            port,
            module="tests.bench.heap_probe",
            extra_env={"PYTHONMALLOC": "malloc", "HEAP_PROBE_FILE": str(probe_file)},
        )
    else:
        hub = _start_hub(hub_args, prefix, port)

    async def read_heap() -> dict[str, int]:
        lines = probe_file.read_text().splitlines() if probe_file.exists() else []
        hub.send_signal(signal.SIGUSR2)
        while True:
            await asyncio.sleep(0.2)
            now = probe_file.read_text().splitlines() if probe_file.exists() else []
            if len(now) > len(lines):
                return dict(json.loads(now[-1]))

    try:
        await _wait_port(port, hub)
        result = await measure(
            port=port,
            server_pid=hub.pid,
            inventory=inventory,
            event_id=event_id,
            watchers=args.watchers,
            stalled_share=args.stalled_share,
            dropped_share=args.dropped_share,
            rate=args.rate,
            duration=args.duration,
            heartbeat_s=SERVE_HEARTBEAT_SECONDS,
            slack_s=args.slack,
            processes=args.clients,
            cpus={1},
            cycles=args.cycles,
            heap=read_heap if args.heap_probe else None,
        )
    finally:
        _stop(hub)
        async for key in client.scan_iter(match=f"{prefix}*", count=1000):
            await client.delete(key)
        await client.aclose()
    print(
        f"hub: evently serve, 1 worker on CPU 0; heartbeat {SERVE_HEARTBEAT_SECONDS:.0f} s; "
        f"{args.rate:.0f} changes/s for {args.duration:.0f} s a run, tick {args.tick_ms} ms"
    )
    for line in result.lines():
        print(line)
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--watchers", type=int, default=5000)
    p.add_argument("--stalled-share", type=float, default=0.1)
    p.add_argument("--dropped-share", type=float, default=0.1)
    p.add_argument("--rate", type=float, default=200.0, help="seat changes per second")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    p.add_argument("--tick-ms", type=int, default=100)
    p.add_argument("--clients", type=int, default=4, help="processes of healthy watchers")
    p.add_argument("--slack", type=float, default=10.0, help="seconds past the heartbeat")
    p.add_argument("--cycles", type=int, default=1, help="fault cycles (memory after each)")
    p.add_argument(
        "--heap-probe",
        action="store_true",
        help="run the hub with PYTHONMALLOC=malloc and read its heap beside the RSS "
        "(objects, bytes in use, bytes its allocator keeps free)",
    )
    p.add_argument("--database-url", default=DEFAULT_DB)
    p.add_argument("--redis-url", default=DEFAULT_REDIS)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(run(p.parse_args()))
    return 1


if __name__ == "__main__":
    sys.exit(main())
