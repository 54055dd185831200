"""WebSocket connection caps shared by every hub process: per address and per user.

Idea: each cap is a sorted set in Redis (``ws:cap:{kind}:{who}``) whose members are the
connections it counts, each scored with the time its claim lapses. Taking a place is one
script (``lua/ws_claim.lua``): drop the lapsed members, count, add if under the cap — atomic,
so two processes can never both take the last place. The process that holds a connection
renews the claims of all its connections every ``renew_seconds`` (a heartbeat, one
pipelined ``ZADD`` per set, ``RENEW_SLICE_CAPS`` sets at a time), and forgets connections
with ``ZREM`` as they close: the releases of one moment go out together, one pipeline, so
ten thousand sockets closing at once (a network blip, a restart of a proxy) cost a few
round trips, not ten thousand calls contending for the Redis pool that holds and the
leader's lease need too.

Invariants:
- a connection is counted, in every process's view, from the moment ``claim`` returns it
  until ``release`` (or its process stops);
- a process that dies without releasing (crash, kill, cut off from Redis) stops renewing,
  so its connections stop counting within one lease (``LEASE_SECONDS``): a cap never
  leaks for ever;
- with Redis unreachable, a claim is judged against this process's own connections (the
  caps hold per process until Redis is back) rather than refusing everyone.

Times are the hub processes' clocks (milliseconds since the epoch); a skew between hosts
shortens or lengthens a dead process's lease by the skew, nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import structlog

from hub.store import UNAVAILABLE, Store

log = structlog.get_logger(__name__)

# A claim lapses this long after its last renewal; renewals come three times a lease.
LEASE_SECONDS = 30.0
RENEW_SECONDS = 10.0
# A renewal sends this many caps' commands at a time, then lets the event loop serve
# requests: the 2,500 waiters of one process in a 5,000-buyer surge renewed in one pipeline
# (a ZADD and a PEXPIRE per user's cap) held its loop 160-560 ms every 10 s, and every hold
# that arrived meanwhile waited that long.
RENEW_SLICE_CAPS = 100

_CLAIM = (Path(__file__).resolve().parents[1] / "lua" / "ws_claim.lua").read_text()


class CapKind(enum.Enum):
    IP = "ip"
    USER = "user"


@dataclass(frozen=True, slots=True)
class Claim:
    """One connection's place under one cap."""

    key: str
    member: str


class ConnectionCaps:
    """The caps of one hub process's connections; the lifespan starts and stops it."""

    def __init__(
        self,
        store: Store,
        *,
        lease_seconds: float = LEASE_SECONDS,
        renew_seconds: float = RENEW_SECONDS,
    ) -> None:
        self.client = store.client
        self.keys = store.keys
        self.lease_ms = int(lease_seconds * 1000)
        self.renew_seconds = renew_seconds
        self._claim = store.client.register_script(_CLAIM)
        # member ids are unique across processes: this instance's id, then a counter
        self._instance = uuid.uuid4().hex[:12]
        self._numbers = itertools.count()
        # the members this process holds, by cap key (what the heartbeat renews)
        self._held: dict[str, set[str]] = {}
        self._heartbeat: asyncio.Task[None] | None = None
        # released members Redis has not been told of yet, by cap key, and the task that
        # tells it (at most one at a time)
        self._released: dict[str, set[str]] = {}
        self._forgetting: asyncio.Task[None] | None = None

    def held(self, kind: CapKind, who: str) -> int:
        """How many connections this process counts under one cap."""
        return len(self._held.get(self._key(kind, who), ()))

    async def start(self) -> None:
        """Renew this process's claims from now on."""
        self._heartbeat = asyncio.get_running_loop().create_task(self._renew_forever())

    async def stop(self) -> None:
        """Stop renewing and give back every place still held."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        if self._forgetting is not None:
            await asyncio.gather(self._forgetting, return_exceptions=True)
        held, self._held = self._held, {}
        await self._zrem(held)

    async def claim(self, kind: CapKind, who: str, cap: int) -> Claim | None:
        """Count one more connection of ``who`` if fewer than ``cap`` are counted in all
        processes; None (nothing counted) when the cap is full."""
        key = self._key(kind, who)
        member = f"{self._instance}:{next(self._numbers)}"
        try:
            taken = await self._claim(
                keys=[key], args=[member, _now_ms(), self.lease_ms, cap], client=self.client
            )
        except UNAVAILABLE as exc:
            log.warning("ws_caps_unavailable", kind=kind.value, error=repr(exc))
            taken = len(self._held.get(key, ())) < cap
        if not taken:
            return None
        self._held.setdefault(key, set()).add(member)
        return Claim(key, member)

    def release(self, claim: Claim) -> None:
        """Give the place back. Never awaits (it is called as connections end, also while
        their task is being cancelled); Redis is told in the background."""
        members = self._held.get(claim.key)
        if members is None or claim.member not in members:
            return
        members.discard(claim.member)
        if not members:
            del self._held[claim.key]
        self._released.setdefault(claim.key, set()).add(claim.member)
        if self._forgetting is None:
            self._forgetting = asyncio.get_running_loop().create_task(self._forget())

    def _key(self, kind: CapKind, who: str) -> str:
        return self.keys.global_(f"ws:cap:{kind.value}:{who}")

    async def _forget(self) -> None:
        """Tell Redis of every release so far, in one pipeline, until none is left (the
        releases made during a round go in the next one)."""
        try:
            await asyncio.sleep(0)  # the closes of this moment join the first round
            while self._released:
                released, self._released = self._released, {}
                await self._zrem(released)
        finally:
            self._forgetting = None

    async def _zrem(self, members_by_key: dict[str, set[str]]) -> None:
        if not members_by_key:
            return
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for key, members in members_by_key.items():
                    pipe.zrem(key, *members)
                await pipe.execute()
        except UNAVAILABLE as exc:  # they lapse on their own within a lease
            log.warning(
                "ws_caps_release_failed",
                members=sum(map(len, members_by_key.values())),
                error=repr(exc),
            )

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.renew_seconds)
            try:
                await self.renew()
            except Exception as exc:  # Redis away: the next beat tries again
                log.warning("ws_caps_renew_failed", error=repr(exc))

    async def renew(self) -> None:
        """Push back the lapse of every claim this process holds. A claim that lapsed
        meanwhile (Redis was out of reach for a lease) is added again: the connection is
        still open, so it counts."""
        lapse = _now_ms() + self.lease_ms
        held = list(self._held.items())
        for start in range(0, len(held), RENEW_SLICE_CAPS):
            if start:
                await asyncio.sleep(0)  # (the round trip below awaits too, but may not yield)
            async with self.client.pipeline(transaction=False) as pipe:
                # A cap whose last connection closed since the list was taken has an empty
                # set (the release emptied it): nothing of it to renew.
                for key, members in held[start : start + RENEW_SLICE_CAPS]:
                    if members:
                        pipe.zadd(key, dict.fromkeys(members, lapse))
                        pipe.pexpire(key, self.lease_ms)
                if len(pipe):
                    await pipe.execute()


def _now_ms() -> int:
    return int(time.time() * 1000)
