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


What its buyers do is ``loadtest.buyers`` (in the ``room`` phase, first
``loadtest.waiters``: join the waiting room's queue and wait to be admitted); what it
records, ``loadtest.records``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
import traceback
from collections import Counter
from multiprocessing.queues import Queue
from typing import Any

import aiohttp
import psutil
from websockets.exceptions import ConnectionClosed

from loadtest.buyers import PASSWORD, Buyer, ClientPlan, Shop, buyer_email
from loadtest.client import SeatMirror, WatchClient
from loadtest.records import FREE, HELD, SOLD, Http, Phase, Probe
from loadtest.waiters import Wait, join_delay, wait_and_buy


class ClientProcess:
    """The asyncio side of one client process."""

    def __init__(self, plan: ClientPlan, inbox: Queue[Any], outbox: Queue[Any]) -> None:
        self.plan = plan
        self.inbox = inbox
        self.outbox = outbox
        self.rng = random.Random(plan.index * 7919 + 1)
        self.buyers = [Buyer(n, buyer_email(plan.run_token, n)) for n in plan.buyer_ids]
        self.seat_ids: list[str] = []
        self.mirror: WatchClient | None = None
        self.watchers: list[WatchClient] = []
        self.probes: list[Probe] = []
        self.closed: Counter[str] = Counter()
        self.proc = psutil.Process()
        self.phase: Phase | None = None
        self.waits: list[Wait] = []

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
        mirror = self.mirror.mirror if self.mirror else SeatMirror()
        shop = Shop(self.plan, self.rng, self.seat_ids, mirror)
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
                work = [shop.buy(http, b, phase) for b in self.buyers]
            elif phase_name == "room":  # buyers through the event's waiting room
                work = self._waiters(shop, http, phase)
            elif phase_name == "throughput":  # the hub, back to back, named random seats
                seats = await http.call("GET", f"/api/v1/events/{event_id}/seats")
                ids = [str(seat["id"]) for seat in seats.body["seats"]]
                work = [shop.hold_throughput(http, b, phase, event_id, ids) for b in self.buyers]
            else:  # "ceiling": back-to-back holds against the bare endpoint
                work = [shop.hold_ceiling(http, b, phase, self.plan.event_id) for b in self.buyers]
            await asyncio.gather(*work)
            phase.stop()
            if phase_name in ("surge", "room"):
                await asyncio.sleep(1.0)  # let the last changes reach the watchers
            ticker.cancel()
            self.outbox.put(("result", self.plan.index, self._result(phase_name, phase)))

    def _waiters(self, shop: Shop, http: Http, phase: Phase) -> list[Any]:
        plan = self.plan
        ws_url = f"{plan.ws_url.rstrip('/')}/ws/events/{plan.event_id}"
        self.waits = [Wait(b.number, self.rng.random() < plan.late_share) for b in self.buyers]
        return [
            wait_and_buy(
                shop,
                http,
                ws_url,
                buyer,
                phase,
                wait,
                join_delay(self.rng, plan.join_window, wait.late),
            )
            for buyer, wait in zip(self.buyers, self.waits, strict=True)
        ]

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
        if name == "room":
            result["waits"] = [wait.export() for wait in self.waits]
        if name in ("surge", "room"):
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


def client_main(plan: ClientPlan, inbox: Queue[Any], outbox: Queue[Any]) -> None:
    """Entry point of a client process."""
    import uvloop

    try:
        uvloop.run(ClientProcess(plan, inbox, outbox).run())
    except BaseException:
        outbox.put(("failed", plan.index, traceback.format_exc()))
        raise
