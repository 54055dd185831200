"""Waiting rooms: turn one on for an event, queue in it, and the admission check of holds.

The state lives in Redis, under the event's hash tag, so every process and the leader
agree and a restart loses no place:

- ``wr`` (hash): ``state`` (``on`` | ``closed``), ``opens_ms``, ``rate`` (admissions per
  second, empty = adaptive), ``session_s``, ``sold_out``, ``seq`` (late arrivals' counter),
  ``admitted`` (how many so far), ``current_rate`` (the leader's rate, for ETAs);
- ``wrq`` (sorted set): the waiters, user → score. Joiners before ``opens_at`` get a
  uniformly random score below 1 (drawn here, revealed only by the opening, since no
  position is shown before it); later ones 1 + a counter, so they queue behind the early
  crowd in arrival order. A waiter's place is its rank.
- ``wru`` (hash): user → JSON ``{q: queue id, s: status, j: joined ms, tok, exp}``;
- ``wrs`` (sorted set): admitted sessions, user → expiry (epoch seconds).

The scripts in ``hub/lua/queue_*.lua`` make each change atomic. The leader admits
(``hub.services.admission``); each process pushes queue messages to its own watchers
(``hub.services.queue_feed``). Whether a room is on is known in every process's memory
(``hub.waiting_rooms``), so the hold path's check (``require_admission``) costs no round
trip while the room feed is live.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from engines.admission import eta_seconds
from hub import jsonenc, leader, waiting_rooms
from hub.context import Hub
from hub.errors import NotAdmitted, NotFound
from hub.services import events

log = structlog.get_logger(__name__)


# How long a turned-off room's records stay, so its watchers still get their ``admitted``.
CLOSED_KEEP_SECONDS = 120
TOKEN_HEADER = "X-Admission-Token"


@dataclass(frozen=True, slots=True)
class RoomKeys:
    room: str
    queue: str
    users: str
    sessions: str

    @classmethod
    def of(cls, hub: Hub, event_id: uuid.UUID) -> RoomKeys:
        keys = hub.store.keys
        return cls(
            keys.event(event_id, "wr"),
            keys.event(event_id, "wrq"),
            keys.event(event_id, "wru"),
            keys.event(event_id, "wrs"),
        )

    @property
    def all(self) -> list[str]:
        return [self.room, self.queue, self.users, self.sessions]


@dataclass(frozen=True, slots=True)
class Room:
    """One room as stored."""

    event_id: uuid.UUID
    state: str
    opens_ms: int
    rate: float | None
    session_s: int
    sold_out: bool
    admitted: int
    current_rate: float

    @classmethod
    def read(cls, event_id: uuid.UUID, raw: Mapping[Any, Any]) -> Room | None:
        if not raw:
            return None
        get = {_s(k): _s(v) for k, v in raw.items()}
        return cls(
            event_id=event_id,
            state=get.get("state", "closed"),
            opens_ms=int(get.get("opens_ms", "0")),
            rate=float(get["rate"]) if get.get("rate") else None,
            session_s=int(get.get("session_s", "600")),
            sold_out=get.get("sold_out") == "1",
            admitted=int(get.get("admitted", "0")),
            current_rate=float(get.get("current_rate") or get.get("rate") or 0.0),
        )

    @property
    def on(self) -> bool:
        return self.state == "on"

    def status(self, now_ms: int) -> str:
        if not self.on:
            return "closed"
        return "scheduled" if now_ms < self.opens_ms else "open"

    @property
    def admission_rate(self) -> float:
        """Admissions per second now: the fixed rate, or the leader's adaptive one."""
        return self.rate if self.rate is not None else self.current_rate


def now_ms() -> int:
    return int(time.time() * 1000)


async def read_room(hub: Hub, event_id: uuid.UUID) -> Room | None:
    return Room.read(event_id, await hub.store.client.hgetall(RoomKeys.of(hub, event_id).room))


async def _room_on(hub: Hub, event_id: uuid.UUID) -> Room:
    room = await read_room(hub, event_id)
    if room is None or not room.on:
        raise NotFound(f"No waiting room on event {event_id}")
    return room


