"""A waiting-room buyer: joins the event's queue, waits for its turn, then shops with its token.

At its join moment — a uniformly random moment in the ``join_window`` seconds before the
room opens, or, for a ``late_share`` of the buyers, in as long again after the opening — a
waiter opens its own connection to the event's channel and says ``hello`` with its token
(so the hub sends it its personal ``queue`` messages), then joins (``POST
/events/{id}/queue``). It reads the socket until ``admitted`` (then it closes the socket
and shops, ``Shop.shop``, every hold carrying its ``X-Admission-Token``) or ``sold_out``
(it goes home), noting when each ``queue`` message came.

Only if the socket fails (it cannot connect, or it closes before the outcome) does the
waiter poll ``GET /events/{id}/queue`` once a second instead; it is counted as a fallback
and left out of the update figures, which are about the socket's messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from array import array
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import WebSocketException

from loadtest.buyers import Buyer, Shop
from loadtest.client import WatchClient
from loadtest.records import Http, Phase

ADMITTED, SOLD_OUT, UNRESOLVED, JOIN_FAILED = "admitted", "sold_out", "unresolved", "join_failed"
POLL_SECONDS = 1.0
JOIN_RETRIES = 2  # after a broken connection or a 503, as a browser's retry would


@dataclass(slots=True)
class Wait:
    """One waiter's wait, in ``time.monotonic()`` seconds."""

    number: int
    late: bool  # joins after the opening
    join_t0: float = 0.0  # the join request sent ...
    join_t1: float = 0.0  # ... and answered
    outcome: str = UNRESOLVED
    end_t: float | None = None  # ``admitted`` / ``sold_out`` received
    fallback: bool = False  # waited by polling: the socket failed
    updates: array[float] = field(default_factory=lambda: array("d"))  # ``queue`` receipts
    closing: asyncio.Future[None] | None = None  # the socket's close, once done with it

    def export(self) -> tuple[Any, ...]:
        return (
            self.number,
            self.late,
            self.join_t0,
            self.join_t1,
            self.outcome,
            self.end_t,
            self.fallback,
            self.updates,
        )


def join_delay(rng: random.Random, window: float, late: bool) -> float:
    """Seconds after the phase start when a waiter joins (the room opens at ``window``)."""
    return window + rng.uniform(0.0, window) if late else rng.uniform(0.0, window)


async def wait_and_buy(
    shop: Shop, http: Http, ws_url: str, buyer: Buyer, phase: Phase, wait: Wait, delay: float
) -> None:
    """Join at ``phase.start_at + delay``, wait for the outcome, and shop when admitted."""
    rec = phase.rec
    await phase.pause(phase.start_at + delay - time.monotonic())
    if phase.stopped.is_set():
        return
    client: WatchClient | None = None
    try:
        client = await WatchClient.open(ws_url, open_timeout=30)
        await client.send({"t": "hello", "token": buyer.token})
    except (OSError, TimeoutError, WebSocketException):
        client = None
    queue = f"/api/v1/events/{shop.plan.event_id}/queue"
    reply = await http.call("POST", queue, buyer.token)
    for _ in range(JOIN_RETRIES):  # joining again is safe: it answers the same place
        if reply.status not in (0, 503) or phase.stopped.is_set():
            break
        reply = await http.call("POST", queue, buyer.token)
    wait.join_t0, wait.join_t1 = reply.t0, reply.t1
    if reply.status not in (200, 201):
        wait.outcome = JOIN_FAILED
        rec.errors[f"queue join {reply.status} {reply.code}"] += 1
        await _close(client)
        return
    rec.live["joined"] += 1
    token = _outcome_of(reply.body, reply.t1, wait)
    if wait.outcome == UNRESOLVED and client is not None:
        token = await _until_stopped(phase, _by_socket(client, wait))
    # Closed beside, not awaited: the close handshake must not delay the buyer's first hold.
    wait.closing = asyncio.ensure_future(_close(client))
    running = not phase.stopped.is_set() and time.monotonic() < phase.deadline
    if wait.outcome == UNRESOLVED and running:
        wait.fallback = True
        token = await _by_polling(http, queue, buyer.token, phase, wait)
    if wait.outcome == SOLD_OUT:
        rec.live["turned_away"] += 1
    if wait.outcome != ADMITTED or token is None:
        return
    rec.live["admitted"] += 1
    buyer.admission = token
    await shop.shop(http, buyer, phase)


def _outcome_of(place: dict[str, Any], now: float, wait: Wait) -> str | None:
    """Note an ``admitted`` / ``sold_out`` place (a join answer or a poll); the token."""
    status = place.get("status")
    if status == "admitted" and place.get("token"):
        wait.outcome, wait.end_t = ADMITTED, now
        return str(place["token"])
    if status == "sold_out":
        wait.outcome, wait.end_t = SOLD_OUT, now
    return None


# Only frames holding one of these are decoded: a waiter's socket also carries every seat
# change of the event, and decoding thousands of sockets' worth of them would make the
# client, not the hub, the bottleneck of what is measured here.
_PERSONAL = (b"queue", b"admitted", b"sold_out")


async def _by_socket(client: WatchClient, wait: Wait) -> str | None:
    """Read the socket until the outcome; seat messages pass by. Raises when it fails."""
    while True:
        data = await client.ws.recv()
        raw = data.encode() if isinstance(data, str) else data
        if not any(word in raw for word in _PERSONAL):
            continue
        message = client.decode(data)
        kind = message.get("t")
        if kind == "queue":
            wait.updates.append(time.monotonic())
        elif kind == "admitted":
            wait.outcome, wait.end_t = ADMITTED, time.monotonic()
            return str(message["token"])
        elif kind == "sold_out":
            wait.outcome, wait.end_t = SOLD_OUT, time.monotonic()
            return None


async def _until_stopped(phase: Phase, waiting: Coroutine[Any, Any, str | None]) -> str | None:
    """The socket's outcome, or None when the phase ends first or the socket fails."""
    task: asyncio.Task[str | None] = asyncio.ensure_future(waiting)
    stopped = asyncio.ensure_future(phase.stopped.wait())
    try:
        await asyncio.wait(
            {task, stopped},
            timeout=max(0.0, phase.deadline - time.monotonic()),
            return_when=asyncio.FIRST_COMPLETED,
        )
    finally:
        for pending in (task, stopped):
            if not pending.done():
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pending
    if task.cancelled() or task.exception() is not None:
        return None  # UNRESOLVED: the caller falls back to polling unless the phase ended
    return task.result()


async def _by_polling(http: Http, path: str, token: str, phase: Phase, wait: Wait) -> str | None:
    while not phase.stopped.is_set():
        reply = await http.call("GET", path, token)
        if reply.status == 200:
            admission = _outcome_of(reply.body, reply.t1, wait)
            if wait.outcome != UNRESOLVED:
                return admission
        await phase.pause(POLL_SECONDS)
    return None


async def _close(client: WatchClient | None) -> None:
    if client is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.close(), 2)
