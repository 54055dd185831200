"""Each process's vitals, published for the health report: windows of its own metrics.

Every hub process runs ``vitals_loop``: every ``PUBLISH_SECONDS`` it reads its own
Prometheus metrics — the very samples ``/metrics`` exports (in multiprocess mode a metric's
``collect()`` reads this process's own file) — keeps a ring of cumulative readings in memory,
and publishes two windows of them, ``RECENT_SECONDS`` and ``WINDOW_SECONDS`` (newest reading
minus the oldest inside the window, ``engines.monitoring.delta``: a counter that went back
means a restart, and the whole series counts), with its CPU share and RSS (psutil), its
WebSocket connections and bytes waiting to go out, and its PostgreSQL pool.

Keys: ``health:proc:ID`` (the head: totals and windows, about a kilobyte) and
``health:routes:ID`` (the window per route), each with a TTL of ``PROCESS_TTL_SECONDS``, and
the id in the sorted set ``health:procs`` scored by the time of publication. A process that
stops publishing drops out within the TTL (and its requests out of the window with it). The
id is ``host:pid``, so several apps in one process (tests) publish the same figures once.
Summing every live process's windows (``published``) gives the figures of all workers.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
import psutil
import structlog

from engines.monitoring import delta
from hub import jsonenc, metrics, store
from hub.context import Hub

if TYPE_CHECKING:
    from hub.context import AppHub

log = structlog.get_logger(__name__)

PUBLISH_SECONDS = 2.5
RECENT_SECONDS = 10.0
WINDOW_SECONDS = 300.0
PROCESS_TTL_SECONDS = 15
BOUNDS = metrics.LATENCY_BUCKETS

_decode = msgspec.json.Decoder()


def process_id() -> str:
    """This process's id in the published vitals: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class Reading:
    """This process's cumulative figures at one instant (``at``: monotonic seconds)."""

    at: float
    cpu_seconds: float
    # "METHOD route" -> [requests, 5xx answers, cumulative latency buckets ... , total]
    routes: dict[str, list[float]]
    holds: list[float]
    bookings: dict[str, float]
    caches: dict[str, list[float]]


def read_metrics(cpu_seconds: float) -> Reading:
    """Read this process's request, hold, booking and cache metrics (no I/O).

    In multiprocess mode a metric's ``collect()`` reads this process's own file: summing
    what every process publishes gives what ``/metrics`` aggregates.
    """
    index = {float(b): i for i, b in enumerate(BOUNDS)}
    routes: dict[str, list[float]] = {}

    def route(labels: Mapping[str, str]) -> list[float]:
        key = f"{labels['method']} {labels['route']}"
        found = routes.get(key)
        if found is None:
            found = routes[key] = [0.0] * (len(BOUNDS) + 3)
        return found

    for family in metrics.HTTP_REQUESTS.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                row = route(sample.labels)
                row[0] += sample.value
                if sample.labels["status"].startswith("5"):
                    row[1] += sample.value
    for family in metrics.HTTP_LATENCY.collect():
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                le = sample.labels["le"]
                i = len(BOUNDS) if le == "+Inf" else index.get(float(le))
                if i is not None:
                    route(sample.labels)[2 + i] += sample.value
    holds = [0.0] * (len(BOUNDS) + 1)
    for family in metrics.HOLD_LATENCY.collect():
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                le = sample.labels["le"]
                i = len(BOUNDS) if le == "+Inf" else index.get(float(le))
                if i is not None:
                    holds[i] += sample.value
    bookings: dict[str, float] = {}
    for family in metrics.BOOKINGS.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                outcome = sample.labels["outcome"]
                bookings[outcome] = bookings.get(outcome, 0.0) + sample.value
    caches: dict[str, list[float]] = {}
    for family in metrics.CACHE_LOOKUPS.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                row = caches.setdefault(sample.labels["cache"], [0.0, 0.0])
                row[0 if sample.labels["outcome"] == "hit" else 1] += sample.value
    return Reading(time.monotonic(), cpu_seconds, routes, holds, bookings, caches)


def _since(readings: Sequence[Reading], seconds: float) -> Reading:
    """The reading a window of ``seconds`` ending at the newest one starts from: the newest
    at least that old, else the oldest kept."""
    newest = readings[-1].at
    for reading in reversed(readings):
        if newest - reading.at >= seconds:
            return reading
    return readings[0]


