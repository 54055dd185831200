"""What the hold path needs to know about waiting rooms, without a round trip.

Two things are checked on every hold, one-call booking and bulk booking of an event:
is a waiting room on for it (``RoomRegistry``), and, if so, does the request carry the
caller's admission token for it (``AdmissionTokens``).

- The set of events with a room on lives in Redis (``KEY``, a set) and in every serving
  process's memory. Turning a room on or off writes the set and publishes on ``CHANNEL``;
  each process's ``RoomFeed`` (a pub/sub link, the same kind the revocations use) applies
  the message, and re-reads the whole set whenever its link comes up, because pub/sub
  drops what is published while a link is down. While the link is down the registry is
  not live and the caller asks Redis per request instead.
- An admission token is an HS256 JWT signed with a key derived from
  ``EVENTLY_SECRET_KEY`` (so a bearer token is never an admission token, nor the reverse),
  with claims ``sub`` (user), ``evt`` (event), ``typ`` = ``admission`` and ``exp`` (the end
  of the session). Checking one is a signature check, cached per token text, and a
  comparison: no Redis.

Below ``hub.context`` on purpose: the hub holds a registry and the tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path

import jwt
import structlog
from redis.commands.core import AsyncScript

from hub.channels.subscriber import Subscriber
from hub.store import Store

log = structlog.get_logger(__name__)

CHANNEL = "waiting-rooms"
KEY = "waiting-rooms"
_ALGORITHM = "HS256"
_TYPE = "admission"
_LUA = Path(__file__).resolve().parent / "lua"


class RoomRegistry:
    """The events with a waiting room on, as this process knows them.

    ``live`` is False until the feed has read the set, and while its link is down;
    ``check`` then answers None and the caller asks Redis.
    """

    def __init__(self) -> None:
        self.live = False
        self._on: set[uuid.UUID] = set()

    def check(self, event_id: uuid.UUID) -> bool | None:
        """True if a room is on, False if not, None when this process cannot tell."""
        if not self.live:
            return None
        return event_id in self._on

    def mark(self, event_id: uuid.UUID, on: bool) -> None:
        if on:
            self._on.add(event_id)
        else:
            self._on.discard(event_id)

    def replace(self, on: Iterable[uuid.UUID]) -> None:
        """Start over from the complete set (read from Redis) and go live."""
        self._on = set(on)
        self.live = True

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._on

    def events(self) -> frozenset[uuid.UUID] | None:
        """Every event with a room on, or None when this process cannot tell (not live)."""
        return frozenset(self._on) if self.live else None


async def announce(store: Store, event_id: uuid.UUID, on: bool) -> None:
    """Record that ``event_id``'s room is on (or off) and tell every serving process."""
    key = store.keys.global_(KEY)
    async with store.client.pipeline(transaction=True) as pipe:
        if on:
            pipe.sadd(key, str(event_id))
        else:
            pipe.srem(key, str(event_id))
        pipe.publish(store.keys.global_(CHANNEL), f"{'on' if on else 'off'} {event_id}".encode())
        await pipe.execute()


async def rooms_on(store: Store) -> set[uuid.UUID]:
    """Every event with a room on, from Redis."""
    members = await store.client.smembers(store.keys.global_(KEY))
    return {uuid.UUID(m.decode() if isinstance(m, bytes) else m) for m in members}


async def is_on(store: Store, event_id: uuid.UUID) -> bool:
    """From Redis: is a room on for ``event_id``?"""
    return bool(await store.client.sismember(store.keys.global_(KEY), str(event_id)))


