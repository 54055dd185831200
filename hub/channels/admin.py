"""The admin feed: one ``metrics`` message a second to every admin connection.

One task per process, running only while an admin watches. Each second it reads the
process's counters and latency histograms (in memory: no I/O), checks Redis and
PostgreSQL, asks the attached sources (the sales board, breaker states, the health summary:
whatever the lifespan attached) for their fields, encodes the message once per subprotocol
and writes it to each admin peer without awaiting any.

Rates (``*_per_s``) are over the last second; latency percentiles and error rates are over
the last ``WINDOW_SECONDS`` (a ring of cumulative readings, the newest minus the oldest),
so a quiet second does not blank them. Figures are this process's own (each hub process
serves its own admin connections). The feed sits below the services: what needs the hub
is handed in by the lifespan as a ``Source`` (``attach``), never imported from here.

Cost: reading the counters walks this process's metric samples (a few hundred with every
route's histogram), a millisecond or less; the sources keep their own per-second cost
small (see each). A source that fails or takes longer than ``SOURCE_TIMEOUT_SECONDS`` leaves
its fields out of that message and is logged once per failure spell, not every second.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from prometheus_client import Histogram

from engines.monitoring import delta, quantile
from hub import metrics
from hub.channels import codec
from hub.channels.codec import Encoded, Subprotocol
from hub.channels.fanout import Channels
from hub.channels.peers import Peer
from hub.db import Database
from hub.store import Store

log = structlog.get_logger(__name__)

INTERVAL_SECONDS = 1.0
HEALTH_TIMEOUT_SECONDS = 0.5
SOURCE_TIMEOUT_SECONDS = 0.5
# Latency percentiles and error rates are over this many seconds of readings.
WINDOW_SECONDS = 10
QUANTILES = (0.5, 0.95, 0.99)

#: Fields a source adds to the message, read each second while an admin watches.
Source = Callable[[], Awaitable[Mapping[str, Any]]]


@dataclass(frozen=True, slots=True)
class Reading:
    """This process's cumulative figures at one instant (monotonic seconds ``at``)."""

    at: float
    counters: Mapping[str, float]
    # Cumulative samples per bucket (the last: every sample), summed over label values.
    http_buckets: tuple[float, ...]
    hold_buckets: tuple[float, ...]


def read_counters(channels: Channels) -> Reading:
    """Read this process's counters and latency histograms now (no I/O)."""
    requests = server_errors = client_errors = 0.0
    for family in metrics.HTTP_REQUESTS.collect():
        for sample in family.samples:
            if not sample.name.endswith("_total"):
                continue
            requests += sample.value
            status = sample.labels.get("status", "")
            if status.startswith("5"):
                server_errors += sample.value
            elif status.startswith("4"):
                client_errors += sample.value
    return Reading(
        at=time.monotonic(),
        counters={
            "deliveries": float(channels.deliveries),
            "holds": metrics.total(metrics.HOLDS, outcome="placed"),
            "hold_attempts": metrics.total(metrics.HOLDS),
            "bookings": metrics.total(metrics.BOOKINGS, outcome="confirmed"),
            "booking_attempts": metrics.total(metrics.BOOKINGS),
            "http_requests": requests,
            "http_errors": metrics.total(metrics.HTTP_ERRORS),
            "http_5xx": server_errors,
            "http_4xx": client_errors,
        },
        http_buckets=cumulative_buckets(metrics.HTTP_LATENCY),
        hold_buckets=cumulative_buckets(metrics.HOLD_LATENCY),
    )


def cumulative_buckets(histogram: Histogram) -> tuple[float, ...]:
    """Cumulative counts per bucket of ``metrics.LATENCY_BUCKETS`` plus ``+Inf``, summed over
    every label value of the histogram."""
    index = {float(b): i for i, b in enumerate(metrics.LATENCY_BUCKETS)}
    out = [0.0] * (len(metrics.LATENCY_BUCKETS) + 1)
    for family in histogram.collect():
        for sample in family.samples:
            if not sample.name.endswith("_bucket"):
                continue
            le = sample.labels["le"]
            i = len(metrics.LATENCY_BUCKETS) if le == "+Inf" else index.get(float(le))
            if i is not None:
                out[i] += sample.value
    return tuple(out)


