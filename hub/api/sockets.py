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
import uuid
from typing import Any
from urllib.parse import urlsplit

import structlog
from starlette.routing import BaseRoute, WebSocketRoute

from hub import metrics
from hub.auth import Principal, principal_from_token
from hub.channels import codec
from hub.channels.codec import Subprotocol
from hub.channels.peers import Peer, make_peer
from hub.context import AppHub
from hub.errors import HubError

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
                reco = message.get("reco")
                if reco is not None and not isinstance(reco, dict):
                    session.send(codec.error("bad_message", "reco must be a map", "hello"))
                    continue
                peer.reco = reco
                principal = await session.authenticate(message)
                if principal is None or principal.user_id == peer.user_id:
                    continue
                if channels.per_user[principal.user_id] >= session.hub.settings.ws_max_per_user:
                    peer.close(4429, "Too many connections for this user")
                    return
                if peer.user_id is not None:
                    _release(channels.per_user, peer.user_id)
                peer.user_id = principal.user_id
                channels.per_user[principal.user_id] += 1
            else:
                session.send(codec.error("unknown_message", f"unknown message type {kind!r}"))


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
