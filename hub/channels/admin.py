"""The admin feed: one ``metrics`` message a second to every admin connection.

One task per process, running only while an admin watches; each second it reads the
process's counters, turns them into rates, checks Redis and PostgreSQL, encodes the
message once per subprotocol and writes it to each admin peer without awaiting any.
Figures are this process's (each hub process serves its own admin connections).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import structlog

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


class AdminFeed:
    def __init__(self, channels: Channels, store: Store, db: Database) -> None:
        self.channels = channels
        self.store = store
        self.db = db
        self.peers: set[Peer] = set()
        self._task: asyncio.Task[None] | None = None

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
        previous = self._counters()
        started = time.monotonic()
        while self.peers:
            await asyncio.sleep(INTERVAL_SECONDS)
            now = time.monotonic()
            current = self._counters()
            elapsed = max(now - started, 1e-6)
            rates = {k: round((current[k] - previous[k]) / elapsed, 1) for k in current}
            previous, started = current, now
            try:
                message = await self._message(rates)
            except Exception:
                log.exception("admin_metrics_failed")
                continue
            encoded: list[Encoded | None] = [None] * len(Subprotocol)
            for peer in list(self.peers):
                enc = encoded[peer.proto] or codec.encode(message, peer.proto)
                encoded[peer.proto] = enc
                if peer.buffered() <= self.channels.backlog:
                    peer.write(enc)

    def _counters(self) -> dict[str, float]:
        return {
            "deliveries": float(self.channels.deliveries),
            "holds": metrics.total(metrics.HOLDS, outcome="placed"),
            "hold_attempts": metrics.total(metrics.HOLDS),
            "bookings": metrics.total(metrics.BOOKINGS, outcome="confirmed"),
            "booking_attempts": metrics.total(metrics.BOOKINGS),
            "http_requests": metrics.total(metrics.HTTP_REQUESTS),
            "http_errors": metrics.total(metrics.HTTP_ERRORS),
        }

    async def _message(self, rates: dict[str, float]) -> dict[str, Any]:
        redis_ms, pg_ms = await asyncio.gather(self._redis_ms(), self._pg_ms())
        channels = self.channels
        return {
            "t": "metrics",
            "at": int(time.time() * 1000),
            "connections": sum(len(c.peers) for c in channels.events.values()),
            "admins": len(self.peers),
            "watched_events": len(channels.events),
            "behind": len(channels.behind),
            "deliveries_per_s": rates["deliveries"],
            "holds_per_s": rates["holds"],
            "hold_attempts_per_s": rates["hold_attempts"],
            "bookings_per_s": rates["bookings"],
            "booking_attempts_per_s": rates["booking_attempts"],
            "http_requests_per_s": rates["http_requests"],
            "http_errors_per_s": rates["http_errors"],
            "redis": {"ok": redis_ms is not None, "ms": redis_ms},
            "postgres": {"ok": pg_ms is not None, "ms": pg_ms},
            "pubsub": {"ok": channels.subscriber.up},
        }

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