async def _view(hub: Hub, room: Room) -> dict[str, Any]:
    waiting = await hub.store.client.zcard(RoomKeys.of(hub, room.event_id).queue)
    return {
        "event_id": room.event_id,
        "opens_at": _iso_ms(room.opens_ms),
        "admit_per_second": room.rate,
        "session_seconds": room.session_s,
        "status": room.status(now_ms()),
        "waiting": int(waiting) if room.on else 0,
        "admitted": room.admitted,
        "admission_rate": round(room.admission_rate, 3),
    }


async def configure(
    hub: Hub,
    event_id: uuid.UUID,
    opens_at: dt.datetime,
    admit_per_second: float | None,
    session_seconds: int | None,
) -> dict[str, Any]:
    """Turn the event's waiting room on, or change the one that is on (its queue stays).

    Returns:
        The room view ``{event_id, opens_at, admit_per_second, session_seconds, status,
        waiting, admitted, admission_rate}``.

    Raises:
        NotFound: no such event.
    """
    await events.load_event(hub, event_id)
    keys = RoomKeys.of(hub, event_id)
    existing = await read_room(hub, event_id)
    fields: dict[Any, Any] = {
        "state": "on",
        "opens_ms": str(int(opens_at.timestamp() * 1000)),
        "rate": "" if admit_per_second is None else repr(float(admit_per_second)),
        "session_s": str(session_seconds or hub.settings.waiting_room_session_seconds),
    }
    async with hub.store.client.pipeline(transaction=True) as pipe:
        if existing is None or not existing.on:
            # A room turned off earlier leaves records for a while: start from nothing.
            pipe.delete(*keys.all)
            fields["current_rate"] = repr(float(hub.settings.waiting_room_start_rate))
        pipe.hset(keys.room, mapping=fields)
        pipe.persist(keys.room)
        await pipe.execute()
    await waiting_rooms.announce(hub.store, event_id, True)
    hub.rooms.mark(event_id, True)
    log.info("waiting_room_on", event_id=str(event_id), opens_at=opens_at.isoformat())
    room = await read_room(hub, event_id)
    assert room is not None
    return await _view(hub, room)


async def get_room(hub: Hub, event_id: uuid.UUID) -> dict[str, Any]:
    """The room view (see ``configure``).

    Raises:
        NotFound: no room on for the event.
    """
    return await _view(hub, await _room_on(hub, event_id))


async def turn_off(hub: Hub, event_id: uuid.UUID) -> dict[str, Any]:
    """Turn the room off: everyone waiting is admitted in queue order (with tokens, which
    nothing needs any more, so that their pages switch to the seat map), then holds on the
    event need no token. The records stay a short while for those pages.

    Returns:
        The room view with ``status`` ``closed``.

    Raises:
        NotFound: no room on for the event.
    """
    room = await _room_on(hub, event_id)
    keys = RoomKeys.of(hub, event_id)
    client = hub.store.client
    await waiting_rooms.announce(hub.store, event_id, False)
    hub.rooms.mark(event_id, False)
    waiters = [_s(u) for u in await client.zrange(keys.queue, 0, -1)]
    await admit(hub, room, [uuid.UUID(u) for u in waiters])
    async with client.pipeline(transaction=True) as pipe:
        pipe.hset(keys.room, "state", "closed")
        for key in keys.all:
            pipe.expire(key, CLOSED_KEEP_SECONDS)
        await pipe.execute()
    await nudge(hub, event_id)
    log.info("waiting_room_off", event_id=str(event_id), admitted=len(waiters))
    closed = await read_room(hub, event_id)
    assert closed is not None
    return await _view(hub, closed)


