"""Peers: one per WebSocket connection, written to without awaiting it.

Why not ``await websocket.send()`` per client: uvicorn's ``send`` first awaits
``writable`` (set by ``resume_writing``), so one client that stops reading parks the
broadcast loop until its buffer drains, for every other watcher (DESIGN §5 measured over a
minute). A per-connection task and queue avoids that but halved throughput.

The path chosen (uvicorn 0.54, ``websockets-sansio`` implementation): ``DirectProtocol``
subclasses uvicorn's sans-I/O WebSocket protocol and puts itself into the ASGI scope
(extension ``evently.direct``). An endpoint that finds it builds a ``DirectPeer``, which
writes ready-made frame bytes straight to the connection's transport — one
``transport.write`` per delivery, no await, no per-message framing, no task. Server
frames are unmasked, so the same bytes serve every connection. The sans-I/O protocol keeps
parsing incoming frames, answering pings, enforcing ``ws_max_size`` (1009) and sending
keepalive pings; we only ever add complete frames between its own writes, on the same loop
thread, so frames never interleave. The legacy ``websockets`` implementation would also
work through ``broadcast()`` but costs two tasks per connection (memory at 10k idle) and is
deprecated by uvicorn; ``wsproto`` frames every message per connection.

Anywhere else (another server, no extension) ``AsgiPeer`` falls back to the ASGI ``send``
with at most one send in flight and a byte-bounded backlog, so it too never blocks the
broadcaster. Both expose ``buffered()`` — bytes waiting to go out — which the broadcaster
compares with its bound to mark a congested peer "behind".
"""

from __future__ import annotations

import abc
import asyncio
import collections
import uuid
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

from engines.seating import SeatPreferences
from hub.channels.codec import Encoded, Subprotocol

EXTENSION = "evently.direct"
# How long a close frame may wait behind a congested buffer before the socket is aborted.
CLOSE_GRACE_SECONDS = 2.0


class _Inbox:
    """The part of ``asyncio.Queue`` uvicorn's protocol uses (``put_nowait``, ``get``,
    ``empty``) for its one reader, the app: a connection's queue holds a message or two at
    a time, and ``asyncio.Queue``'s three deques and ``Event`` cost ~2.5 KB a connection
    (25 MB for 10,000 waiting sockets). As in ``asyncio.Queue``, an item is taken only by a
    ``get`` that returns it, so a cancelled ``get`` loses nothing."""

    __slots__ = ("_items", "_waiter", "on_put")

    def __init__(self) -> None:
        self._items: list[Any] | None = None
        self._waiter: asyncio.Future[None] | None = None
        # Called after each put while the connection is parked (``DirectPeer.park``).
        self.on_put: Callable[[], None] | None = None

    def put_nowait(self, item: Any) -> None:
        if self._items is None:
            self._items = [item]
        else:
            self._items.append(item)
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self.on_put is not None:
            self.on_put()

    async def get(self) -> Any:
        while not self._items:
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                if self._waiter is waiter:
                    self._waiter = None
        item = self._items.pop(0)
        if not self._items:
            self._items = None
        return item

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items) if self._items else 0


class _Gate:
    """The part of ``asyncio.Event`` uvicorn's protocol uses for ``writable`` (``set``,
    ``clear``, ``is_set``, ``wait``), without a deque per connection until someone waits."""

    __slots__ = ("_open", "_waiters")

    def __init__(self) -> None:
        self._open = True
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._open

    def set(self) -> None:
        self._open = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._open = False

    async def wait(self) -> bool:
        while not self._open:
            waiter = asyncio.get_running_loop().create_future()
            if self._waiters is None:
                self._waiters = []
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if self._waiters is not None and waiter in self._waiters:
                    self._waiters.remove(waiter)
        return True


class DirectProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, reachable from the app for direct writes,
    and lighter per connection (issue 17: 10,000 waiting sockets in one process): its
    queue and ``writable`` event are ``_Inbox`` and ``_Gate``, and what only the handshake
    needs (the parsed request's headers, kept alive by the parser's generator frame for the
    connection's lifetime; the 101 response) is dropped once it is done."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue: _Inbox = _Inbox()  # type: ignore[assignment]
        self.writable = _Gate()  # type: ignore[assignment]
        # The app returned and left the connection open, served without a task.
        self.parked = False

    async def run_asgi(self) -> None:
        """uvicorn's, except that an app that parked its connection (``DirectPeer.park``)
        returns without the connection being closed."""
        try:
            result = await self.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except BaseException:
            self.logger.exception("Exception in ASGI application\n")
            self.send_500_response()
        else:
            if not self.handshake_complete:
                self.logger.error("ASGI callable returned without completing handshake.")
                self.send_500_response()
            elif result is not None:
                self.logger.error("ASGI callable should return None, but returned '%s'.", result)
        if self.close_timer is None and not self.parked:
            self.transport.close()

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        # The scope has its own copy of the headers; the request object stays referenced
        # by the sans-I/O parser's suspended generator, so empty it.
        event.headers.clear()
        scope = getattr(self, "scope", None)
        if scope is not None:  # the app task is created but has not run yet
            scope["extensions"][EXTENSION] = self

    def keepalive_timeout(self) -> None:
        """uvicorn's (a 1011 close frame, then ``transport.close()``), then the socket
        aborted if bytes still wait to go out: ``close()`` waits until they have gone, and
        a peer that stopped answering pings stopped reading too, so the connection and its
        buffer stayed open for good (issue 18, item 7: a silent client holding 283 KB)."""
        super().keepalive_timeout()
        if self.transport.get_write_buffer_size():
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        """uvicorn's, then the sans-I/O connection's parser closed: after the hub failed
        the connection (a missed pong) it waits for an end of stream that a lost socket
        never delivers, and its suspended generator points back at the connection — a
        cycle only the collector frees, and never once a crowd's objects are frozen
        (``fanout._tune_gc``; issue 18 item 7)."""
        super().connection_lost(exc)
        self.conn.parser.close()

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept":
            self.response = None  # type: ignore[assignment]  # sent; read only before
        if message["type"] == "websocket.http.response.body" and not message.get("more_body"):
            # A denial response (403, 429) ends the handshake, but uvicorn 0.54 does not
            # mark it so and logs "ASGI callable returned without completing handshake"
            # at error level for every refused connection: a normal event, not an error.
            self.handshake_complete = True


class Peer(abc.ABC):
    """What the broadcaster needs from a connection. Never awaits."""

    __slots__ = ("behind_since", "event_id", "ip", "proto", "queued", "reco", "user_id")

    def __init__(self, proto: Subprotocol, ip: str) -> None:
        self.proto = proto
        self.ip = ip
        self.user_id: uuid.UUID | None = None
        # the seat recommendations it asked for (``hub.channels.reco``), None for none
        self.reco: SeatPreferences | None = None
        self.event_id: uuid.UUID | None = None
        # loop time at which it fell behind; None while it keeps up
        self.behind_since: float | None = None
        # its user waits in the event's waiting room: no seat stream until it leaves the
        # queue, then a fresh snapshot (``hub.services.queue_feed``)
        self.queued = False

    @property
    @abc.abstractmethod
    def open(self) -> bool: ...

    @abc.abstractmethod
    def write(self, message: Encoded) -> None: ...

    @abc.abstractmethod
    def buffered(self) -> int: ...

    @abc.abstractmethod
    def close(self, code: int, reason: str = "") -> None: ...


class DirectPeer(Peer):
    __slots__ = ("_protocol", "_transport")

    def __init__(self, protocol: DirectProtocol, proto: Subprotocol, ip: str) -> None:
        super().__init__(proto, ip)
        self._protocol = protocol
        self._transport = protocol.transport

    @property
    def open(self) -> bool:
        p = self._protocol
        return not (p.close_sent or p.disconnected or self._transport.is_closing())

    def write(self, message: Encoded) -> None:
        p = self._protocol
        if p.close_sent or p.disconnected:
            return
        self._transport.write(message.frame)

    def buffered(self) -> int:
        return self._transport.get_write_buffer_size()

    def park(self, wake: Callable[[], None]) -> None:
        """Serve the connection without a task: the app returns, the connection stays
        open, and ``wake`` is called whenever a client message or the disconnect arrives
        (at once if one is already waiting); it reads them with the app's ``receive``
        (``pending`` says whether one is waiting) and calls ``finish`` when done. A task
        and the app's coroutine chain (Starlette, the middleware, the endpoint) cost ~5 KB
        a connection, 50 MB over 10,000 waiters that say nothing after their hello."""
        p = self._protocol
        p.parked = True
        p.queue.on_put = wake
        if not p.queue.empty():
            wake()

    def pending(self) -> bool:
        return not self._protocol.queue.empty()

    def finish(self) -> None:
        """The parked connection's app is done with it: close it as uvicorn closes one
        whose app returned (unless a close handshake is already under way)."""
        p = self._protocol
        p.queue.on_put = None
        if p.close_timer is None:
            self._transport.close()
        # The scope pointed back at the protocol: with that cycle a closed connection
        # waited for the cyclic collector, which never sees what a crowd over
        # `fanout.FREEZE_ABOVE_WATCHERS` froze (~7 KB a connection kept, issue 18 item 7).
        p.scope["extensions"].pop(EXTENSION, None)

    def close(self, code: int, reason: str = "") -> None:
        """Send a close frame now, end the app's receive loop, and abort the socket if
        the peer has not completed the closing handshake within the grace period (a
        congested buffer would otherwise keep it open for ever). Nothing to do once the
        closing handshake has begun from either side: a client that closed first has had
        its close answered by the protocol already (and ``send_close`` would raise
        ``InvalidState``)."""
        p = self._protocol
        if p.close_sent or p.disconnected or p.conn.state is not State.OPEN:
            return
        p.conn.send_close(code, reason)
        self._transport.write(b"".join(p.conn.data_to_send()))
        p.close_sent = True
        p.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        if p.read_paused:
            p.read_paused = False
            self._transport.resume_reading()
        p.close_timer = p.loop.call_later(CLOSE_GRACE_SECONDS, self._transport.abort)


class AsgiPeer(Peer):
    """Fallback through the ASGI ``send``: one send in flight, a bounded backlog."""

    __slots__ = ("_backlog", "_closed", "_queued", "_send", "_task")

    def __init__(self, send: Any, proto: Subprotocol, ip: str) -> None:
        super().__init__(proto, ip)
        self._send = send
        self._backlog: collections.deque[dict[str, Any]] = collections.deque()
        self._queued = 0
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def open(self) -> bool:
        return not self._closed

    def write(self, message: Encoded) -> None:
        if self._closed:
            return
        if message.payload or not message.frame:
            self._push(_asgi_message(message.payload, message.text), len(message.payload))
        else:  # joined frames: split them back into payloads
            for payload, text in _split_frames(message.frame):
                self._push(_asgi_message(payload, text), len(payload))

    def _push(self, asgi_message: dict[str, Any], size: int) -> None:
        self._backlog.append(asgi_message)
        self._queued += size
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self._backlog:
                message = self._backlog.popleft()
                self._queued -= len(message.get("bytes") or message.get("text") or "")
                await self._send(message)
        except Exception:
            self._closed = True
            self._backlog.clear()
        finally:
            self._task = None

    def buffered(self) -> int:
        return self._queued

    def close(self, code: int, reason: str = "") -> None:
        if self._closed:
            return
        self._backlog.clear()
        self._queued = 0
        self._push({"type": "websocket.close", "code": code, "reason": reason}, 0)
        self._closed = True


def _asgi_message(payload: bytes, text: bool) -> dict[str, Any]:
    if text:
        return {"type": "websocket.send", "text": payload.decode()}
    return {"type": "websocket.send", "bytes": payload}


def _split_frames(data: bytes) -> list[tuple[bytes, bool]]:
    out: list[tuple[bytes, bool]] = []
    i = 0
    while i < len(data):
        text = data[i] & 0x0F == 1
        n = data[i + 1] & 0x7F
        i += 2
        if n == 126:
            n = int.from_bytes(data[i : i + 2], "big")
            i += 2
        elif n == 127:
            n = int.from_bytes(data[i : i + 8], "big")
            i += 8
        out.append((data[i : i + n], text))
        i += n
    return out


def make_peer(scope: dict[str, Any], send: Any, proto: Subprotocol) -> Peer:
    """The fastest peer the server allows, for an accepted connection."""
    client = scope.get("client")
    ip = client[0] if client else "unknown"
    direct = scope.get("extensions", {}).get(EXTENSION)
    if isinstance(direct, DirectProtocol) and direct.handshake_complete:
        return DirectPeer(direct, proto, ip)
    return AsgiPeer(send, proto, ip)
