"""What one client process records in a timed phase, and the timed HTTP caller that feeds it.

Every buyer request is kept as one row of parallel typed arrays (kind, start, latency,
status: compact enough to cross the process boundary for thousands of requests a second),
every seat change a buyer caused and was told about as ``(seat idx, code, sent, answered)``,
and on probe watchers the receipt time of every seat change. All times are
``time.monotonic()``: one clock for every process on the machine, so the report can join
a buyer's change with a watcher's receipt.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import msgspec

from engines.seats import SeatCode

# Request kinds, as stored in the per-request arrays.
HOLD, CONFIRM, RELEASE, CANCEL, CEILING_HOLD = 0, 1, 2, 3, 4
KIND_NAMES = {HOLD: "hold", CONFIRM: "confirm", RELEASE: "release", CANCEL: "cancel"}
KIND_NAMES[CEILING_HOLD] = "ceiling_hold"
FREE, HELD, SOLD = SeatCode.FREE, SeatCode.HELD, SeatCode.SOLD  # short names, one definition
CONFLICT_CODES = frozenset({"seat_unavailable", "sold_out"})
_encode = msgspec.json.encode
_decode = msgspec.json.decode


@dataclass(slots=True)
class Reply:
    """One answered (or failed: status 0) request, its parsed body and problem code."""

    status: int
    body: Any
    code: str | None
    t0: float
    t1: float


@dataclass(slots=True)
class Recorder:
    """Per-request and per-change records of one phase, plus live counters for the ticks."""

    kind: array[int] = field(default_factory=lambda: array("b"))
    t0: array[float] = field(default_factory=lambda: array("d"))
    latency: array[float] = field(default_factory=lambda: array("d"))
    status: array[int] = field(default_factory=lambda: array("h"))
    errors: Counter[str] = field(default_factory=Counter)
    # seat changes the buyers caused: idx, code, sent, answered
    ch_idx: array[int] = field(default_factory=lambda: array("i"))
    ch_code: array[int] = field(default_factory=lambda: array("b"))
    ch_t0: array[float] = field(default_factory=lambda: array("d"))
    ch_t1: array[float] = field(default_factory=lambda: array("d"))
    # id -> [seat ids, cancelled: True | False | None (a cancel of unknown outcome)]
    bookings: dict[str, list[Any]] = field(default_factory=dict)
    live: Counter[str] = field(default_factory=Counter)

    def request(self, kind: int, reply: Reply, conflict: bool = False) -> None:
        self.kind.append(kind)
        self.t0.append(reply.t0)
        self.latency.append(reply.t1 - reply.t0)
        self.status.append(reply.status)
        if 200 <= reply.status < 300:
            self.live[f"{KIND_NAMES[kind]}_ok"] += 1
        elif conflict:
            self.live["conflicts"] += 1
        else:
            self.live["errors"] += 1
            self.errors[f"{KIND_NAMES[kind]} {reply.status} {reply.code}"] += 1

    def changes(self, idxs: list[int], code: int, reply: Reply) -> None:
        for idx in idxs:
            self.ch_idx.append(idx)
            self.ch_code.append(code)
            self.ch_t0.append(reply.t0)
            self.ch_t1.append(reply.t1)

    def export(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "t0": self.t0,
            "latency": self.latency,
            "status": self.status,
            "errors": dict(self.errors),
            "changes": (self.ch_idx, self.ch_code, self.ch_t0, self.ch_t1),
            "bookings": self.bookings,
        }


class Probe:
    """A watcher that also records when each seat change reached it."""

    def __init__(self) -> None:
        self.idx: array[int] = array("i")
        self.code: array[int] = array("b")
        self.t: array[float] = array("d")
        self.snapshots = 0

    def export(self) -> tuple[array[int], array[int], array[float], int]:
        return self.idx, self.code, self.t, self.snapshots


class Http:
    """A thin JSON-over-HTTP caller that times each request."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.base = base_url.rstrip("/")

    async def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        body: Any = None,
        extra: dict[str, str] | None = None,
    ) -> Reply:
        headers = {"Content-Type": "application/json", **(extra or {})}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = _encode(body) if body is not None else None
        t0 = time.monotonic()
        try:
            async with self.session.request(
                method, self.base + path, data=data, headers=headers
            ) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Reply(0, None, f"transport:{type(exc).__name__}", t0, time.monotonic())
        t1 = time.monotonic()
        parsed = _decode(raw) if raw else None
        code = None
        if status >= 400:
            code = parsed.get("code") if isinstance(parsed, dict) else None
        return Reply(status, parsed, code, t0, t1)


class Phase:
    """Shared state of one timed phase in this process."""

    def __init__(self, start_at: float, duration: float) -> None:
        self.start_at = start_at
        self.deadline = start_at + duration
        self.stopped = asyncio.Event()
        self.stopped_at: float | None = None
        self.rec = Recorder()

    def stop(self) -> None:
        if self.stopped_at is None:
            self.stopped_at = min(time.monotonic(), self.deadline)
        self.stopped.set()

    async def pause(self, seconds: float) -> None:
        """Sleep, waking early when the phase stops."""
        remaining = self.deadline - time.monotonic()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopped.wait(), max(0.0, min(seconds, remaining)))
        if time.monotonic() >= self.deadline:
            self.stop()
