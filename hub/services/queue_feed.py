"""Personal waiting-room messages to the queued users watching an event in this process.

Every ``PUSH_SECONDS`` a round: for each watched event with a room, the places of every
signed-in watcher are read in one script call (their records and their ranks:
``places_of``), so the cost per round is one round trip per event however many waiters,
not a query per connection. The leader's nudges start work early: one that names the users
it admitted makes a small round over just their connections (so they hear ``admitted`` at
once, while everyone's new position waits for the next round: with admissions several
times a second, a whole round per nudge cost the hub more than the admitted buyers'
requests); one that names nobody (a sell-out, a room turned off) starts a whole round.
Then each watcher gets, written straight to its connection (never awaited):

- ``queue`` ``{t, status, position, ahead, eta_seconds}`` while waiting: on every change,
  and at least once a second otherwise (the contract asks for every 2 s);
- ``admitted`` ``{t, token, expires_at}`` once, when admitted;
- ``sold_out`` ``{t}`` once, when the event sold out while it waited;
- ``queue`` with ``status`` ``expired`` once, when its session ran out unused.

A waiting user's connections get no seat stream (``Peer.queued``): the queue view shows no
seat map, and 5,000 waiters each sent every seat change of an on-sale cost the hub ~40 % of
its time in socket writes — time the admitted buyers' holds need. When the user leaves the
queue (admitted, sold out, expired, left, the room turned off) the connection gets a fresh
``snapshot`` first, then the message, and the seat stream again.

What was last sent to each connection is remembered here, by connection, and forgotten
when the connection goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any

import structlog

from hub.channels import codec
from hub.channels.peers import Peer
from hub.context import AppHub
from hub.services import waiting_room

log = structlog.get_logger(__name__)

PUSH_SECONDS = 1.0
# A nudge pushes at once, but nudges closer than this are taken together.
MIN_GAP_SECONDS = 0.1
# An unchanged ``queue`` message is sent again after this long.
REPEAT_SECONDS = 0.9
# A round reads and writes this many users' places at a time, then lets the event loop
# serve requests: 2,500 waiters done in one go held a worker's loop for tens of
# milliseconds, and every hold that arrived meanwhile waited that long.
SLICE_USERS = 250


class QueueFeed:
    """The pusher of one serving process; the lifespan starts and stops it."""

    def __init__(self, hub: AppHub) -> None:
        self.hub = hub
        self._last: dict[Peer, tuple[tuple[Any, ...], float]] = {}
        self._wake = asyncio.Event()
        self._whole = False  # a nudge asked for a whole round
        self._named: dict[uuid.UUID, set[uuid.UUID]] = {}  # users admitted, by event
        self._task: asyncio.Task[None] | None = None
        self.pushed = 0  # messages written (tests and the bench read it)

    async def start(self) -> None:
        self.hub.room_feed.on_tick = self.nudge
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        self.hub.room_feed.on_tick = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def nudge(self, event_id: uuid.UUID, admitted: list[uuid.UUID] | None = None) -> None:
        if admitted is None:
            self._whole = True
        else:
            self._named.setdefault(event_id, set()).update(admitted)
        self._wake.set()

    async def _run(self) -> None:
        # A fixed cadence: a whole round starts PUSH_SECONDS after the previous one started
        # (not after it ended), so a round that takes long with many waiters does not
        # stretch the gaps between messages; a nudge naming nobody starts one early.
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(due - loop.time(), 0.0)):
                    await self._wake.wait()
            self._wake.clear()
            try:
                if self._whole or loop.time() >= due:
                    self._whole = False
                    self._named.clear()  # the whole round reads their places too
                    due = loop.time() + PUSH_SECONDS
                    await self.push()
                else:
                    named, self._named = self._named, {}
                    await self.push_to(named)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("queue_push_failed")
            await asyncio.sleep(MIN_GAP_SECONDS)

    async def push_to(self, named: dict[uuid.UUID, set[uuid.UUID]]) -> int:
        """A small round: only the connections of the users named, by event."""
        sent = 0
        for event_id, users in named.items():
            channel = self.hub.channels.events.get(event_id)
            if channel is None:
                continue
            peers = [p for p in channel.peers if p.user_id in users]
            if not peers:
                continue
            room = await waiting_room.read_room(self.hub, event_id)
            if room is not None:
                sent += await self._push_event(room, peers)
        self.pushed += sent
        return sent

    async def push(self) -> int:
        """One round over every watched event; returns how many messages went out."""
        sent = 0
        live: set[Peer] = set()
        for event_id, channel in list(self.hub.channels.events.items()):
            peers = [p for p in channel.peers if p.user_id is not None]
            if not peers:
                continue
            room = await waiting_room.read_room(self.hub, event_id)
            if room is None:
                for peer in peers:
                    self._unqueue(peer)
                continue
            live.update(peers)
            sent += await self._push_event(room, peers)
        for gone in [p for p in self._last if p not in live]:
            del self._last[gone]
        self.pushed += sent
        return sent

    async def _push_event(self, room: waiting_room.Room, peers: list[Peer]) -> int:
        by_user: dict[uuid.UUID, list[Peer]] = {}
        for peer in peers:
            assert peer.user_id is not None
            by_user.setdefault(peer.user_id, []).append(peer)
        users = list(by_user)
        # Repeats are timed by the round's start, not by when a slice got to the user: a
        # slice that came a little earlier than in the round before must not skip a repeat.
        now = time.monotonic()
        sent = 0
        for start in range(0, len(users), SLICE_USERS):
            if start:
                await asyncio.sleep(0)  # (the read below awaits too, but may not yield)
            some = {u: by_user[u] for u in users[start : start + SLICE_USERS]}
            places = await waiting_room.places_of(self.hub, room, list(some))
            sent += self._write(some, places, now)
        self.hub.channels.deliveries += sent
        return sent

    def _write(
        self,
        by_user: dict[uuid.UUID, list[Peer]],
        places: dict[uuid.UUID, dict[str, Any]],
        now: float,
    ) -> int:
        """Each connection's message for its user's place; returns how many were written."""
        sent = 0
        for user, user_peers in by_user.items():
            place = places.get(user)
            waiting = place is not None and place["status"] == "waiting"
            for peer in user_peers:
                if waiting:
                    peer.queued = True
                else:
                    self._unqueue(peer)
            message = _message(place) if place is not None else None
            if message is None:
                continue
            key = tuple(message.values())
            for peer in user_peers:
                last = self._last.get(peer)
                if last is not None and last[0] == key:
                    if message["t"] != "queue" or now - last[1] < REPEAT_SECONDS:
                        continue
                if last is None and message["t"] == "queue" and message["status"] == "expired":
                    continue  # expired before this connection came: nothing to announce
                peer.write(codec.encode(message, peer.proto))
                self._last[peer] = (key, now)
                sent += 1
        return sent

    def _unqueue(self, peer: Peer) -> None:
        """The seat stream again, from a fresh snapshot, for a connection that had none."""
        if peer.queued:
            peer.queued = False
            self.hub.channels.resync(peer)


def _message(place: dict[str, Any]) -> dict[str, Any] | None:
    status = place["status"]
    if status == "waiting" or status == "expired":
        return {
            "t": "queue",
            "status": status,
            "position": place["position"],
            "ahead": place["ahead"],
            "eta_seconds": place["eta_seconds"],
        }
    if status == "admitted":
        return {"t": "admitted", "token": place["token"], "expires_at": place["expires_at"]}
    if status == "sold_out":
        return {"t": "sold_out"}
    return None
