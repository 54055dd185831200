"""The soak's mixed load, in one event loop: buyers, surge buyers, browsers, watchers and a
waiting-room crowd per on-sale.

- Buyers hold (best available, or named seats picked from the seat list), think, confirm
  (a fifth of them with the run's discount code) or let the hold lapse (released or
  abandoned), and sometimes cancel a booking later. Surge buyers do the same without
  thinking, only while a surge is on.
- Browsers read the event list, an event and its seat map.
- Watchers keep a seat mirror of the current event over ``/ws/events/{id}``
  (``loadtest.client``), reconnect when dropped, and count any snapshot whose ``seq`` is
  below one they saw before for that event (DESIGN.md §5: never backwards, also across a
  Redis restart).
- An on-sale: the admin makes an event and turns its waiting room on; a crowd joins the
  queue, polls its place, and books with its admission token once admitted.

Every request goes through ``Load.call``, which waits while the load is paused (the soak
pauses it to check its invariants on a still system) and tallies the answer by kind and
status. A request without an answer within the client's timeout (15 s, past the hub's
10 s request timeout) is counted as a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from websockets.exceptions import WebSocketException

from loadtest.client import WatchClient
from loadtest.records import Http, Reply
from loadtest.surge import venue_sections

CLIENT_TIMEOUT_S = 15.0
DISCOUNT_SHARE = 0.2  # confirmations that use the run's discount code


@dataclass
class Tally:
    """Answers of one sampling interval: ``kind status`` counts and latencies per kind."""

    started: float = field(default_factory=time.monotonic)
    answers: Counter[str] = field(default_factory=Counter)
    latency: dict[str, list[float]] = field(default_factory=dict)

    def add(self, kind: str, reply: Reply) -> None:
        status = str(reply.status) if reply.status else f"0:{reply.code}"
        self.answers[f"{kind} {status}"] += 1
        self.latency.setdefault(kind, []).append(reply.t1 - reply.t0)

    def figures(self, until: float) -> dict[str, Any]:
        """Per-second rates and latency percentiles of the interval."""
        seconds = max(1e-3, until - self.started)
        ok = errors = conflicts = hangs = 0
        for key, n in self.answers.items():
            kind, status = key.split(" ", 1)
            if status.startswith("2"):
                ok += n
            elif status.startswith("0:") and "Timeout" in status:
                hangs += n
            elif status.startswith(("0", "5")):
                errors += n
            else:
                conflicts += n  # 4xx: conflicts, lapsed holds, not admitted
        out: dict[str, Any] = {
            "ok_per_s": ok / seconds,
            "errors_per_s": errors / seconds,
            "refused_per_s": conflicts / seconds,
            "hangs": hangs,
            "bookings_per_s": self.answers["confirm 201"] / seconds,
        }
        for kind in ("hold", "confirm", "browse"):
            values = self.latency.get(kind)
            out[f"{kind}_p99_ms"] = float(np.percentile(values, 99)) * 1000 if values else None
        return out


@dataclass
class Shape:
    """How much load: the soak's flags."""

    buyers: int
    surge_buyers: int
    browsers: int
    watchers: int
    queue_buyers: int
    think_s: float
    cancel_rate: float
    lapse_rate: float
    seats: int
    onsale_seats: int


@dataclass
class EventRef:
    id: str
    seat_ids: list[str]


@dataclass
class WatchStats:
    open: int = 0
    connects: int = 0
    dropped: int = 0
    connect_failed: int = 0
    snapshots: int = 0
    seq_backwards: int = 0
    gaps: int = 0


