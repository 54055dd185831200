"""The WebSocket endpoints ``/ws/events/{event_id}`` and ``/ws/admin``, as raw ASGI apps.

They serve the app hub's channel hub and admin feed (``hub.channels``); this edge module,
not the channels package, knows the hub and authentication, so the channels stay below
``hub.context``.

Raw ASGI rather than ``starlette.websockets.WebSocket``: the endpoint needs the scope's
``evently.direct`` extension to build a peer the broadcaster writes to without awaiting,
and it never needs Starlette's per-message wrappers. Everything before ``accept`` (Origin,
per-IP cap) is refused with an HTTP status; everything after with a close code:
4403 forbidden, 4404 no such event, 4429 too many connections, 1009 message too big,
1013 too slow (by the broadcaster).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import uuid
from typing import Any
from urllib.parse import urlsplit

import structlog
from starlette.routing import BaseRoute, WebSocketRoute

from engines.seating import Taste
from hub import metrics
from hub.auth import Principal, principal_from_token
from hub.channels import codec, reco
from hub.channels.codec import Subprotocol
from hub.channels.peers import Peer, make_peer
from hub.context import AppHub
from hub.errors import HubError, NotFound
from hub.services import events, live_seats, seat_recommendations

log = structlog.get_logger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024
ADMIN_HELLO_SECONDS = 10.0

Scope = dict[str, Any]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def origin_allowed(scope: Scope, allowed: tuple[str, ...]) -> bool:
    """No Origin (a non-browser client) is allowed; otherwise it must be on the list, or,
    with no list configured, be the hub's own origin (same host and port as ``Host``)."""
    origin = _header(scope, b"origin")
    if origin is None:
        return True
    origin = origin.rstrip("/")
    if allowed:
        return origin in allowed or "*" in allowed
    host = _header(scope, b"host")
    return host is not None and urlsplit(origin).netloc.lower() == host.lower()


async def _refuse(send: Any, scope: Scope, status: int, detail: str) -> None:
    """Refuse the handshake with an HTTP status where the server allows it, else 403."""
    if "websocket.http.response" in scope.get("extensions", {}):
        body = detail.encode()
        headers = [(b"content-type", b"text/plain; charset=utf-8")]
        await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008})


class _Session:
    """One accepted connection: its peer and the client messages it understands."""

    def __init__(self, hub: AppHub, peer: Peer, receive: Any) -> None:
        self.hub = hub
        self.channels = hub.channels
        self.peer = peer
        self.receive = receive
        # each user's taste, read once per connection (a later hello may change the user)
        self.tastes: dict[uuid.UUID, Taste | None] = {}

    def send(self, message: dict[str, Any]) -> None:
        self.peer.write(codec.encode(message, self.peer.proto))

    async def next_message(self) -> dict[str, Any] | None:
        """The next decodable client message; None once the connection is gone.
        Undecodable ones are answered with ``error`` and skipped."""
        while True:
            event = await self.receive()
            if event["type"] != "websocket.receive":
                return None
            data = event.get("bytes")
            if data is None:
                data = event.get("text") or ""
            if len(data) > MAX_MESSAGE_BYTES:  # the server enforces it first when it can
                self.peer.close(1009, "message too big")
                return None
            try:
                return codec.decode_client(data)
            except ValueError as exc:
                self.send(codec.error("bad_message", str(exc)))

    async def authenticate(self, message: dict[str, Any]) -> Principal | None:
        token = message.get("token")
        if token is None:
            return None
        if not isinstance(token, str):
            self.send(codec.error("bad_message", "token must be a string", "hello"))
            return None
        try:
            return await principal_from_token(self.hub, token)
        except HubError as exc:
            self.send(codec.error(exc.code, exc.detail, "hello"))
            return None

    async def want_reco(self, raw: Any) -> None:
        """Start, change or (``raw`` None) stop the connection's ``reco`` messages; a wish
        that cannot be served is refused with ``error`` and the previous one stays."""
        peer = self.peer
        if raw is None or peer.event_id is None:
            self.channels.want_reco(peer, None)
            return
        try:
            prefs = reco.read_prefs(raw, seat_recommendations.MAX_QUANTITY)
        except ValueError as exc:
            self.send(codec.error("bad_message", str(exc), "hello"))
            return
        try:
            event = await events.load_event(self.hub, peer.event_id)
            layout = await live_seats.layout_of(self.hub, event.venue_id)
        except NotFound:
            detail = "No seat map to recommend seats from for this event"
            self.send(codec.error("not_found", detail, "hello"))
            return
        unknown = reco.unknown_sections(prefs, layout.table)
        if unknown:
            detail = f"reco.preferred_sections names unknown sections: {', '.join(unknown)}"
            self.send(codec.error("bad_message", detail, "hello"))
            return
        if event.status != "scheduled" or event.starts_at <= dt.datetime.now(dt.UTC):
            # as over HTTP: nothing to recommend for a cancelled or started event
            self.channels.want_reco(peer, None)
            self.send({"t": "reco", "recommendations": []})
            return
        venue = reco.RecoVenue(layout.table, functools.partial(seat_recommendations.render, layout))
        self.channels.want_reco(peer, reco.RecoWish(prefs, await self.taste(), venue))

    async def taste(self) -> Taste | None:
        """The watching user's taste (None: anonymous or no past tickets)."""
        user_id = self.peer.user_id
        if user_id is None:
            return None
        if user_id not in self.tastes:
            self.tastes[user_id] = await seat_recommendations.taste_for(self.hub, user_id)
        return self.tastes[user_id]