async def admit(
    hub: Hub, room: Room, users: list[uuid.UUID], fence: leader.Fence | None = None
) -> int:
    """Admit ``users`` (in this order): each gets a token for the room's session length.

    Args:
        fence: the leader's fencing token (``hub.leader``), compared in the script with the
            last one Redis issued; None outside the leader's loop.

    Returns:
        How many were admitted (one who left meanwhile is skipped).

    Raises:
        StaleLeader: ``fence`` is no longer the current leader's.
    """
    if not users:
        return 0
    expires = int(time.time()) + room.session_s
    args: list[str] = []
    for user in users:
        token = hub.admission_tokens.issue(user, room.event_id, expires)
        args += [str(user), token, str(expires)]
    keys = [*RoomKeys.of(hub, room.event_id).all, leader.fence_key(hub.store.keys)]
    token = "" if fence is None else str(fence.token)
    admitted = 0
    step = 3 * 500  # bounded script calls: other clients are not held up for long
    for start in range(0, len(args), step):
        done = int(await hub.queue_scripts.admit(keys, [token, *args[start : start + step]]))
        if done < 0:
            raise leader.StaleLeader(fence.token if fence else 0, None)
        admitted += done
    return admitted


# A nudge names the users admitted up to this many; beyond, it asks for a whole round.
NUDGE_MAX_USERS = 500


async def nudge(hub: Hub, event_id: uuid.UUID, admitted: list[uuid.UUID] | None = None) -> None:
    """Ask every process to push queue messages for the event now, not at its next round:
    to the ``admitted`` users only when given (everyone else's new position waits for the
    round), else to everyone."""
    named = admitted is not None and 0 < len(admitted) <= NUDGE_MAX_USERS
    users = "".join(f" {u}" for u in admitted) if named and admitted else ""
    await hub.store.client.publish(
        hub.store.keys.global_(waiting_rooms.CHANNEL), f"tick {event_id}{users}".encode()
    )


async def join(hub: Hub, user_id: uuid.UUID, event_id: uuid.UUID) -> tuple[dict[str, Any], bool]:
    """Take a place in the event's queue, or (joined already) see the one taken.

    Returns:
        The place ``{queue_id, status, position, ahead, eta_seconds, token, expires_at}``
        and True when it was taken now (False: the same place as before).

    Raises:
        NotFound: no room on for the event.
    """
    keys = RoomKeys.of(hub, event_id)
    draw = secrets.randbits(52) / float(1 << 52)  # uniform in [0, 1)
    joined_ms = now_ms()
    outcome = await hub.queue_scripts.join(
        [keys.room, keys.queue, keys.users],
        [str(user_id), str(joined_ms), repr(draw), str(uuid.uuid4())],
    )
    kind = _s(outcome[0])
    room = None if kind == "none" else Room.read(event_id, _pairs(outcome[2]))
    if room is None or not room.on:
        raise NotFound(f"No waiting room on event {event_id}")
    record, rank = json.loads(_s(outcome[1])), outcome[3]
    place = place_view(record, rank, now_ms() >= room.opens_ms, room.admission_rate)
    return place, kind == "joined"


async def place(hub: Hub, user_id: uuid.UUID, event_id: uuid.UUID) -> dict[str, Any]:
    """The caller's place (see ``join``).

    Raises:
        NotFound: no room on for the event, or the caller is not queued.
    """
    room = await _room_on(hub, event_id)
    places = await places_of(hub, room, [user_id])
    if user_id not in places:
        raise NotFound("You are not in this event's queue")
    return places[user_id]


async def leave(hub: Hub, user_id: uuid.UUID, event_id: uuid.UUID) -> None:
    """Give up the caller's place (and an admission not used yet).

    Raises:
        NotFound: no room on for the event, or the caller is not queued.
    """
    await _room_on(hub, event_id)
    keys = RoomKeys.of(hub, event_id)
    async with hub.store.client.pipeline(transaction=True) as pipe:
        pipe.zrem(keys.queue, str(user_id))
        pipe.zrem(keys.sessions, str(user_id))
        pipe.hdel(keys.users, str(user_id))
        _, _, removed = await pipe.execute()
    if not removed:
        raise NotFound("You are not in this event's queue")