class RoomFeed:
    """Keeps a ``RoomRegistry`` current from the pub/sub channel (see the module doc)."""

    def __init__(self, redis_url: str, store: Store, registry: RoomRegistry) -> None:
        self.store = store
        self.registry = registry
        self._subscriber = Subscriber(
            redis_url, store.keys.global_(CHANNEL), self._on_message, self._on_link
        )
        self._reload: asyncio.Task[None] | None = None
        # Called with an event id when the leader asks for queue messages now ("tick").
        # (event, the users admitted — None: anyone's place may have changed)
        self.on_tick: Callable[[uuid.UUID, list[uuid.UUID] | None], None] | None = None

    async def start(self) -> None:
        await self._subscriber.start()

    async def stop(self) -> None:
        await self._subscriber.stop()
        if self._reload is not None:
            self._reload.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reload

    def _on_message(self, name: bytes, data: bytes) -> None:
        try:
            state, event, *users = data.decode().split()
            event_id = uuid.UUID(event)
            admitted = [uuid.UUID(u) for u in users] if users else None
        except ValueError:
            log.warning("waiting_room_message_malformed", data=data[:80])
            return
        if state == "tick":
            if self.on_tick is not None:
                self.on_tick(event_id, admitted)
        elif state in ("on", "off"):
            self.registry.mark(event_id, state == "on")
        else:
            log.warning("waiting_room_message_malformed", data=data[:80])

    def _on_link(self, up: bool) -> None:
        if not up:
            self.registry.live = False
            return
        if self._reload is None or self._reload.done():
            self._reload = asyncio.get_running_loop().create_task(self._read_all())

    async def _read_all(self) -> None:
        # Subscribed first, then read: a change published in between is in both.
        for delay in (0.1, 0.5, 1.0, 2.0, 5.0):
            try:
                self.registry.replace(await rooms_on(self.store))
                return
            except Exception as exc:  # Redis down: stay not live, try again
                log.warning("waiting_rooms_load_failed", error=repr(exc))
                await asyncio.sleep(delay)


class QueueScripts:
    """The queue's Lua scripts (``hub/lua/queue_*.lua``, documented there), registered
    once: each call sends the script's hash, not its text (``EVALSHA``, loading it again
    if the server has lost it)."""

    def __init__(self, store: Store) -> None:
        def load(name: str) -> AsyncScript:
            return store.client.register_script((_LUA / f"queue_{name}.lua").read_text())

        self.join = load("join")
        self.places = load("places")
        self.admit = load("admit")
        self.sold_out = load("sold_out")
        self.session_end = load("session_end")


class AdmissionTokens:
    """Issues and checks admission tokens (see the module doc)."""

    def __init__(self, secret_key: str, capacity: int = 50_000) -> None:
        # A key of its own: a bearer token's signature never verifies here.
        self._key = hashlib.sha256(f"admission:{secret_key}".encode()).hexdigest()
        self.capacity = capacity
        self._known: OrderedDict[str, tuple[str, str, int]] = OrderedDict()

    def issue(self, user_id: uuid.UUID, event_id: uuid.UUID, expires_at: int) -> str:
        """A token for ``user_id`` on ``event_id`` valid until ``expires_at`` (epoch s)."""
        claims = {"sub": str(user_id), "evt": str(event_id), "typ": _TYPE, "exp": expires_at}
        return jwt.encode(claims, self._key, algorithm=_ALGORITHM)

    def valid(
        self, token: str, user_id: uuid.UUID, event_id: uuid.UUID, now: float | None = None
    ) -> bool:
        """True when ``token`` is a well-signed, unexpired admission token of ``user_id``
        for ``event_id``."""
        known = self._known.get(token)
        if known is None:
            try:
                claims = jwt.decode(
                    token,
                    self._key,
                    algorithms=[_ALGORITHM],
                    options={"require": ["sub", "evt", "typ", "exp"], "verify_exp": False},
                )
                known = (str(claims["sub"]), str(claims["evt"]), int(claims["exp"]))
            except (jwt.InvalidTokenError, ValueError, TypeError):
                return False
            if claims["typ"] != _TYPE:
                return False
            self._known[token] = known
            if len(self._known) > self.capacity:
                self._known.popitem(last=False)
        sub, evt, exp = known
        moment = time.time() if now is None else now
        return exp > moment and sub == str(user_id) and evt == str(event_id)
