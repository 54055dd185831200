"""``python -m loadtest fanout``: watchers on one event, seat changes at a fixed rate.

Layout on a 2-core box: the hub (or the bare baseline server) is pinned to CPU 0; the
watcher processes, the change driver and this orchestrator share CPU 1. Changes go through
the real inventory scripts (a one-seat hold or release per change); the driver stamps each
change's seq with the wall clock right after Redis answered, watchers stamp each receipt:
latency = receipt - change, per change and per watcher (conflated changes included).
The same watchers then repeat the run against ``loadtest.bare`` and the ratio is printed.

``--reco`` makes every watcher ask for live seat recommendations in its ``hello`` (the event
is then a real one, written to PostgreSQL by ``loadtest.fanout_reco``); ``--venue`` writes
the same event without asking, for the run to compare with. The ``reco`` messages are
counted, and the seat-delta latency is measured exactly as without them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import random
import resource
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import psutil
import redis.asyncio as aioredis

from hub.inventory import HoldKind, HoldPlaced, HoldRequest, Inventory, Released, ReleaseMode
from hub.store import Keys
from loadtest import fanout_reco
from loadtest.watchers import watcher_process

DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/evently_bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
BENCH_SECRET = "bench-secret-key-that-is-long-enough-for-hs256"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--watchers", type=int, default=5000, help="WebSocket watchers of the event")
    p.add_argument("--rate", type=float, default=200.0, help="seat changes per second")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of driving changes")
    p.add_argument(
        "--subprotocol", choices=("msgpack", "json"), default="msgpack", help="watchers' encoding"
    )
    p.add_argument("--seats", type=int, default=10_000, help="seats of the event")
    p.add_argument("--tick-ms", type=int, default=100, help="the broadcaster's conflation tick")
    p.add_argument("--clients", type=int, default=4, help="watcher processes")
    p.add_argument("--drain", type=float, default=1.0, help="seconds to wait after driving")
    p.add_argument("--url", help="target a running hub (ws://host:port) instead of starting one")
    p.add_argument("--no-bare", action="store_true", help="skip the websockets.broadcast run")
    p.add_argument("--idle", action="store_true", help="connect, stay idle, report hub memory")
    p.add_argument(
        "--reco", action="store_true", help="every watcher asks for seat recommendations"
    )
    p.add_argument(
        "--reco-users",
        type=int,
        default=0,
        help="with --reco: this many watchers sign in as users with past tickets of their own",
    )
    p.add_argument(
        "--reco-prefs", type=int, default=1, help="with --reco: distinct preference sets"
    )
    p.add_argument(
        "--venue",
        action="store_true",
        help="watch an event with a venue in PostgreSQL, as --reco does, without asking",
    )
    p.add_argument(
        "--front-rows",
        action="store_true",
        help="holds take a random free seat of the front rows of the middle sections (of the "
        "--venue/--reco layout) while there is one, as a crowd goes for the best seats",
    )
    p.add_argument(
        "--database-url",
        default=os.environ.get("EVENTLY_DATABASE_URL", DEFAULT_DB),
        help="PostgreSQL of the started hub (EVENTLY_DATABASE_URL)",
    )
    p.add_argument(
        "--redis-url",
        default=os.environ.get("EVENTLY_REDIS_URL", DEFAULT_REDIS),
        help="Redis of the started hub (EVENTLY_REDIS_URL)",
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _raise_nofile() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _ensure_database(url: str) -> None:
    import asyncpg

    from hub.db.migrate import migrate

    base, _, name = url.rpartition("/")
    admin = await asyncpg.connect(f"{base}/postgres")
    if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
        await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    await migrate(url)


def _start_hub(
    args: argparse.Namespace,
    prefix: str,
    port: int,
    module: str = "hub.cli",
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """``module`` runs the hub's CLI (a benchmark may wrap it: ``tests.bench.heap_probe``)."""
    env = dict(os.environ, **(extra_env or {}))
    env.update(
        EVENTLY_DATABASE_URL=args.database_url,
        EVENTLY_REDIS_URL=args.redis_url,
        EVENTLY_SECRET_KEY=BENCH_SECRET,
        EVENTLY_REDIS_PREFIX=prefix,
        EVENTLY_WS_MAX_PER_IP="1000000",
        EVENTLY_WS_TICK_MS=str(args.tick_ms),
        EVENTLY_LOG_LEVEL="warning",
        EVENTLY_RATE_LIMITS="off",
        # no price ticks over whatever the bench database holds while measuring
        EVENTLY_PRICING_INTERVAL_SECONDS="3600",
    )
    # ``evently serve`` with the URLs given: one worker, run in the process itself (so its
    # pid is the one sampled). Pinned to CPU 0 at once, while the interpreter is still
    # starting and has no other thread: threads it starts later inherit the pinning.
    cmd = [sys.executable, "-m", module, "serve", "--port", str(port), "--workers", "1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    os.sched_setaffinity(proc.pid, {0})
    return proc


def _start_bare(args: argparse.Namespace, prefix: str, event_id: uuid.UUID, port: int) -> Any:
    env = dict(os.environ, BARE_CPUS="0")
    cmd = [sys.executable, "-m", "loadtest.bare", args.redis_url, prefix, str(event_id)]
    return subprocess.Popen([*cmd, str(port), str(args.tick_ms)], env=env, stdout=subprocess.PIPE)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, and SIGKILL if it has not stopped within 10 s (a hub whose shutdown hangs
    must not outlive the benchmark nor keep it from cleaning up)."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        print(f"  process {proc.pid} did not stop within 10 s of SIGTERM: killed")
        proc.kill()
        proc.wait()


async def _wait_port(port: int, proc: subprocess.Popen[bytes] | None) -> None:
    for _ in range(400):
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("the server process died")
        await asyncio.sleep(0.05)
    raise RuntimeError("the server did not start")


async def _drive(
    inventory: Inventory,
    event_id: uuid.UUID,
    n_seats: int,
    rate: float,
    duration: float,
    front_rows: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seat changes at ``rate``/s for ``duration`` s: a hold of a random free seat (with
    ``front_rows``, of the best seats of ``fanout_reco``'s venue while one is free) or the
    release of the latest hold.

    Returns (seq, sent, answered) per change: the wall clock just before the script was
    sent and just after Redis answered. The change was committed between the two; the
    latency is counted from ``sent`` (it can only overstate), and the spread between the
    two stamps is reported so a late-scheduled driver cannot hide latency.
    """
    held: dict[int, uuid.UUID] = {}
    free = list(range(n_seats))
    hot = fanout_reco.front_row(n_seats) if front_rows else set()
    front = [seat for seat in free if seat in hot]
    free = [seat for seat in free if seat not in hot]
    random.shuffle(free)
    seqs: list[int] = []
    sent: list[float] = []
    stamps: list[float] = []
    user = uuid.uuid4()
    start = time.monotonic()
    k = 0
    while (now := time.monotonic()) - start < duration:
        due = start + k / rate
        if due > now:
            await asyncio.sleep(due - now)
        k += 1
        sent.append(time.time())
        if held and (len(held) > n_seats // 2 or random.random() < 0.5):
            seat, hold_id = held.popitem()
            released = await inventory.release(event_id, hold_id, mode=ReleaseMode.FORCE)
            assert isinstance(released, Released), released
            seq = released.seq
            (front if seat in hot else free).append(seat)
        else:
            if front:  # a random one of them to the end, to be popped
                pick = random.randrange(len(front))
                front[pick], front[-1] = front[-1], front[pick]
            seat = (front or free).pop()
            hold_id = uuid.uuid4()
            placed = await inventory.place_hold(
                event_id, HoldRequest(hold_id, user, HoldKind.GROUP, [seat], [100], 600_000, None)
            )
            assert isinstance(placed, HoldPlaced), placed
            seq = placed.seq
            held[seat] = hold_id
        stamps.append(time.time())
        seqs.append(seq)
    return np.array(seqs, dtype=np.int64), np.array(sent), np.array(stamps)


def _listener(port: int) -> psutil.Process | None:
    """The local process listening on ``port`` (Redis), to report its CPU; None if unknown."""
    with contextlib.suppress(psutil.Error, StopIteration):
        return psutil.Process(
            next(
                c.pid
                for c in psutil.net_connections("tcp")
                if c.laddr and c.laddr.port == port and c.status == "LISTEN" and c.pid
            )
        )
    return None


def _side_times(sides: dict[str, list[psutil.Process]]) -> dict[str, float]:
    out = {}
    for name, procs in sides.items():
        total = 0.0
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                total += t.user + t.system
        out[name] = total
    return out


def _cpu_times() -> dict[str, list[int]]:
    """Per-CPU jiffies from /proc/stat (user, nice, system, idle, iowait, irq, softirq, steal)."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            name, *fields = line.split()
            if name.startswith("cpu") and name != "cpu":
                out[name] = [int(x) for x in fields[:8]]
    return out


def _cpu_split(before: dict[str, list[int]], after: dict[str, list[int]]) -> str:
    """How each core spent the run: the hub's core and the clients' core side by side."""
    parts = []
    for name, end in after.items():
        d = [b - a for a, b in zip(before[name], end, strict=True)]
        total = max(sum(d), 1)
        user, nice, system, idle, iowait, irq, softirq, steal = (100 * x / total for x in d)
        parts.append(
            f"{name} user={user + nice:.0f}% sys={system:.0f}% softirq={softirq + irq:.0f}%"
            f" idle={idle + iowait:.0f}% steal={steal:.0f}%"
        )
    return "; ".join(parts)


class Sampler:
    """CPU% and peak RSS of a process, sampled while a run goes on."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.rss = 0
        self.cpu: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        self.proc.cpu_percent(None)
        while True:
            await asyncio.sleep(1.0)
            self.cpu.append(self.proc.cpu_percent(None))
            self.rss = max(self.rss, self.proc.memory_info().rss)

    def __enter__(self) -> Sampler:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def _one_run(
    args: argparse.Namespace,
    label: str,
    port: int,
    server_pid: int,
    inventory: Inventory,
    event_id: uuid.UUID,
    hellos: list[bytes] | None = None,
) -> dict[str, Any]:
    path = f"/ws/events/{event_id}"
    ctx = mp.get_context("spawn")
    per = [
        args.watchers // args.clients + (1 if i < args.watchers % args.clients else 0)
        for i in range(args.clients)
    ]
    pipes, procs = [], []
    first = 0
    for count in per:
        parent, child = ctx.Pipe()
        proc = ctx.Process(
            target=watcher_process,
            args=(
                (
                    "127.0.0.1",
                    port,
                    path,
                    count,
                    first,
                    args.subprotocol,
                    child,
                    {1},
                    hellos[first : first + count] if hellos else None,
                ),
            ),
        )
        proc.start()
        pipes.append(parent)
        procs.append(proc)
        first += count
    failed = 0
    for pipe in pipes:
        _, n_failed, example = await asyncio.to_thread(pipe.recv)
        failed += n_failed
        if n_failed:
            print(f"  {label}: {n_failed} watchers failed to connect, e.g. {example}")
    server = psutil.Process(server_pid)
    rss_connected = server.memory_info().rss
    clients_cpu = [psutil.Process(p.pid) for p in procs]
    for c in clients_cpu:
        c.cpu_percent(None)
    if args.idle:
        await asyncio.sleep(args.duration)
        seqs, sent, stamps = np.array([], dtype=np.int64), np.array([]), np.array([])
        sampler_rss, sampler_cpu = server.memory_info().rss, [server.cpu_percent(None)]
    else:
        # CPU while driving only (not the drain after it), per side, in % of one core
        sides = {"server": [server], "watchers": clients_cpu, "driver": [psutil.Process()]}
        redis_proc = _listener(int(args.redis_url.rsplit(":", 1)[1].split("/")[0]))
        if redis_proc is not None:
            sides["redis"] = [redis_proc]
        with Sampler(server_pid) as sampler:
            cpu_before, side_before = _cpu_times(), _side_times(sides)
            t0 = time.monotonic()
            seqs, sent, stamps = await _drive(
                inventory, event_id, args.seats, args.rate, args.duration, args.front_rows
            )
            wall = time.monotonic() - t0
            side_cpu = {
                name: 100 * (end - side_before[name]) / wall
                for name, end in _side_times(sides).items()
            }
            print(
                f"  [{label}] cpu while driving (% of one core): "
                + " ".join(f"{name}={pct:.0f}%" for name, pct in side_cpu.items())
            )
            print(f"  [{label}] cores while driving: {_cpu_split(cpu_before, _cpu_times())}")
            # let the last tick arrive (and, at saturation, the watchers drain their sockets)
            await asyncio.sleep(args.drain + args.tick_ms / 1000)
        sampler_rss, sampler_cpu = sampler.rss, [side_cpu["server"]]
    client_cpu = (
        sum(c.cpu_percent(None) for c in clients_cpu) if args.idle else side_cpu["watchers"]
    )
    records = []
    for pipe in pipes:
        pipe.send("stop")
        records.append((await asyncio.to_thread(pipe.recv))[1])
    for proc in procs:
        proc.join(10)
    return _report(
        label,
        args,
        Changes(seqs=seqs, sent=sent, answered=stamps),
        records,
        failed,
        Footprint(
            rss=sampler_rss, rss_connected=rss_connected, cpu=sampler_cpu, client_cpu=client_cpu
        ),
    )


@dataclass(frozen=True, slots=True)
class Changes:
    """The driven changes, one entry each, in the driver's order: the change's seq, when it
    was sent, and when Redis answered it (wall clock)."""

    seqs: np.ndarray
    sent: np.ndarray
    answered: np.ndarray


@dataclass(frozen=True, slots=True)
class Footprint:
    """What a run cost: the server's peak RSS and its RSS once every watcher connected (bytes),
    its CPU samples and the watcher processes' CPU (% of one core)."""

    rss: int
    rss_connected: int
    cpu: list[float]
    client_cpu: float


def _report(
    label: str,
    args: argparse.Namespace,
    changes: Changes,
    records: list[dict[str, Any]],
    failed: int,
    footprint: Footprint,
) -> dict[str, Any]:
    seqs, sent, answered = changes.seqs, changes.sent, changes.answered
    rss, rss_connected, cpu = footprint.rss, footprint.rss_connected, footprint.cpu
    conn = np.concatenate([np.frombuffer(r["conn"], dtype=np.int32) for r in records])
    frm = np.concatenate([np.frombuffer(r["from"], dtype=np.int64) for r in records])
    seq = np.concatenate([np.frombuffer(r["seq"], dtype=np.int64) for r in records])
    at = np.concatenate([np.frombuffer(r["at"], dtype=np.float64) for r in records])
    # frames sent because of the driven changes: snapshots on join are not deliveries
    frames = sum(r["frames"] - r["snapshots"] for r in records)
    gaps = sum(r["gaps"] for r in records)
    recos = sum(r["recos"] for r in records)
    out: dict[str, Any] = {
        "label": label,
        "watchers": args.watchers,
        "failed": failed,
        "gaps": gaps,
        "hub_rss_mb": max(rss, rss_connected) / 2**20,
        "rss_connected_mb": rss_connected / 2**20,
        "hub_cpu": float(np.mean(cpu)) if cpu else 0.0,
        "client_cpu": footprint.client_cpu,
        "recos_per_s": recos / max(args.duration, 1e-9),
    }
    if len(seqs):
        # every change k has seq seqs[k]; a message (from, seq] covers the changes with
        # seqs in that range, each delivered at the message's receipt time.
        order = np.argsort(seqs)
        seqs, stamps, answered = seqs[order], sent[order], answered[order]
        lo = np.searchsorted(seqs, frm, side="right")
        hi = np.searchsorted(seqs, seq, side="right")
        counts = hi - lo
        # each covered change's position in ``seqs``: lo of its message + its offset
        starts = np.repeat(lo, counts)
        offsets = np.arange(counts.sum()) - np.repeat(counts.cumsum() - counts, counts)
        idx = starts + offsets
        at_each = np.repeat(at, counts)
        latency = (at_each - stamps[idx]) * 1000
        # Where it goes: until the message's first receipt by any watcher (tick wait,
        # pub/sub, flush start), then from that first receipt to this watcher's (the
        # send loop over all watchers, the kernel, the watcher processes).
        _, message_of = np.unique(seq, return_inverse=True)
        first = np.full(message_of.max() + 1 if len(seq) else 0, np.inf)
        np.minimum.at(first, message_of, at)
        to_first = (np.repeat(first[message_of], counts) - stamps[idx]) * 1000
        spread = (at_each - np.repeat(first[message_of], counts)) * 1000
        commit_window = (answered - stamps) * 1000
        if os.environ.get("FANOUT_DEBUG"):
            when = stamps[idx] - stamps[0]
            for second in range(int(args.duration) + 1):
                sel = latency[(when >= second) & (when < second + 1)]
                if len(sel):
                    print(
                        f"  t={second}s n={len(sel)} p50={np.percentile(sel, 50):.0f}"
                        f" p99={np.percentile(sel, 99):.0f}"
                    )
        received = np.zeros(args.watchers, dtype=np.int64)
        np.add.at(received, conn, counts)
        span = float(at.max() - at.min()) if len(at) else 1.0
        out.update(
            changes=len(seqs),
            complete=int((received >= len(seqs)).sum()),
            deliveries_per_s=frames / max(args.duration, 1e-9),
            messages_per_s=len(at) / max(args.duration, 1e-9),
            change_deliveries=int(counts.sum()),
            p50=float(np.percentile(latency, 50)) if len(latency) else float("nan"),
            p95=float(np.percentile(latency, 95)) if len(latency) else float("nan"),
            p99=float(np.percentile(latency, 99)) if len(latency) else float("nan"),
            max=float(latency.max()) if len(latency) else float("nan"),
            span=span,
            to_first=_pcts(to_first),
            spread=_pcts(spread),
            commit_window=_pcts(commit_window),
            from_answer_p99=float(np.percentile(latency - commit_window[idx], 99))
            if len(latency)
            else float("nan"),
        )
    return out


def _pcts(values: np.ndarray) -> tuple[float, float, float]:
    if not len(values):
        return (float("nan"),) * 3
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return float(p50), float(p95), float(p99)


def _fmt(p: tuple[float, float, float]) -> str:
    return "/".join(f"{v:.1f}" for v in p)


def _print(r: dict[str, Any]) -> None:
    print(f"[{r['label']}] watchers={r['watchers']} failed={r['failed']} gaps={r['gaps']}")
    if "changes" in r:
        print(
            f"  changes={r['changes']} watchers_with_every_change={r['complete']}"
            f" frames/s={r['deliveries_per_s']:.0f} (seats frames/s={r['messages_per_s']:.0f})"
            f" latency ms p50={r['p50']:.1f} p95={r['p95']:.1f} p99={r['p99']:.1f}"
            f" max={r['max']:.1f}"
        )
        print(
            f"  p50/p95/p99 ms: change->first receipt {_fmt(r['to_first'])};"
            f" first->this receipt {_fmt(r['spread'])};"
            f" driver send->answer {_fmt(r['commit_window'])}"
            f" (p99 counted from the answer: {r['from_answer_p99']:.1f})"
        )
    if recos := r.get("recos_per_s"):
        print(f"  reco frames/s (after each watcher's first)={recos:.0f}")
    if "changes" in r and r["hub_cpu"] > 0:
        # Robust to a neighbour taking part of the server's core: frames per second of
        # the server's own CPU time (a saturated server's frames/s should match it).
        print(f"  frames per server cpu-second={r['deliveries_per_s'] * 100 / r['hub_cpu']:.0f}")
    print(
        f"  server cpu={r['hub_cpu']:.0f}% rss={r['hub_rss_mb']:.0f} MiB"
        f" (connected, idle: {r['rss_connected_mb']:.0f} MiB) client cpu={r['client_cpu']:.0f}%"
    )


async def run(args: argparse.Namespace) -> int:
    _raise_nofile()
    os.sched_setaffinity(0, {1})
    prefix = f"evently:bench:{uuid.uuid4().hex[:8]}:"
    client = aioredis.Redis.from_url(args.redis_url)
    inventory = Inventory(client, Keys(prefix))
    event_id = uuid.uuid4()
    await inventory.load(event_id, args.seats, [], {})
    results = []
    hub_proc = None
    seeded = None
    hellos = None
    if args.reco or args.venue:
        await _ensure_database(args.database_url)
        users = args.reco_users if args.reco else 0
        seeded, tokens = await fanout_reco.seed(
            args.database_url, BENCH_SECRET, event_id, args.seats, users
        )
        if args.reco:
            hellos = fanout_reco.hellos(args.watchers, tokens, max(args.reco_prefs, 1))
    try:
        if args.url:
            host_port = args.url.split("//", 1)[1]
            port = int(host_port.rsplit(":", 1)[1])
            pid = next(
                c.pid
                for c in psutil.net_connections("tcp")
                if c.laddr and c.laddr.port == port and c.status == "LISTEN"
            )
        else:
            await _ensure_database(args.database_url)
            port = _free_port()
            hub_proc = _start_hub(args, prefix, port)
            await _wait_port(port, hub_proc)
            pid = hub_proc.pid
        label = "hub, reco" if hellos else "hub"
        results.append(await _one_run(args, label, port, pid, inventory, event_id, hellos))
        _print(results[-1])
    finally:
        if hub_proc is not None:
            _stop(hub_proc)
        if seeded is not None:
            await fanout_reco.cleanup(args.database_url, event_id, seeded)
    compare = not (args.no_bare or args.idle or args.reco or args.venue)
    if compare and args.subprotocol == "msgpack":
        port = _free_port()
        event_id = uuid.uuid4()  # a fresh event: the same starting state as the hub's run
        await inventory.load(event_id, args.seats, [], {})
        bare = _start_bare(args, prefix, event_id, port)
        try:
            await _wait_port(port, bare)
            results.append(
                await _one_run(
                    args, "bare websockets.broadcast", port, bare.pid, inventory, event_id
                )
            )
            _print(results[-1])
        finally:
            _stop(bare)
        hub_r, bare_r = results
        if "deliveries_per_s" in hub_r:
            ratio = hub_r["deliveries_per_s"] / max(bare_r["deliveries_per_s"], 1e-9)
            print(f"ratio hub/bare frames/s = {ratio:.2f}")
            per_cpu = (hub_r["deliveries_per_s"] / max(hub_r["hub_cpu"], 1e-9)) / max(
                bare_r["deliveries_per_s"] / max(bare_r["hub_cpu"], 1e-9), 1e-9
            )
            print(f"ratio hub/bare frames per server cpu-second = {per_cpu:.2f}")
    async for key in client.scan_iter(match=f"{prefix}*", count=1000):
        await client.delete(key)
    await client.aclose()
    return 0