async def places_of(
    hub: Hub,
    room: Room,
    users: list[uuid.UUID],
) -> dict[uuid.UUID, dict[str, Any]]:
    """The places of ``users`` who are queued (others are left out), read in one script
    call: their records and the ranks of those waiting."""
    if not users:
        return {}
    keys = RoomKeys.of(hub, room.event_id)
    raw, answers = await hub.queue_scripts.places([keys.queue, keys.users], [str(u) for u in users])
    records = {u: _s(r) for u, r in zip(users, raw, strict=True) if r is not None}
    now = now_ms()
    opened = now >= room.opens_ms
    rate = room.admission_rate
    out: dict[uuid.UUID, dict[str, Any]] = {}
    for user, rank in zip(users, answers, strict=True):
        text = records.get(user)
        if text is None:
            continue
        out[user] = place_view(json.loads(text), rank, opened, rate)
    return out


def place_view(
    record: dict[str, Any], rank: int | None, opened: bool, rate: float
) -> dict[str, Any]:
    """A place as the contract shows it, from its record and its rank in the queue."""
    status = record["s"]
    waiting = status == "waiting" and rank is not None
    position = rank + 1 if waiting and opened and rank is not None else None
    ahead = rank if position is not None else None
    exp = record.get("exp")
    return {
        "queue_id": record["q"],
        "status": status,
        "position": position,
        "ahead": ahead,
        "eta_seconds": eta_seconds(ahead, rate) if ahead is not None else None,
        "token": record.get("tok") if status == "admitted" else None,
        "expires_at": _iso_ms(int(exp) * 1000)
        if exp is not None and status == "admitted"
        else None,
    }


async def queues(hub: Hub) -> list[dict[str, Any]]:
    """Every room that is on, for the admin stream: ``[{event_id, name, status, waiting,
    admitted, admission_rate}]``, longest queue first.

    Cheap enough for once a second: nothing when no room is on (known from memory while the
    room feed is live; else one ``SMEMBERS``), otherwise one pipelined round trip (each
    room's hash and its queue's ``ZCARD``). Names come from the process's event cache.
    """
    known = hub.rooms.events()
    on = known if known is not None else await waiting_rooms.rooms_on(hub.store)
    if not on:
        return []
    event_ids = sorted(on)
    async with hub.store.client.pipeline(transaction=False) as pipe:
        for event_id in event_ids:
            keys = RoomKeys.of(hub, event_id)
            pipe.hgetall(keys.room)
            pipe.zcard(keys.queue)
        answers = await pipe.execute()
    now = now_ms()
    out: list[dict[str, Any]] = []
    for n, event_id in enumerate(event_ids):
        room = Room.read(event_id, answers[2 * n])
        if room is None or not room.on:  # turned off since the set was read
            continue
        try:
            name: str | None = (await events.load_event(hub, event_id)).name
        except NotFound:
            name = None
        out.append(
            {
                "event_id": str(event_id),
                "name": name,
                "status": room.status(now),
                "waiting": int(answers[2 * n + 1]),
                "admitted": room.admitted,
                "admission_rate": round(room.admission_rate, 3),
            }
        )
    out.sort(key=lambda r: -r["waiting"])
    return out


async def require_admission(
    hub: Hub, user_id: uuid.UUID, event_id: uuid.UUID, token: str | None
) -> None:
    """The hold path's check: with a waiting room on for the event, ``token`` must be the
    user's valid admission token for it. From memory while the room feed is live (a set
    lookup and, with a room on, a cached signature check), else one Redis read.

    Raises:
        NotAdmitted: a room is on and the token is missing, expired, another user's or
            another event's.
    """
    on = hub.rooms.check(event_id)
    if on is None:
        on = await waiting_rooms.is_on(hub.store, event_id)
    if not on:
        return
    if token is None:
        raise NotAdmitted(
            f"A waiting room is on for this event: join its queue and send your admission "
            f"token in {TOKEN_HEADER}"
        )
    if not hub.admission_tokens.valid(token, user_id, event_id):
        raise NotAdmitted("The admission token is not valid for you on this event, or expired")


def _iso_ms(ms: int) -> str:
    return jsonenc.isoformat(dt.datetime.fromtimestamp(ms / 1000, dt.UTC))


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pairs(flat: list[Any]) -> dict[Any, Any]:
    """A hash as a script returns it (HGETALL: field, value, field, value ...)."""
    return dict(zip(flat[::2], flat[1::2], strict=True))
