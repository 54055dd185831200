"""One load-generating client process: its share of the buyers (HTTP) and watchers (WebSocket).

Each process runs one uvloop event loop with one aiohttp session (keep-alive connections,
one per concurrent buyer) and the reference ``WatchClient``s from ``loadtest.client``. The
surge command starts several of these (``multiprocessing``, spawn) when one core is not
enough, and talks to them over two queues:

    parent -> child   ("go", phase, start_at, duration, url) | ("stop",) | ("quit",)
    child -> parent   ("ready", i, info) | ("tick", i, figures) | ("result", i, result)
                      | ("failed", i, traceback)

What a process measures (``time.monotonic()``, one clock for every process on the machine):

- every buyer request: kind, start, latency, status and problem ``code``;
- every seat change a buyer caused and was told about (hold 201 -> held, booking 201 ->
  sold, release 204 / cancel 200 -> free): ``(seat idx, code, sent, answered)``;
- on its first few watchers ("probes"), the receipt time of every seat change in every
  ``seats`` message; the report joins the two to get fan-out latency;
- its own CPU%, once a second, so a saturated generator shows in the progress line.

Buyers: registered before the timed phase (Argon2 on the server makes that the slow part),
then loop until the phase ends: hold (chosen seats picked from this process's live seat
mirror, best available, or a group of 2-8), think, then confirm — or let the hold lapse
(half released by ``DELETE``, half abandoned) — think, and sometimes cancel the booking.
A buyer never asks for more than the event's per-user limit allows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
import traceback
from array import array
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from typing import Any

import aiohttp
import msgspec
import psutil
from websockets.exceptions import ConnectionClosed

from loadtest.client import WatchClient

# Request kinds, as stored in the per-request arrays.
HOLD, CONFIRM, RELEASE, CANCEL, CEILING_HOLD = 0, 1, 2, 3, 4
KIND_NAMES = {HOLD: "hold", CONFIRM: "confirm", RELEASE: "release", CANCEL: "cancel"}
KIND_NAMES[CEILING_HOLD] = "ceiling_hold"
FREE, HELD, SOLD = 0, 1, 2  # seat codes of the WebSocket contract
CONFLICT_CODES = frozenset({"seat_unavailable", "sold_out"})
PASSWORD = "surge buyer password"
_encode = msgspec.json.encode
_decode = msgspec.json.decode


def buyer_email(run_token: str, number: int) -> str:
    return f"surge-{run_token}-{number}@example.com"


@dataclass(frozen=True, slots=True)
class ClientPlan:
    """What one client process does (picklable: it crosses the process boundary)."""

    index: int
    base_url: str
    ws_url: str
    event_id: str
    run_token: str
    buyer_ids: tuple[int, ...]  # global buyer numbers of this process
    total_buyers: int
    watchers: int
    probes: int
    mix: tuple[float, float, float]  # chosen, best, group
    cancel_rate: float
    lapse_rate: float
    think_ms: float
    profile: str  # flat | ramp | peak
    max_per_user: int
    register_concurrency: int = 4
    # Tokens issued up front (see loadtest.accounts), one per buyer id; empty: sign up.
    tokens: tuple[str, ...] = ()


@dataclass(slots=True)
class Reply:
    status: int
    body: Any
    code: str | None
    t0: float
    t1: float


@dataclass(slots=True)
class Buyer:
    number: int
    email: str
    token: str = ""
    owned: int = 0  # seats held or booked, as far as this buyer knows


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


def activation_delay(profile: str, number: int, total: int, duration: float) -> float:
    """When buyer ``number`` starts, seconds into the phase.

    flat: everyone within the first second; ramp: evenly over the first half of the run;
    peak: a fifth from the start, the rest all at once at 30% of the run.
    """
    share = number / max(1, total)
    if profile == "ramp":
        return share * duration * 0.5
    if profile == "peak":
        return share if number < total // 5 else duration * 0.3
    return share


def pick_free(seats: bytearray, n: int, rng: random.Random) -> list[int]:
    """A random free seat and up to ``n - 1`` free neighbours after it in seat order."""
    size = len(seats)
    if size == 0:
        return []
    for _ in range(16):
        i = rng.randrange(size)
        if seats[i] == FREE:
            break
    else:
        i = seats.find(FREE, rng.randrange(size))
        if i < 0:
            i = seats.find(FREE)
        if i < 0:
            return []
    out = [i]
    j = i + 1
    while len(out) < n and j < size and seats[j] == FREE:
        out.append(j)
        j += 1
    return out


class ClientProcess:
    """The asyncio side of one client process."""

    def __init__(self, plan: ClientPlan, inbox: Queue[Any], outbox: Queue[Any]) -> None:
        self.plan = plan
        self.inbox = inbox
        self.outbox = outbox
        self.rng = random.Random(plan.index * 7919 + 1)
        self.buyers = [Buyer(n, buyer_email(plan.run_token, n)) for n in plan.buyer_ids]
        self.seat_ids: list[str] = []
        self.idx_of: dict[str, int] = {}
        self.mirror: WatchClient | None = None
        self.watchers: list[WatchClient] = []
        self.probes: list[Probe] = []
        self.closed: Counter[str] = Counter()
        self.proc = psutil.Process()
        self.phase: Phase | None = None

    # --- set-up -------------------------------------------------------------------------

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=None, force_close=False)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            hub = Http(session, self.plan.base_url)
            reply = await hub.call("GET", f"/api/v1/events/{self.plan.event_id}/seats")
            if reply.status != 200:
                raise RuntimeError(f"seat map: {reply.status} {reply.body}")
            self.seat_ids = [str(seat["id"]) for seat in reply.body["seats"]]
            self.idx_of = {sid: i for i, sid in enumerate(self.seat_ids)}
            started = time.monotonic()
            if self.plan.tokens:
                for buyer, token in zip(self.buyers, self.plan.tokens, strict=True):
                    buyer.token = token
            else:
                await self._register(hub)
            register_s = time.monotonic() - started
            started = time.monotonic()
            tasks = await self._connect_watchers()
            info = {
                "register_s": register_s,
                "accounts": len(self.buyers),
                "watchers": len(self.watchers),
                "watch_connect_s": time.monotonic() - started,
            }
            self.proc.cpu_percent(None)
            self.outbox.put(("ready", self.plan.index, info))
            try:
                await self._serve(session)
            finally:
                for task in tasks:
                    task.cancel()
                for client in [*self.watchers, *([self.mirror] if self.mirror else [])]:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(client.close(), 2)

    async def _register(self, hub: Http) -> None:
        gate = asyncio.Semaphore(self.plan.register_concurrency)

        async def one(buyer: Buyer) -> None:
            async with gate:
                body = {"email": buyer.email, "password": PASSWORD, "name": f"Buyer {buyer.number}"}
                for _ in range(5):
                    reply = await hub.call("POST", "/api/v1/auth/register", body=body)
                    if reply.status == 409:  # exists from an earlier attempt: sign in
                        login = {"email": buyer.email, "password": PASSWORD}
                        reply = await hub.call("POST", "/api/v1/auth/login", body=login)
                    if reply.status in (200, 201):
                        buyer.token = reply.body["access_token"]
                        return
                    await asyncio.sleep(0.5)
                raise RuntimeError(f"could not sign up {buyer.email}: {reply.status} {reply.body}")

        await asyncio.gather(*(one(b) for b in self.buyers))

    async def _connect_watchers(self) -> list[asyncio.Task[None]]:
        url = f"{self.plan.ws_url.rstrip('/')}/ws/events/{self.plan.event_id}"
        self.mirror = await WatchClient.open(url)
        gate = asyncio.Semaphore(50)

        async def one() -> WatchClient:
            async with gate:
                return await WatchClient.open(url, open_timeout=30)

        self.watchers = list(await asyncio.gather(*(one() for _ in range(self.plan.watchers))))
        self.probes = [Probe() for _ in range(min(self.plan.probes, len(self.watchers)))]
        tasks = [asyncio.create_task(self._watch(self.mirror, None))]
        for i, client in enumerate(self.watchers):
            probe = self.probes[i] if i < len(self.probes) else None
            tasks.append(asyncio.create_task(self._watch(client, probe)))
        return tasks

    async def _watch(self, client: WatchClient, probe: Probe | None) -> None:
        try:
            while True:
                message = await client.next_seat_message()
                if probe is None:
                    continue
                if message["t"] == "seats":
                    now = time.monotonic()
                    for idx, code in message["changes"]:
                        probe.idx.append(idx)
                        probe.code.append(code)
                        probe.t.append(now)
                else:
                    probe.snapshots += 1
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else "none"
            self.closed[str(code)] += 1

    # --- phases -------------------------------------------------------------------------

    async def _serve(self, session: aiohttp.ClientSession) -> None:
        loop = asyncio.get_running_loop()
        commands: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

        def read_inbox() -> None:
            # A daemon thread, so a blocked get() never keeps the process alive.
            while True:
                command = self.inbox.get()
                loop.call_soon_threadsafe(self._command, commands, command)
                if command[0] == "quit":
                    return

        threading.Thread(target=read_inbox, daemon=True, name="inbox").start()
        while True:
            command = await commands.get()
            if command[0] == "quit":
                return
            if command[0] != "go":
                continue
            _, phase_name, start_at, duration, url, event_id = command
            phase = self.phase = Phase(start_at, duration)
            ticker = asyncio.create_task(self._tick(phase))
            http = Http(session, url)
            if phase_name == "surge":
                work = [self._buyer(http, b, phase) for b in self.buyers]
            elif phase_name == "throughput":  # the hub, back to back, named random seats
                seats = await http.call("GET", f"/api/v1/events/{event_id}/seats")
                ids = [str(seat["id"]) for seat in seats.body["seats"]]
                work = [self._throughput_buyer(http, b, phase, event_id, ids) for b in self.buyers]
            else:  # "ceiling": back-to-back holds against the bare endpoint
                work = [
                    self._ceiling_buyer(http, b, phase, self.plan.event_id) for b in self.buyers
                ]
            await asyncio.gather(*work)
            phase.stop()
            if phase_name == "surge":
                await asyncio.sleep(1.0)  # let the last changes reach the watchers
            ticker.cancel()
            self.outbox.put(("result", self.plan.index, self._result(phase_name, phase)))

    def _command(self, commands: asyncio.Queue[tuple[Any, ...]], command: tuple[Any, ...]) -> None:
        if command[0] == "stop":  # end the running phase early (e.g. sold out)
            if self.phase is not None:
                self.phase.stop()
        else:
            commands.put_nowait(command)

    async def _tick(self, phase: Phase) -> None:
        await asyncio.sleep(max(0.0, phase.start_at - time.monotonic()))
        second = 0
        while True:
            second += 1
            await asyncio.sleep(max(0.0, phase.start_at + second - time.monotonic()))
            live = dict(phase.rec.live)
            phase.rec.live.clear()
            seats = self.mirror.mirror.seats if self.mirror else bytearray()
            figures = {
                "second": second,
                "cpu": self.proc.cpu_percent(None),
                "free": seats.count(FREE),
                "held": seats.count(HELD),
                "sold": seats.count(SOLD),
                "mirror_seq": self.mirror.mirror.seq if self.mirror else None,
                **live,
            }
            self.outbox.put(("tick", self.plan.index, figures))

    def _result(self, name: str, phase: Phase) -> dict[str, Any]:
        result: dict[str, Any] = {
            "phase": name,
            "start_at": phase.start_at,
            "stopped_at": phase.stopped_at,
            **phase.rec.export(),
        }
        if name == "surge":
            mirrors = [w.mirror for w in self.watchers]
            result["probes"] = [p.export() for p in self.probes]
            result["watchers"] = {
                "connected": len(self.watchers),
                "snapshots": sum(m.snapshots for m in mirrors),
                "deltas": sum(m.deltas for m in mirrors),
                "gaps": sum(m.gaps for m in mirrors),
                "stale": sum(m.stale for m in mirrors),
                "closed": dict(self.closed),
            }
            if self.mirror is not None:
                result["mirror"] = (self.mirror.mirror.seq, bytes(self.mirror.mirror.seats))
        return result

    # --- buyers -------------------------------------------------------------------------

    def _free_seats(self) -> tuple[int, int]:
        seats = self.mirror.mirror.seats if self.mirror else bytearray()
        return seats.count(FREE), seats.count(HELD)

    async def _buyer(self, http: Http, buyer: Buyer, phase: Phase) -> None:
        plan, rng, rec = self.plan, self.rng, phase.rec
        think = plan.think_ms / 1000.0
        delay = activation_delay(
            plan.profile, buyer.number, plan.total_buyers, phase.deadline - phase.start_at
        )
        await phase.pause(phase.start_at + delay - time.monotonic())
        event = plan.event_id
        while not phase.stopped.is_set():
            allowance = plan.max_per_user - buyer.owned
            if allowance <= 0:
                return
            free, held = self._free_seats()
            if free == 0:
                if held == 0 and self.mirror and self.mirror.mirror.seq is not None:
                    return  # sold out
                await phase.pause(0.25)
                continue
            roll = rng.random()
            body: dict[str, Any]
            if roll < plan.mix[0]:
                picked = pick_free(
                    self.mirror.mirror.seats if self.mirror else bytearray(),
                    rng.randint(1, min(4, allowance)),
                    rng,
                )
                if not picked:
                    await phase.pause(0.05)
                    continue
                body = {"seat_ids": [self.seat_ids[i] for i in picked]}
            elif roll < plan.mix[0] + plan.mix[1] or allowance < 2:
                body = {"quantity": rng.randint(1, min(4, allowance))}
            else:
                body = {"quantity": rng.randint(2, min(8, allowance))}
            reply = await http.call("POST", f"/api/v1/events/{event}/holds", buyer.token, body)
            conflict = reply.status == 409 and reply.code in CONFLICT_CODES
            rec.request(HOLD, reply, conflict)
            if reply.status != 201:
                if reply.code == "limit_exceeded":
                    return
                await phase.pause(rng.expovariate(4.0 / think) if think else 0)
                continue
            hold_id = reply.body["hold_id"]
            idxs = [self.idx_of[str(s["id"])] for s in reply.body["seats"]]
            rec.changes(idxs, HELD, reply)
            buyer.owned += len(idxs)
            await phase.pause(rng.expovariate(1.0 / think) if think else 0)
            if rng.random() < plan.lapse_rate:
                if rng.random() < 0.5:
                    reply = await http.call("DELETE", f"/api/v1/holds/{hold_id}", buyer.token)
                    rec.request(RELEASE, reply)
                    if reply.status == 204:
                        rec.changes(idxs, FREE, reply)
                        buyer.owned -= len(idxs)
                else:
                    rec.live["abandoned"] += 1
                continue
            reply = await self._confirm(http, buyer, hold_id)
            rec.request(CONFIRM, reply)
            if reply.status != 201:
                await phase.pause(rng.expovariate(1.0 / think) if think else 0)
                continue
            booking_id = str(reply.body["id"])
            rec.bookings[booking_id] = [[str(s["id"]) for s in reply.body["seats"]], False]
            rec.changes(idxs, SOLD, reply)
            await phase.pause(rng.expovariate(1.0 / think) if think else 0)
            if rng.random() < plan.cancel_rate and not phase.stopped.is_set():
                path = f"/api/v1/bookings/{booking_id}/cancel"
                reply = await http.call("POST", path, buyer.token)
                rec.request(CANCEL, reply)
                if reply.status == 200:
                    rec.bookings[booking_id][1] = True
                    rec.changes(idxs, FREE, reply)
                    buyer.owned -= len(idxs)
                elif reply.status == 0 or reply.status >= 500:
                    rec.bookings[booking_id][1] = None  # outcome unknown (see audit)
                await phase.pause(rng.expovariate(1.0 / think) if think else 0)

    async def _confirm(self, http: Http, buyer: Buyer, hold_id: str) -> Reply:
        """POST /bookings with an Idempotency-Key, retried once if the connection broke
        (a keep-alive connection the server closed): the key makes the retry safe."""
        key = {"Idempotency-Key": hold_id}
        body = {"hold_id": hold_id}
        reply = await http.call("POST", "/api/v1/bookings", buyer.token, body, key)
        if reply.status == 0:
            retry = await http.call("POST", "/api/v1/bookings", buyer.token, body, key)
            reply = Reply(retry.status, retry.body, retry.code, reply.t0, retry.t1)
        return reply

    async def _ceiling_buyer(self, http: Http, buyer: Buyer, phase: Phase, event_id: str) -> None:
        """Back-to-back holds of the mix's sizes against one event: the ceiling endpoint's,
        or a hub event large enough not to sell out (the like-for-like hub figure)."""
        plan, rng, rec = self.plan, self.rng, phase.rec
        await phase.pause(phase.start_at + rng.random() * 0.5 - time.monotonic())
        path = f"/api/v1/events/{event_id}/holds"
        while not phase.stopped.is_set():
            roll = rng.random()
            if roll < plan.mix[0] + plan.mix[1]:
                quantity = rng.randint(1, 4)
            else:
                quantity = rng.randint(2, 8)
            reply = await http.call("POST", path, buyer.token, {"quantity": quantity})
            rec.request(CEILING_HOLD, reply, reply.status == 409)
            if time.monotonic() >= phase.deadline:
                phase.stop()

    async def _throughput_buyer(
        self, http: Http, buyer: Buyer, phase: Phase, event_id: str, seat_ids: list[str]
    ) -> None:
        """Back-to-back holds of one or two random named seats of a large hub event: the
        hub's hold path doing the same job as the ceiling's random-seat holds (best
        available would add a whole-map choice per hold, a different job)."""
        rng, rec = self.rng, phase.rec
        await phase.pause(phase.start_at + rng.random() * 0.5 - time.monotonic())
        path = f"/api/v1/events/{event_id}/holds"
        while not phase.stopped.is_set():
            body = {"seat_ids": rng.sample(seat_ids, rng.randint(1, 2))}
            reply = await http.call("POST", path, buyer.token, body)
            rec.request(CEILING_HOLD, reply, reply.status == 409)
            if time.monotonic() >= phase.deadline:
                phase.stop()


def client_main(plan: ClientPlan, inbox: Queue[Any], outbox: Queue[Any]) -> None:
    """Entry point of a client process."""
    import uvloop

    try:
        uvloop.run(ClientProcess(plan, inbox, outbox).run())
    except BaseException:
        outbox.put(("failed", plan.index, traceback.format_exc()))
        raise