def latency_ms(newer: tuple[float, ...], older: tuple[float, ...]) -> dict[str, Any]:
    """p50/p95/p99 in milliseconds of the samples between two readings, and their number."""
    window = delta(newer, older)
    p50, p95, p99 = (quantile(metrics.LATENCY_BUCKETS, window, q) for q in QUANTILES)
    return {
        "p50_ms": _ms(p50),
        "p95_ms": _ms(p95),
        "p99_ms": _ms(p99),
        "samples": int(window[-1]),
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def window_figures(readings: deque[Reading]) -> dict[str, Any]:
    """Rates over the last second and window figures over the whole ring (at least two
    readings)."""
    new, prev, old = readings[-1], readings[-2], readings[0]
    second = max(new.at - prev.at, 1e-6)
    rates = {k: round((new.counters[k] - prev.counters[k]) / second, 1) for k in new.counters}
    requests = new.counters["http_requests"] - old.counters["http_requests"]
    server = new.counters["http_5xx"] - old.counters["http_5xx"]
    client = new.counters["http_4xx"] - old.counters["http_4xx"]
    return {
        "deliveries_per_s": rates["deliveries"],
        "holds_per_s": rates["holds"],
        "hold_attempts_per_s": rates["hold_attempts"],
        "bookings_per_s": rates["bookings"],
        "booking_attempts_per_s": rates["booking_attempts"],
        "http_requests_per_s": rates["http_requests"],
        "http_errors_per_s": rates["http_errors"],
        "window_seconds": round(new.at - old.at, 1),
        "error_rate": round(server / requests, 4) if requests else None,
        "client_error_rate": round(client / requests, 4) if requests else None,
        "latency": {
            "http": latency_ms(new.http_buckets, old.http_buckets),
            "hold": latency_ms(new.hold_buckets, old.hold_buckets),
        },
    }


class AdminFeed:
    """The ``metrics`` stream of one process to its admin connections."""

    def __init__(self, channels: Channels, store: Store, db: Database) -> None:
        self.channels = channels
        self.store = store
        self.db = db
        self.peers: set[Peer] = set()
        self.sources: dict[str, Source] = {}
        self._failing: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def attach(self, name: str, source: Source) -> None:
        """Add ``source``'s fields to every message from the next one on (``name`` is for
        logs; attaching a name again replaces that source)."""
        self.sources[name] = source

    def join(self, peer: Peer) -> None:
        self.peers.add(peer)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def leave(self, peer: Peer) -> None:
        self.peers.discard(peer)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        readings: deque[Reading] = deque([read_counters(self.channels)], maxlen=WINDOW_SECONDS + 1)
        while self.peers:
            await asyncio.sleep(INTERVAL_SECONDS)
            readings.append(read_counters(self.channels))
            try:
                message = await self.message(readings)
            except Exception:
                log.exception("admin_metrics_failed")
                continue
            encoded: list[Encoded | None] = [None] * len(Subprotocol)
            for peer in list(self.peers):
                enc = encoded[peer.proto] or codec.encode(message, peer.proto)
                encoded[peer.proto] = enc
                if peer.buffered() <= self.channels.backlog:
                    peer.write(enc)

    async def message(self, readings: deque[Reading]) -> dict[str, Any]:
        """The ``metrics`` message from the readings so far (at least two) and a fresh
        health check and read of every source."""
        names = list(self.sources)
        redis_ms, pg_ms, *extras = await asyncio.gather(
            self._redis_ms(), self._pg_ms(), *(self._read(name) for name in names)
        )
        channels = self.channels
        message: dict[str, Any] = {
            "t": "metrics",
            "at": int(time.time() * 1000),
            "connections": sum(len(c.peers) for c in channels.events.values()),
            "admins": len(self.peers),
            "watched_events": len(channels.events),
            "behind": len(channels.behind),
            **window_figures(readings),
            "redis": {"ok": redis_ms is not None, "ms": redis_ms},
            "postgres": {"ok": pg_ms is not None, "ms": pg_ms},
            "pubsub": {"ok": channels.subscriber.up},
        }
        for fields in extras:
            if fields:
                message.update(fields)
        return message

    async def _read(self, name: str) -> Mapping[str, Any] | None:
        try:
            async with asyncio.timeout(SOURCE_TIMEOUT_SECONDS):
                fields = await self.sources[name]()
        except Exception as exc:
            if name not in self._failing:
                self._failing.add(name)
                log.warning("admin_source_failed", source=name, error=repr(exc))
            return None
        if name in self._failing:
            self._failing.discard(name)
            log.info("admin_source_recovered", source=name)
        return fields

    async def _redis_ms(self) -> float | None:
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
                return round(await self.store.ping(), 2)
        except Exception:
            return None

    async def _pg_ms(self) -> float | None:
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
                return round(await self.db.ping(), 2)
        except Exception:
            return None
