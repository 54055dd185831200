"""What a buyer does: the plan of one client process and the buyer loops of each phase.

Buyers (signed up, or given tokens, before the timed phase) loop until the phase ends:
hold (chosen seats picked from this process's live seat mirror, best available, or a group
of 2-8), think, then confirm — or let the hold lapse (half released by ``DELETE``, half
abandoned) — think, and sometimes cancel the booking. A buyer never asks for more than the
event's per-user limit allows it. The comparison phases hold back to back without
thinking: the ceiling's endpoint, or the hub on an event too large to sell out.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

from loadtest.client import SeatMirror
from loadtest.records import (
    CANCEL,
    CEILING_HOLD,
    CONFIRM,
    CONFLICT_CODES,
    FREE,
    HELD,
    HOLD,
    RELEASE,
    SOLD,
    Http,
    Phase,
    Reply,
)

PASSWORD = "surge buyer password"


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
    # A waiting-room surge (loadtest.waiters): buyers join in the join_window seconds
    # before the room opens, a late_share of them in as long again after it.
    join_window: float = 0.0
    late_share: float = 0.0


@dataclass(slots=True)
class Buyer:
    """One buyer account of this process and what it holds or owns."""

    number: int
    email: str
    token: str = ""
    owned: int = 0  # seats held or booked, as far as this buyer knows
    admission: str | None = None  # X-Admission-Token, once a waiting room let it in


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


class Shop:
    """The buyers' behaviour in one client process, over its live view of the event."""

    def __init__(
        self, plan: ClientPlan, rng: random.Random, seat_ids: list[str], mirror: SeatMirror
    ) -> None:
        self.plan = plan
        self.rng = rng
        self.seat_ids = seat_ids
        self.idx_of = {sid: i for i, sid in enumerate(seat_ids)}
        self.mirror = mirror

    def _free_seats(self) -> tuple[int, int]:
        seats = self.mirror.seats
        return seats.count(FREE), seats.count(HELD)

    def _think(self, rate: float = 1.0) -> float:
        """A random think time (exponential, mean ``think_ms / rate``); 0 without thinking."""
        think = self.plan.think_ms / 1000.0
        return self.rng.expovariate(rate / think) if think else 0.0

    def _hold_body(self, allowance: int) -> dict[str, Any] | None:
        """The next hold request of the mix; None when no chosen seat is free right now."""
        plan, rng = self.plan, self.rng
        roll = rng.random()
        if roll < plan.mix[0]:
            picked = pick_free(self.mirror.seats, rng.randint(1, min(4, allowance)), rng)
            if not picked:
                return None
            return {"seat_ids": [self.seat_ids[i] for i in picked]}
        if roll < plan.mix[0] + plan.mix[1] or allowance < 2:
            return {"quantity": rng.randint(1, min(4, allowance))}
        return {"quantity": rng.randint(2, min(8, allowance))}

    async def buy(self, http: Http, buyer: Buyer, phase: Phase) -> None:
        """The surge: the buyer arrives as the profile says, then shops."""
        delay = activation_delay(
            self.plan.profile, buyer.number, self.plan.total_buyers, phase.deadline - phase.start_at
        )
        await phase.pause(phase.start_at + delay - time.monotonic())
        await self.shop(http, buyer, phase)

    async def shop(self, http: Http, buyer: Buyer, phase: Phase) -> None:
        """Hold, think, confirm or lapse, think, sometimes cancel; until the phase ends, the
        buyer reaches its limit, or the event is sold out. Holds carry the buyer's
        admission token when a waiting room gave it one."""
        plan, rng, rec = self.plan, self.rng, phase.rec
        admitted = {"X-Admission-Token": buyer.admission} if buyer.admission else None
        while not phase.stopped.is_set():
            allowance = plan.max_per_user - buyer.owned
            if allowance <= 0:
                return
            free, held = self._free_seats()
            if free == 0:
                if held == 0 and self.mirror.seq is not None:
                    return  # sold out
                await phase.pause(0.25)
                continue
            body = self._hold_body(allowance)
            if body is None:
                await phase.pause(0.05)
                continue
            path = f"/api/v1/events/{plan.event_id}/holds"
            reply = await http.call("POST", path, buyer.token, body, admitted)
            conflict = reply.status == 409 and reply.code in CONFLICT_CODES
            rec.request(HOLD, reply, conflict)
            if reply.status != 201:
                if reply.code == "limit_exceeded":
                    return
                await phase.pause(self._think(4.0))
                continue
            hold_id = reply.body["hold_id"]
            idxs = [self.idx_of[str(s["id"])] for s in reply.body["seats"]]
            rec.changes(idxs, HELD, reply)
            buyer.owned += len(idxs)
            await phase.pause(self._think())
            if rng.random() < plan.lapse_rate:
                await self._lapse(http, buyer, phase, hold_id, idxs)
                continue
            reply = await self._confirm(http, buyer, hold_id)
            rec.request(CONFIRM, reply)
            if reply.status != 201:
                await phase.pause(self._think())
                continue
            booking_id = str(reply.body["id"])
            rec.bookings[booking_id] = [[str(s["id"]) for s in reply.body["seats"]], False]
            rec.changes(idxs, SOLD, reply)
            await phase.pause(self._think())
            if rng.random() < plan.cancel_rate and not phase.stopped.is_set():
                await self._cancel(http, buyer, phase, booking_id, idxs)
                await phase.pause(self._think())

    async def _lapse(
        self, http: Http, buyer: Buyer, phase: Phase, hold_id: str, idxs: list[int]
    ) -> None:
        """Let a hold go: released by ``DELETE`` half the time, abandoned otherwise."""
        rec = phase.rec
        if self.rng.random() < 0.5:
            reply = await http.call("DELETE", f"/api/v1/holds/{hold_id}", buyer.token)
            rec.request(RELEASE, reply)
            if reply.status == 204:
                rec.changes(idxs, FREE, reply)
                buyer.owned -= len(idxs)
        else:
            rec.live["abandoned"] += 1

    async def _cancel(
        self, http: Http, buyer: Buyer, phase: Phase, booking_id: str, idxs: list[int]
    ) -> None:
        rec = phase.rec
        reply = await http.call("POST", f"/api/v1/bookings/{booking_id}/cancel", buyer.token)
        rec.request(CANCEL, reply)
        if reply.status == 200:
            rec.bookings[booking_id][1] = True
            rec.changes(idxs, FREE, reply)
            buyer.owned -= len(idxs)
        elif reply.status == 0 or reply.status >= 500:
            rec.bookings[booking_id][1] = None  # outcome unknown (see audit)

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

    async def hold_ceiling(self, http: Http, buyer: Buyer, phase: Phase, event_id: str) -> None:
        """Back-to-back holds of the mix's sizes against the ceiling endpoint's event."""
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

    async def hold_throughput(
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