class EventSocket:
    """``/ws/events/{event_id}``: a live seat map."""

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        hub: AppHub = scope["app"].state.hub
        channels = hub.channels
        settings = hub.settings
        if not origin_allowed(scope, settings.allowed_origins):
            log.info("ws_refused", reason="origin", origin=_header(scope, b"origin"))
            await _refuse(send, scope, 403, "Origin not allowed")
            return
        client = scope.get("client")
        ip = client[0] if client else "unknown"
        if channels.per_ip[ip] >= settings.ws_max_per_ip:
            log.info("ws_refused", reason="ip_cap", ip=ip)
            await _refuse(send, scope, 429, "Too many connections from this address")
            return
        proto, answer = Subprotocol.choose(list(scope.get("subprotocols", [])))
        await send({"type": "websocket.accept", "subprotocol": answer})
        peer = make_peer(scope, send, proto)
        channels.per_ip[ip] += 1
        metrics.WS_CONNECTIONS.labels("events").inc()
        session = _Session(hub, peer, receive)
        try:
            try:
                event_id = uuid.UUID(scope["path_params"]["event_id"])
            except (KeyError, ValueError):
                peer.close(4404, "No such event")
                return
            channels.watch(event_id, peer)
            await self._serve(session)
        finally:
            channels.unwatch(peer)
            _release(channels.per_ip, ip)
            if peer.user_id is not None:
                _release(channels.per_user, peer.user_id)
            metrics.WS_CONNECTIONS.labels("events").dec()

    async def _serve(self, session: _Session) -> None:
        peer, channels = session.peer, session.channels
        while (message := await session.next_message()) is not None:
            kind = message["t"]
            if kind == "ping":
                session.send({"t": "pong"})
            elif kind == "resync":
                channels.resync(peer)
            elif kind == "hello":
                if not await self._hello(session, message):
                    return
            else:
                session.send(codec.error("unknown_message", f"unknown message type {kind!r}"))

    async def _hello(self, session: _Session, message: dict[str, Any]) -> bool:
        """Who watches (``token``) and what it wants pushed (``reco``, absent: nothing);
        False when the connection was closed for it."""
        peer, channels = session.peer, session.channels
        principal = await session.authenticate(message)
        if principal is not None and principal.user_id != peer.user_id:
            if channels.per_user[principal.user_id] >= session.hub.settings.ws_max_per_user:
                peer.close(4429, "Too many connections for this user")
                return False
            if peer.user_id is not None:
                _release(channels.per_user, peer.user_id)
            peer.user_id = principal.user_id
            channels.per_user[principal.user_id] += 1
        await session.want_reco(message.get("reco"))
        return True


class AdminSocket:
    """``/ws/admin``: live metrics for admins; the first message must be an admin hello."""

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        hub: AppHub = scope["app"].state.hub
        if not origin_allowed(scope, hub.settings.allowed_origins):
            await _refuse(send, scope, 403, "Origin not allowed")
            return
        proto, answer = Subprotocol.choose(list(scope.get("subprotocols", [])))
        await send({"type": "websocket.accept", "subprotocol": answer})
        peer = make_peer(scope, send, proto)
        session = _Session(hub, peer, receive)
        try:
            async with asyncio.timeout(ADMIN_HELLO_SECONDS):
                hello = await session.next_message()
        except TimeoutError:
            hello = None
        principal = None
        if hello is not None and hello["t"] == "hello":
            principal = await session.authenticate(hello)
        if principal is None or not principal.is_admin:
            peer.close(4403, "Admins only")
            return
        peer.user_id = principal.user_id
        feed = hub.admin_feed
        feed.join(peer)
        metrics.WS_CONNECTIONS.labels("admin").inc()
        try:
            while (message := await session.next_message()) is not None:
                if message["t"] == "ping":
                    session.send({"t": "pong"})
                else:
                    kind = message["t"]
                    session.send(codec.error("unknown_message", f"unknown message type {kind!r}"))
        finally:
            feed.leave(peer)
            metrics.WS_CONNECTIONS.labels("admin").dec()


def websocket_routes() -> list[BaseRoute]:
    return [
        WebSocketRoute("/ws/events/{event_id}", EventSocket()),
        WebSocketRoute("/ws/admin", AdminSocket()),
    ]


def _release(counter: Any, key: Any) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]