class Load:
    """The running load; see the module docstring."""

    def __init__(
        self, http: Http, ws_url: str, admin_token: str, tokens: list[str], shape: Shape
    ) -> None:
        self.http = http
        self.ws_url = ws_url
        self.admin_token = admin_token
        self.shape = shape
        self.rng = random.Random(20261205)
        n = shape.buyers + shape.surge_buyers
        self.buyer_tokens = tokens[:n]
        self.queue_tokens = tokens[n:]
        self.gate = asyncio.Event()
        self.gate.set()
        self.surge = asyncio.Event()
        self.stopping = False
        self.inflight = 0
        self.idle = asyncio.Event()  # set while no request is in flight
        self.idle.set()
        self.tally = Tally()
        self.totals: Counter[str] = Counter()
        self.events: list[str] = []  # every event of the run, in order
        self.current: EventRef | None = None
        # booking id -> [event id, seat ids, cancelled: True | False | None (unknown)]
        self.bookings: dict[str, list[Any]] = {}
        self.watch = WatchStats()
        self.mirrors: dict[int, tuple[str, WatchClient]] = {}
        self.queue: Counter[str] = Counter()
        self.tasks: set[asyncio.Task[None]] = set()
        self.discount_code: str | None = None
        # kind -> (sent, answered) of the latest 201 of that kind
        self.last_ok: dict[str, tuple[float, float]] = {}

    # --- requests -------------------------------------------------------------------------

    async def call(
        self,
        kind: str,
        method: str,
        path: str,
        token: str | None = None,
        body: Any = None,
        extra: dict[str, str] | None = None,
    ) -> Reply:
        await self.gate.wait()
        self.inflight += 1
        self.idle.clear()
        try:
            reply = await self.http.call(method, path, token, body, extra)
        finally:
            self.inflight -= 1
            if not self.inflight:
                self.idle.set()
        self.tally.add(kind, reply)
        self.totals[f"{kind} {reply.status or reply.code}"] += 1
        if reply.status == 201 and kind in ("hold", "confirm"):
            self.last_ok[kind] = (reply.t0, reply.t1)
        return reply

    async def pause(self) -> float:
        """Stop sending and wait for every request in flight; returns the seconds it took."""
        started = time.monotonic()
        self.gate.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.idle.wait(), CLIENT_TIMEOUT_S + 5)
        return time.monotonic() - started

    def resume(self) -> None:
        self.gate.set()

    async def first_ok_after(self, kind: str, since: float, within: float) -> float | None:
        """Seconds from ``since`` until a ``kind`` request sent after it was answered 201
        (None: none within ``within`` seconds)."""
        deadline = since + within
        while time.monotonic() < deadline:
            sent, answered = self.last_ok.get(kind, (0.0, 0.0))
            if sent >= since:
                return answered - since
            await asyncio.sleep(0.1)
        return None

    def take_tally(self) -> dict[str, Any]:
        now = time.monotonic()
        figures = self.tally.figures(now)
        self.tally = Tally(started=now)
        return figures

    # --- events ---------------------------------------------------------------------------

    async def create_discount_code(self, code: str, percent: int) -> None:
        """A code for a share of the confirmations, so that the money check sees discounts."""
        reply = await self.http.call(
            "POST",
            "/api/v1/discount-codes",
            self.admin_token,
            {"code": code, "percent": percent, "max_uses": 1_000_000_000},
        )
        if reply.status != 201:
            raise RuntimeError(f"discount code: {reply.status} {reply.body}")
        self.discount_code = code

    async def create_event(self, name: str, seats: int, max_per_user: int) -> EventRef:
        venue = await self.http.call(
            "POST",
            "/api/v1/venues",
            self.admin_token,
            {"name": f"Soak venue {name}", "city": "Porto", "sections": venue_sections(seats)},
        )
        if venue.status != 201:
            raise RuntimeError(f"venue: {venue.status} {venue.body}")
        starts = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
        event = await self.http.call(
            "POST",
            "/api/v1/events",
            self.admin_token,
            {
                "name": f"Soak {name}",
                "category": "concert",
                "venue_id": venue.body["id"],
                "starts_at": starts.isoformat(),
                "max_tickets_per_user": max_per_user,
            },
        )
        if event.status != 201:
            raise RuntimeError(f"event: {event.status} {event.body}")
        event_id = str(event.body["id"])
        seat_map = await self.http.call("GET", f"/api/v1/events/{event_id}/seats")
        if seat_map.status != 200:
            raise RuntimeError(f"seats: {seat_map.status} {seat_map.body}")
        self.events.append(event_id)
        return EventRef(event_id, [str(s["id"]) for s in seat_map.body["seats"]])

    async def next_main_event(self) -> None:
        """A fresh event for the buyers when the current one is three quarters gone."""
        if self.current is not None:
            reply = await self.call("browse", "GET", f"/api/v1/events/{self.current.id}")
            if reply.status != 200:
                return
            availability = reply.body["availability"]
            if availability["available"] > availability["total"] // 4:
                return
        self.current = await self.create_event(
            f"main {len(self.events) + 1}", self.shape.seats, 1000
        )

    # --- the actors -----------------------------------------------------------------------

    def start(self) -> None:
        shape = self.shape
        for token in self.buyer_tokens[: shape.buyers]:
            self._spawn(self._buyer(token, surge_only=False))
        for token in self.buyer_tokens[shape.buyers :]:
            self._spawn(self._buyer(token, surge_only=True))
        for _ in range(shape.browsers):
            self._spawn(self._browser())
        for index in range(shape.watchers):
            self._spawn(self._watcher(index))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def stop(self) -> None:
        self.stopping = True
        self.gate.set()
        self.surge.set()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)

    def _think(self, fast: bool) -> float:
        mean = 0.02 if fast else self.shape.think_s
        return self.rng.expovariate(1 / mean)

    async def _buyer(self, token: str, surge_only: bool) -> None:
        while not self.stopping:
            if surge_only:
                await self.surge.wait()
            event = self.current
            if event is None:
                await self._sleep(0.5)
                continue
            await self.purchase(token, event, fast=surge_only)
            await self._sleep(self._think(surge_only))

    async def purchase(
        self, token: str, event: EventRef, fast: bool, admission: str | None = None
    ) -> str | None:
        """Hold, then confirm, lapse or give up; sometimes cancel. Returns the booking id."""
        extra = {"X-Admission-Token": admission} if admission else None
        if self.rng.random() < 0.7 or not event.seat_ids:
            body: dict[str, Any] = {"quantity": self.rng.randint(1, 4)}
        else:
            body = {"seat_ids": self.rng.sample(event.seat_ids, self.rng.randint(1, 2))}
        path = f"/api/v1/events/{event.id}/holds"
        hold = await self.call("hold", "POST", path, token, body, extra)
        if hold.status != 201:
            if hold.status == 0 or hold.status >= 500:
                await self._sleep(0.5)
            return None
        hold_id = str(hold.body["hold_id"])
        await self._sleep(self._think(fast))
        if self.rng.random() < self.shape.lapse_rate:
            if self.rng.random() < 0.5:
                await self.call("release", "DELETE", f"/api/v1/holds/{hold_id}", token)
            return None
        key = {"Idempotency-Key": hold_id}
        confirm: dict[str, Any] = {"hold_id": hold_id}
        if self.discount_code and self.rng.random() < DISCOUNT_SHARE:
            confirm["discount_code"] = self.discount_code
        booking = await self.call("confirm", "POST", "/api/v1/bookings", token, confirm, key)
        if booking.status == 0:  # no answer: the key makes the retry safe
            booking = await self.call("confirm", "POST", "/api/v1/bookings", token, confirm, key)
        if booking.status != 201:
            return None
        booking_id = str(booking.body["id"])
        seats = [str(s["id"]) for s in booking.body["seats"]]
        self.bookings[booking_id] = [event.id, seats, False]
        if self.rng.random() < self.shape.cancel_rate:
            await self._sleep(self._think(fast))
            path = f"/api/v1/bookings/{booking_id}/cancel"
            cancel = await self.call("cancel", "POST", path, token)
            if cancel.status == 200:
                self.bookings[booking_id][2] = True
            elif cancel.status == 0 or cancel.status >= 500:
                self.bookings[booking_id][2] = None  # outcome unknown
        return booking_id

    async def _browser(self) -> None:
        while not self.stopping:
            event = self.current
            await self.call("browse", "GET", "/api/v1/events?page=1&size=20")
            if event is not None:
                await self.call("browse", "GET", f"/api/v1/events/{event.id}")
                await self.call("browse", "GET", f"/api/v1/events/{event.id}/seats")
            await self._sleep(self._think(False) * 2)

    async def _watcher(self, index: int) -> None:
        highest: dict[str, int] = {}  # event -> the highest seq this watcher saw
        while not self.stopping:
            event = self.current
            if event is None:
                await self._sleep(0.5)
                continue
            try:
                client = await WatchClient.open(
                    f"{self.ws_url}/ws/events/{event.id}", open_timeout=10
                )
            except (OSError, TimeoutError, WebSocketException):
                self.watch.connect_failed += 1
                await self._sleep(1.0)
                continue
            self.watch.connects += 1
            self.watch.open += 1
            self.mirrors[index] = (event.id, client)
            try:
                await self._watch(client, event.id, highest)
            except (OSError, WebSocketException):
                self.watch.dropped += 1
            finally:
                self.watch.open -= 1
                self.mirrors.pop(index, None)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.close(), 2)
            await self._sleep(0.5)

    async def _watch(self, client: WatchClient, event_id: str, highest: dict[str, int]) -> None:
        mirror = client.mirror
        while not self.stopping and self.current is not None and self.current.id == event_id:
            try:
                message = await asyncio.wait_for(client.recv(), 2.0)
            except TimeoutError:
                continue
            kind = message.get("t")
            if kind == "snapshot":
                self.watch.snapshots += 1
                if int(message["seq"]) < highest.get(event_id, 0):
                    self.watch.seq_backwards += 1
            gaps = mirror.gaps
            if mirror.on_message(message):
                await client.send({"t": "resync"})
            self.watch.gaps += mirror.gaps - gaps
            if mirror.seq is not None:
                highest[event_id] = max(highest.get(event_id, 0), mirror.seq)

    def mirror_views(self) -> list[tuple[str, int | None, int]]:
        """(event, seq, sold seats) of every open watcher's mirror."""
        return [
            (event_id, c.mirror.seq, c.mirror.seats.count(2))
            for event_id, c in list(self.mirrors.values())
        ]

    # --- the on-sale ----------------------------------------------------------------------

    async def on_sale(self, number: int, admit_per_second: float, lifetime: float) -> str:
        """Make an event, turn its waiting room on (opening in 2 s) and send the crowd."""
        event = await self.create_event(f"on-sale {number}", self.shape.onsale_seats, 4)
        opens = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
        room = await self.call(
            "admin",
            "PUT",
            f"/api/v1/events/{event.id}/waiting-room",
            self.admin_token,
            {"opens_at": opens.isoformat(), "admit_per_second": admit_per_second,
             "session_seconds": 120},
        )  # fmt: skip
        self.queue["rooms_on" if room.status == 200 else f"room_refused_{room.status}"] += 1
        deadline = time.monotonic() + lifetime
        for token in self.queue_tokens:
            self._spawn(self._queue_buyer(token, event, deadline))
        return event.id

    async def _queue_buyer(self, token: str, event: EventRef, deadline: float) -> None:
        """Join, poll the place every second (joining again after ``expired``, or when the
        place is gone: Redis lost it), book once admitted. A 404 on joining means no room is
        on (it was turned off, or lost with Redis): then the buyer books without a token."""
        path = f"/api/v1/events/{event.id}/queue"
        await self._sleep(self.rng.random() * 2)
        status: str | None = "expired"  # not yet in the queue: join
        admission: str | None = None
        while not self.stopping:
            if time.monotonic() >= deadline:
                self.queue["gave_up"] += 1
                return
            if status in ("expired", None):
                reply = await self.call("queue", "POST", path, token)
                if reply.status == 404:
                    self.queue["room_gone"] += 1
                    break
                self.queue["joined" if reply.status == 201 else f"join_{reply.status}"] += 1
            else:
                reply = await self.call("queue", "GET", path, token)
            if reply.status in (200, 201):
                status = str(reply.body["status"])
                if status == "admitted":
                    admission = str(reply.body["token"])
                    self.queue["admitted"] += 1
                    break
                if status == "sold_out":
                    self.queue["sold_out"] += 1
                    return
            elif reply.status == 404:
                status = None  # our place is gone: join again
            await self._sleep(1.0)
        if self.stopping:
            return
        booked = await self.purchase(token, event, fast=True, admission=admission)
        self.queue["booked" if booked else "not_booked"] += 1
