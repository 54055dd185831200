"""What the soak runs on, and the faults it injects into it.

A rig is private embedded PostgreSQL and Redis (``python -m hub.embedded ROOT``, never the
shared 5432/6379), a TCP proxy in front of each (``loadtest.tcp_proxy``, on a thread of its
own), and a hub (``evently serve --workers 2``) that reaches both servers only through the
proxies. The proxies are what make a server restart invisible to the hub's settings: a
server that comes back on another port is reached at the same proxy address, the way a
service address hides a restarted database in production.

Faults (one at a time, each ending with the rig whole again):

- ``redis``: Redis killed with SIGKILL, its append-only file removed, restarted empty after
  an outage (a new ``hub.embedded`` instance on the same root: it adopts PostgreSQL and
  starts Redis), the proxy pointed at the new port;
- ``postgres``: PostgreSQL stopped (fast shutdown) and, after the outage, started again the
  same way;
- ``worker``: one uvicorn worker killed with SIGKILL; uvicorn's supervisor starts another;
- ``network``: 200 ms added per round trip on one proxy (Redis and PostgreSQL in turn) for
  the outage, then every connection through it cut at once.

Every process is started in a session of its own (a Ctrl-C in the terminal reaches the soak
only, which then stops everything in order) and stopped by PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil

from loadtest.launch import free_port, hub_environment, stop_embedded, stop_process
from loadtest.tcp_proxy import TcpProxy

FAULTS = ("redis", "postgres", "worker", "network")
SERVERS_TIMEOUT = 120.0
READY_TIMEOUT = 90.0
NETWORK_LATENCY_S = 0.1  # per direction: 200 ms per round trip


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None, url
    return port


class ProxyThread:
    """Two TCP proxies (Redis, PostgreSQL) served by an event loop on a thread of their own,
    so that the load's event loop does not delay the hub's traffic to its servers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="soak-proxies")
        self.thread.daemon = True
        self.thread.start()
        self.proxies: dict[str, TcpProxy] = {}

    def _call(self, coro: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def add(self, name: str, target_port: int) -> TcpProxy:
        proxy: TcpProxy = self._call(TcpProxy("127.0.0.1", target_port).start())
        self.proxies[name] = proxy
        return proxy

    def retarget(self, name: str, port: int) -> None:
        self.proxies[name].target_port = port  # read at each new connection

    def latency(self, name: str, seconds: float) -> None:
        self.proxies[name].latency = seconds

    def cut(self, name: str) -> None:
        self.loop.call_soon_threadsafe(self.proxies[name].cut)

    def stop(self) -> None:
        for proxy in self.proxies.values():
            with contextlib.suppress(Exception):
                self._call(proxy.stop(), 10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        if not self.thread.is_alive():
            self.loop.close()


@dataclass
class Servers:
    """The ``hub.embedded`` instances on one root: the first starts both servers; each
    restart after a fault is a new instance that adopts the surviving server and starts the
    missing one. Each instance stops what it started when its standard input closes."""

    root: Path
    instances: list[subprocess.Popen[str]] = field(default_factory=list)
    database_url: str = ""
    redis_url: str = ""

    def start_instance(self) -> None:
        log = open(self.root.parent / "servers.log", "ab")  # kept open for the child's life
        proc = subprocess.Popen(
            [sys.executable, "-m", "hub.embedded", str(self.root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,
        )
        self.instances.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "" when the start failed and the instance exited
        if not line:
            proc.wait(SERVERS_TIMEOUT)
            tail = (self.root.parent / "servers.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the embedded servers did not start:\n{tail}")
        urls = json.loads(line)
        self.database_url, self.redis_url = str(urls["database_url"]), str(urls["redis_url"])

    def redis_pid(self) -> int | None:
        return _pid_in(self.root / "redis" / "redis.pid")

    def postmaster_pid(self) -> int | None:
        return _pid_in(self.root / "postgres" / "postmaster.pid")

    def stop(self) -> None:
        """Newest instance first: each stops the servers it started, by PID."""
        for proc in reversed(self.instances):
            stop_embedded(proc)


def _pid_in(path: Path) -> int | None:
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if psutil.pid_exists(pid) else None


def _wait_dead(pid: int, timeout: float) -> bool:
    """Wait until ``pid`` is gone or a zombie (its parent, an embedded-servers instance,
    reaps it only when it stops); False if it still runs after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


@dataclass
class FaultResult:
    """One injected fault: what, how long the service was degraded, and how long until the
    hub answered ``/readyz`` again after the servers were whole."""

    name: str
    detail: str
    outage_s: float
    recovery_s: float | None
    error: str | None = None
    whole_at: float = 0.0  # time.monotonic() when the servers were whole again
    # Seconds from whole_at to the first hold / booking sent after it and answered 2xx
    # (set by the soak, which sees the load's answers).
    hold_again_s: float | None = None
    booking_again_s: float | None = None

    def line(self) -> str:
        if self.error:
            return f"{self.name}: FAILED to inject ({self.error})"

        def s(value: float | None, none: str) -> str:
            return f"{value:.1f}s" if value is not None else none

        return (
            f"{self.name} ({self.detail}): degraded {self.outage_s:.1f}s, then ready after "
            f"{s(self.recovery_s, 'never')}, a hold after {s(self.hold_again_s, 'none')}, "
            f"a booking after {s(self.booking_again_s, 'none')}"
        )


@dataclass
class Rig:
    """Servers, proxies and the hub of one soak; ``stop()`` undoes everything it started."""

    home: Path
    servers: Servers
    proxies: ProxyThread | None = None
    hub: subprocess.Popen[bytes] | None = None
    url: str = ""
    secret: str = ""
    admin: tuple[str, str] = ("", "")
    prefix: str = ""
    network_turn: int = 0

    @classmethod
    def start(cls, hold_ttl: int, workers: int, ws_cap: int) -> Rig:
        home = Path(tempfile.mkdtemp(prefix="evently-soak-"))
        rig = cls(home, Servers(home / "servers"))
        try:
            rig.servers.root.mkdir(parents=True)
            rig.servers.start_instance()
            rig.proxies = ProxyThread()
            pg = rig.proxies.add("postgres", port_of(rig.servers.database_url))
            rd = rig.proxies.add("redis", port_of(rig.servers.redis_url))
            rig._start_hub(
                pg.url_for(rig.servers.database_url),
                rd.url_for(rig.servers.redis_url),
                hold_ttl,
                workers,
                ws_cap,
            )
        except BaseException:
            rig.stop()
            raise
        return rig

    def _start_hub(
        self, database_url: str, redis_url: str, hold_ttl: int, workers: int, ws_cap: int
    ) -> None:
        token = secrets.token_hex(5)
        self.secret = secrets.token_urlsafe(48)
        self.admin = (f"soak-admin-{token}@example.com", secrets.token_urlsafe(16))
        self.prefix = f"evently:soak{token}:"
        env = hub_environment(
            self.home,
            database_url,
            redis_url,
            self.prefix,
            self.secret,
            self.admin,
            {
                "EVENTLY_RATE_LIMITS": "off",
                "EVENTLY_HOLD_TTL_SECONDS": str(hold_ttl),
                "EVENTLY_WS_MAX_PER_IP": str(ws_cap),
            },
        )
        port = free_port()
        log = open(self.home / "hub.log", "wb")  # kept open for the child's lifetime
        cmd = [sys.executable, "-m", "hub.cli", "serve", "--workers", str(workers)]
        self.hub = subprocess.Popen(
            [*cmd, "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{port}"
        if self.wait_ready(READY_TIMEOUT) is None:
            tail = (self.home / "hub.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the hub did not get ready:\n{tail}")
        # Readiness is per process: wait until every worker has started.
        deadline = time.monotonic() + READY_TIMEOUT
        while len(self.worker_pids()) < workers and time.monotonic() < deadline:
            time.sleep(0.25)

    def wait_ready(self, timeout: float) -> float | None:
        """Seconds until ``/readyz`` answered 200 (None: not within ``timeout``)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.hub is not None and self.hub.poll() is not None:
                return None
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", timeout=3).status_code == 200:
                    return time.monotonic() - started
            time.sleep(0.2)
        return None

    def hub_pids(self) -> list[int]:
        """The hub's supervisor and every process under it."""
        if self.hub is None:
            return []
        try:
            root = psutil.Process(self.hub.pid)
            return [root.pid, *(c.pid for c in root.children(recursive=True))]
        except psutil.NoSuchProcess:
            return []

    def worker_pids(self) -> list[int]:
        """The uvicorn workers: the supervisor's spawned children (not its resource tracker)."""
        if self.hub is None:
            return []
        try:
            children = psutil.Process(self.hub.pid).children()
        except psutil.NoSuchProcess:
            return []
        pids = []
        for child in children:
            with contextlib.suppress(psutil.Error):
                cmdline = " ".join(child.cmdline())
                if "spawn_main" in cmdline and "resource_tracker" not in cmdline:
                    pids.append(child.pid)
        return pids

    # --- faults -------------------------------------------------------------------------

    def inject(self, name: str, outage_s: float) -> FaultResult:
        """Inject fault ``name``, keep it ``outage_s`` seconds, make the rig whole again and
        time the hub's return to ready. Blocking: run it on a thread."""
        started = time.monotonic()
        try:
            detail = getattr(self, f"_fault_{name}")(outage_s)
        except Exception as exc:  # a fault that could not be injected is reported, not fatal
            return FaultResult(name, "", time.monotonic() - started, None, repr(exc))
        whole = time.monotonic()
        recovery = self.wait_ready(60.0)
        return FaultResult(name, detail, whole - started, recovery, whole_at=whole)

    def _fault_redis(self, outage_s: float) -> str:
        assert self.proxies is not None
        pid = self.servers.redis_pid()
        if pid is None:
            raise RuntimeError("no running Redis found")
        os.kill(pid, signal.SIGKILL)
        _wait_dead(pid, 10)
        # Restarted empty: without its append-only file nothing comes back.
        folder = self.servers.root / "redis"
        shutil.rmtree(folder / "appendonlydir", ignore_errors=True)
        for aof in folder.glob("appendonly.aof*"):
            aof.unlink(missing_ok=True)
        time.sleep(outage_s)
        self.servers.start_instance()
        self.proxies.retarget("redis", port_of(self.servers.redis_url))
        return f"SIGKILL pid {pid}, restarted empty"

    def _fault_postgres(self, outage_s: float) -> str:
        assert self.proxies is not None
        pid = self.servers.postmaster_pid()
        if pid is None:
            raise RuntimeError("no running PostgreSQL found")
        os.kill(pid, signal.SIGINT)  # fast shutdown: clients disconnected, then a checkpoint
        if not _wait_dead(pid, 60):
            raise RuntimeError(f"PostgreSQL {pid} did not stop within 60 s")
        time.sleep(outage_s)
        self.servers.start_instance()
        self.proxies.retarget("postgres", port_of(self.servers.database_url))
        return f"stopped pid {pid}, started again"

    def _fault_worker(self, outage_s: float) -> str:
        workers = self.worker_pids()
        if not workers:
            raise RuntimeError("no hub worker found")
        victim = workers[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            now = self.worker_pids()
            if victim not in now and len(now) >= len(workers):
                break
            time.sleep(0.2)
        else:
            raise RuntimeError("the killed worker was not replaced within 60 s")
        return f"SIGKILL worker {victim}, replaced"

    def _fault_network(self, outage_s: float) -> str:
        assert self.proxies is not None
        name = ("redis", "postgres")[self.network_turn % 2]
        self.network_turn += 1
        self.proxies.latency(name, NETWORK_LATENCY_S)
        try:
            time.sleep(outage_s)
        finally:
            self.proxies.latency(name, 0.0)
            self.proxies.cut(name)
        return f"+{2 * NETWORK_LATENCY_S * 1000:.0f} ms per round trip to {name}, then a cut"

    # --- the end --------------------------------------------------------------------------

    def stop(self) -> None:
        """The hub first (it may still write), then the proxies, then the servers; each step
        runs even when an earlier one failed."""
        steps = [self._stop_hub, self._stop_proxies, self.servers.stop, self._remove_home]
        for step in steps:
            try:
                step()
            except Exception as exc:  # cleanup must go on
                print(f"soak: cleanup step failed: {exc!r}", file=sys.stderr)

    def _stop_hub(self) -> None:
        if self.hub is not None:
            stop_process(self.hub)

    def _stop_proxies(self) -> None:
        if self.proxies is not None:
            self.proxies.stop()

    def _remove_home(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)