def _window(new: Reading, old: Reading) -> dict[str, Any]:
    """The figures between two readings: totals, and per route."""
    routes: dict[str, list[float]] = {}
    for key, row in new.routes.items():
        diff = delta(row, old.routes.get(key))
        if diff[0] > 0:
            routes[key] = diff
    buckets = [0.0] * (len(BOUNDS) + 1)
    requests = errors = 0.0
    for row in routes.values():
        requests += row[0]
        errors += row[1]
        for i, count in enumerate(row[2:]):
            buckets[i] += count
    bookings = {k: v - old.bookings.get(k, 0.0) for k, v in new.bookings.items()}
    if any(v < 0 for v in bookings.values()):
        bookings = dict(new.bookings)
    caches = {k: delta(v, old.caches.get(k)) for k, v in new.caches.items()}
    return {
        "seconds": round(new.at - old.at, 2),
        "requests": requests,
        "errors": errors,
        "buckets": buckets,
        "holds": delta(new.holds, old.holds),
        "bookings": bookings,
        "caches": caches,
        "routes": routes,
    }


@dataclass(eq=False)
class Vitals:
    """This process's ring of readings and what it publishes (``vitals_loop`` owns one)."""

    hub: AppHub
    id: str = field(default_factory=process_id)
    readings: deque[Reading] = field(default_factory=deque)
    process: psutil.Process = field(default_factory=psutil.Process)

    def read(self) -> Reading:
        cpu = self.process.cpu_times()
        reading = read_metrics(cpu.user + cpu.system)
        self.readings.append(reading)
        while len(self.readings) > 2 and reading.at - self.readings[1].at >= WINDOW_SECONDS:
            self.readings.popleft()
        return reading

    def head(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """What this process publishes: the head and the per-route window."""
        new = self.readings[-1]
        recent = _window(new, _since(self.readings, RECENT_SECONDS))
        window = _window(new, _since(self.readings, WINDOW_SECONDS))
        last = self.readings[-2] if len(self.readings) > 1 else new
        elapsed = new.at - last.at
        cpu = (new.cpu_seconds - last.cpu_seconds) / elapsed * 100 if elapsed > 0 else None
        channels = self.hub.channels
        connections = backlog = 0
        for channel in channels.events.values():
            for peer in channel.peers:
                connections += 1
                backlog += peer.buffered()
        for peer in self.hub.admin_feed.peers:
            backlog += peer.buffered()
        pool = self.hub.db.stats()
        routes = window.pop("routes")
        recent.pop("routes")
        head = {
            "id": self.id,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "at": time.time(),
            "leader": self.hub.leadership.is_leader,
            "cpu_percent": None if cpu is None else round(cpu, 1),
            "rss_bytes": self.process.memory_info().rss,
            "ws": {
                "connections": connections,
                "admins": len(self.hub.admin_feed.peers),
                "backlog_bytes": backlog,
                "behind": len(channels.behind),
                "watched_events": len(channels.events),
            },
            "db_pool": pool,
            "recent": recent,
            "window": window,
        }
        return head, routes

    async def publish(self) -> None:
        head, routes = self.head()
        keys = self.hub.store.keys
        now = time.time()
        async with self.hub.store.client.pipeline(transaction=False) as pipe:
            pipe.set(keys.global_(f"health:proc:{self.id}"), jsonenc.dumps(head))
            pipe.expire(keys.global_(f"health:proc:{self.id}"), PROCESS_TTL_SECONDS)
            pipe.set(
                keys.global_(f"health:routes:{self.id}"),
                jsonenc.dumps(routes),
                ex=PROCESS_TTL_SECONDS,
            )
            pipe.zadd(keys.global_("health:procs"), {self.id: now})
            pipe.zremrangebyscore(keys.global_("health:procs"), "-inf", now - PROCESS_TTL_SECONDS)
            await pipe.execute()


async def vitals_loop(hub: AppHub) -> None:
    """Every process: read and publish this process's vitals every ``PUBLISH_SECONDS``
    (about a millisecond of CPU and one pipelined round trip each)."""
    vitals = Vitals(hub)
    while True:
        try:
            vitals.read()
            await vitals.publish()
        except asyncio.CancelledError:
            raise
        except store.UNAVAILABLE as exc:
            log.warning("health_vitals_unpublished", error=repr(exc))
        except Exception:
            log.exception("health_vitals_failed")
        await asyncio.sleep(PUBLISH_SECONDS)


async def published(hub: Hub, *, routes: bool) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The heads (and with ``routes`` the per-route windows) of every live process."""
    keys = hub.store.keys
    ids = await hub.store.client.zrangebyscore(
        keys.global_("health:procs"), time.time() - PROCESS_TTL_SECONDS, "+inf"
    )
    if not ids:
        return []
    names = [keys.global_(f"health:proc:{as_text(i)}") for i in ids]
    if routes:
        names += [keys.global_(f"health:routes:{as_text(i)}") for i in ids]
    values = await hub.store.client.mget(names)
    found = []
    for n in range(len(ids)):
        head = values[n]
        if head is None:
            continue
        per_route = values[len(ids) + n] if routes else None
        found.append((_decode.decode(head), _decode.decode(per_route) if per_route else {}))
    return found


def as_text(value: object) -> str:
    """A Redis reply as text (bytes decoded as UTF-8)."""
    return value.decode() if isinstance(value, bytes) else str(value)
