"""The WebSocket endpoints ``/ws/events/{event_id}`` and ``/ws/admin``, as raw ASGI apps.

They serve the app hub's channel hub and admin feed (``hub.channels``); this edge module,
not the channels package, knows the hub and authentication, so the channels stay below
``hub.context``.

Raw ASGI rather than ``starlette.websockets.WebSocket``: the endpoint needs the scope's
``evently.direct`` extension to build a peer the broadcaster writes to without awaiting,
and it never needs Starlette's per-message wrappers.

The gate, in order, before the handshake (refused with an HTTP status and a problem+json
body): the ``Origin`` (403), the connect rate per address (429 with ``Retry-After``), the
connections per address in every hub process (429). After the handshake, with a close
code: 4403 forbidden (``/ws/admin`` without an admin ``hello`` within
``ADMIN_HELLO_SECONDS``), 4404 no such event, 4429 too many connections for the user,
1008 too many refused messages, 1009 message too big, 1013 too slow (by the broadcaster).

Refusals and early closes are normal events: each is one ``ws_refused`` info line with its
reason, never a traceback.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import functools
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import structlog
from starlette.routing import BaseRoute, WebSocketRoute

from engines.seating import Taste
from hub import jsonenc, metrics, ratelimit
from hub.auth import Principal, principal_from_token
from hub.channels import codec, reco
from hub.channels.caps import CapKind, Claim
from hub.channels.codec import Subprotocol
from hub.channels.peers import DirectPeer, Peer, make_peer
from hub.context import AppHub
from hub.errors import Forbidden, HubError, NotFound, RateLimited
from hub.problem_json import PROBLEM_JSON
from hub.services import events, live_seats, seat_recommendations

log = structlog.get_logger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024
# An admin connection must say who it is this soon, or it is closed (4403): an
# unauthenticated socket holds a place under the address's cap until then.
ADMIN_HELLO_SECONDS = 2.0
# More than this many refused client messages within the window close the connection.
REFUSALS_ALLOWED = 10
REFUSAL_WINDOW_SECONDS = 10.0
# Retry-After of a refusal for too many open connections from one address.
CAP_RETRY_SECONDS = 10

Scope = dict[str, Any]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


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


async def _refuse(send: Any, scope: Scope, error: HubError, reason: str) -> None:
    """Refuse the handshake with ``error`` as a problem+json HTTP response where the server
    allows it (else a close before accept, which servers answer with 403), and say so."""
    log.info(
        "ws_refused",
        path=scope.get("path"),
        ip=_client_ip(scope),
        reason=reason,
        status=error.status,
        origin=_header(scope, b"origin"),
    )
    metrics.WS_REFUSED.labels(reason).inc()
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": 1008})
        return
    body = jsonenc.dumps(error.problem(instance=scope.get("path")))
    headers = [(b"content-type", PROBLEM_JSON.encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send(
        {"type": "websocket.http.response.start", "status": error.status, "headers": headers}
    )
    await send({"type": "websocket.http.response.body", "body": body})


async def _admit(hub: AppHub, scope: Scope, send: Any) -> Claim | None:
    """Check a connection before its handshake: Origin, connect rate, the per-address cap
    across every hub process. Returns its place under that cap (give it back with
    ``hub.ws_caps.release``), or None when it was refused."""
    settings = hub.settings
    ip = _client_ip(scope)
    if not origin_allowed(scope, settings.allowed_origins):
        await _refuse(send, scope, Forbidden("Origin not allowed"), "origin")
        return None
    try:
        await hub.limits.hit(ratelimit.WS_CONNECTS, ip)
    except RateLimited as exc:
        await _refuse(send, scope, exc, "rate_limited")
        return None
    claim = await hub.ws_caps.claim(CapKind.IP, ip, settings.ws_max_per_ip)
    if claim is None:
        detail = f"At most {settings.ws_max_per_ip} connections from one address"
        await _refuse(send, scope, RateLimited(CAP_RETRY_SECONDS, detail), "ip_cap")
    return claim


class _Session:
    """One accepted connection: its peer, its places under the caps, and the client
    messages it understands. Slotted, and its refusal times and tastes made only when
    first needed: 10,000 waiting sockets each hold one for their lifetime."""

    __slots__ = (
        "channels",
        "ended",
        "hub",
        "ip_claim",
        "path",
        "peer",
        "receive",
        "refusals",
        "task",
        "tastes",
        "user_claim",
    )

    def __init__(self, hub: AppHub, peer: Peer, receive: Any, path: str) -> None:
        self.hub = hub
        self.channels = hub.channels
        self.peer = peer
        self.receive = receive
        self.path = path
        self.user_claim: Claim | None = None
        # when the recent refused messages were refused (monotonic seconds)
        self.refusals: collections.deque[float] | None = None
        # each user's taste, read once per connection (a later hello may change the user)
        self.tastes: dict[uuid.UUID, Taste | None] | None = None
        # its place under the per-address cap, while it holds one
        self.ip_claim: Claim | None = None
        # a parked connection's message handler while one runs (``EventSocket._drain``)
        self.task: asyncio.Task[None] | None = None
        self.ended = False

    def send(self, message: dict[str, Any]) -> None:
        self.peer.write(codec.encode(message, self.peer.proto))

    def refuse(self, code: str, detail: str, refused: str | None = None) -> None:
        """Answer a refused client message with ``error``; close with 1008 when more than
        ``REFUSALS_ALLOWED`` were refused within ``REFUSAL_WINDOW_SECONDS``."""
        self.send(codec.error(code, detail, refused))
        now = time.monotonic()
        if self.refusals is None:
            self.refusals = collections.deque()
        refusals = self.refusals
        refusals.append(now)
        while now - refusals[0] > REFUSAL_WINDOW_SECONDS:
            refusals.popleft()
        if len(refusals) > REFUSALS_ALLOWED:
            self.close(1008, "too many refused messages", "refused_messages")

    def close(self, code: int, detail: str, reason: str) -> None:
        """Close the connection with ``code`` and say why (a normal event: info)."""
        log.info("ws_refused", path=self.path, ip=self.peer.ip, reason=reason, code=code)
        metrics.WS_REFUSED.labels(reason).inc()
        self.peer.close(code, detail)

    async def next_message(self) -> dict[str, Any] | None:
        """The next decodable client message; None once the connection is gone or closed.
        Undecodable ones are refused with ``error`` and skipped."""
        while self.peer.open:
            event = await self.receive()
            if event["type"] != "websocket.receive":
                if event.get("code") == 1009:  # the server enforced the size limit
                    log.info("ws_refused", path=self.path, ip=self.peer.ip, reason="too_big")
                    metrics.WS_REFUSED.labels("too_big").inc()
                return None
            data = event.get("bytes")
            if data is None:
                data = event.get("text") or ""
            if len(data) > MAX_MESSAGE_BYTES:  # the server enforces it first when it can
                self.close(1009, "message too big", "too_big")
                return None
            try:
                return codec.decode_client(data)
            except ValueError as exc:
                self.refuse("bad_message", str(exc))
        return None

    async def authenticate(self, message: dict[str, Any]) -> Principal | None:
        token = message.get("token")
        if token is None:
            return None
        if not isinstance(token, str):
            self.refuse("bad_message", "token must be a string", "hello")
            return None
        try:
            return await principal_from_token(self.hub, token)
        except HubError as exc:
            self.refuse(exc.code, exc.detail, "hello")
            return None

    async def become(self, principal: Principal) -> bool:
        """Make the connection ``principal``'s user's, counted under that user's cap in
        every hub process; False when the cap is full (the connection is closed, 4429)."""
        if principal.user_id == self.peer.user_id:
            return True
        cap = self.hub.settings.ws_max_per_user
        claim = await self.hub.ws_caps.claim(CapKind.USER, str(principal.user_id), cap)
        if claim is None:
            self.close(4429, "Too many connections for this user", "user_cap")
            return False
        self.release_user()
        self.user_claim = claim
        self.peer.user_id = principal.user_id
        return True

    def release_user(self) -> None:
        if self.user_claim is not None:
            self.hub.ws_caps.release(self.user_claim)
            self.user_claim = None

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
            self.refuse("bad_message", str(exc), "hello")
            return
        try:
            event = await events.load_event(self.hub, peer.event_id)
            layout = await live_seats.layout_of(self.hub, event.venue_id)
        except NotFound:
            self.refuse("not_found", "No seat map to recommend seats from for this event", "hello")
            return
        unknown = reco.unknown_sections(prefs, layout.table)
        if unknown:
            detail = f"reco.preferred_sections names unknown sections: {', '.join(unknown)}"
            self.refuse("bad_message", detail, "hello")
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
        if self.tastes is None:
            self.tastes = {}
        if user_id not in self.tastes:
            self.tastes[user_id] = await seat_recommendations.taste_for(self.hub, user_id)
        return self.tastes[user_id]


class EventSocket:
    """``/ws/events/{event_id}``: a live seat map.

    Over uvicorn's protocol (a ``DirectPeer``) the connection is parked once it watches:
    the endpoint returns, and each client message (or the disconnect) wakes a short task
    that handles what has arrived and ends (``_drain``), so a watcher that says nothing
    costs no task and no coroutine chain. Elsewhere (``AsgiPeer``) one task reads the
    messages for the connection's lifetime (``_serve``)."""

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        hub: AppHub = scope["app"].state.hub
        ip_claim = await _admit(hub, scope, send)
        if ip_claim is None:
            return
        try:
            proto, answer = Subprotocol.choose(list(scope.get("subprotocols", [])))
            await send({"type": "websocket.accept", "subprotocol": answer})
        except BaseException:
            hub.ws_caps.release(ip_claim)
            raise
        peer = make_peer(scope, send, proto)
        # Nothing reads the handshake's headers after the accept; the scope lives as
        # long as the connection (~1 KB of them each, 10 MB over 10,000 waiters).
        scope["headers"] = []
        metrics.WS_CONNECTIONS.labels("events").inc()
        session = _Session(hub, peer, receive, "/ws/events")
        session.ip_claim = ip_claim
        parked = False
        try:
            try:
                event_id = uuid.UUID(scope["path_params"]["event_id"])
            except (KeyError, ValueError):
                session.close(4404, "No such event", "no_such_event")
                return
            hub.channels.watch(event_id, peer)
            if isinstance(peer, DirectPeer):
                peer.park(functools.partial(self._wake, session))
                parked = True
                return
            await self._serve(session)
        finally:
            if not parked:
                self._end(session)

    @staticmethod
    def _end(session: _Session) -> None:
        """The connection is done: give back its places and stop watching (once)."""
        if session.ended:
            return
        session.ended = True
        session.channels.unwatch(session.peer)
        session.release_user()
        metrics.WS_CONNECTIONS.labels("events").dec()
        if session.ip_claim is not None:
            session.hub.ws_caps.release(session.ip_claim)
            session.ip_claim = None

    def _wake(self, session: _Session) -> None:
        """A parked connection has a message (or its disconnect) waiting."""
        if session.task is None and not session.ended:
            session.task = asyncio.get_running_loop().create_task(self._drain(session))

    async def _drain(self, session: _Session) -> None:
        """Handle a parked connection's waiting messages; end the connection on its
        disconnect, a close, or an error (logged, as uvicorn logs an app's)."""
        peer = session.peer
        assert isinstance(peer, DirectPeer)
        done = True
        try:
            while True:
                message = await session.next_message()
                if message is None or not await self._handle(session, message):
                    break
                if not peer.pending():
                    done = False  # parked again until the next message
                    break
        except Exception:
            log.exception("ws_message_failed", path=session.path, ip=peer.ip)
        finally:
            session.task = None
            if done:
                self._end(session)
                peer.finish()

    async def _serve(self, session: _Session) -> None:
        while (message := await session.next_message()) is not None:
            if not await self._handle(session, message):
                return

    async def _handle(self, session: _Session, message: dict[str, Any]) -> bool:
        """One client message; False when the connection was closed for it."""
        kind = message["t"]
        if kind == "ping":
            session.send({"t": "pong"})
        elif kind == "resync":
            session.channels.resync(session.peer)
        elif kind == "hello":
            return await self._hello(session, message)
        else:
            session.refuse("unknown_message", f"unknown message type {kind!r}")
        return True

    async def _hello(self, session: _Session, message: dict[str, Any]) -> bool:
        """Who watches (``token``) and what it wants pushed (``reco``, absent: nothing);
        False when the connection was closed for it."""
        principal = await session.authenticate(message)
        if principal is not None and not await session.become(principal):
            return False
        if session.peer.open:
            await session.want_reco(message.get("reco"))
        return session.peer.open


class AdminSocket:
    """``/ws/admin``: live metrics for admins; the first message must be an admin hello,
    within ``ADMIN_HELLO_SECONDS``."""

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        hub: AppHub = scope["app"].state.hub
        ip_claim = await _admit(hub, scope, send)
        if ip_claim is None:
            return
        try:
            proto, answer = Subprotocol.choose(list(scope.get("subprotocols", [])))
            await send({"type": "websocket.accept", "subprotocol": answer})
            session = _Session(hub, make_peer(scope, send, proto), receive, "/ws/admin")
            try:
                principal = await self._hello(session)
                if principal is not None and await session.become(principal):
                    await self._serve(session)
            finally:
                session.release_user()
        finally:
            hub.ws_caps.release(ip_claim)

    async def _hello(self, session: _Session) -> Principal | None:
        """The admin the connection speaks for; None when it was closed (4403: no admin
        ``hello`` in time) or the client went away first."""
        hello: dict[str, Any] | None = None
        principal: Principal | None = None
        try:
            async with asyncio.timeout(ADMIN_HELLO_SECONDS):
                hello = await session.next_message()
                if hello is not None and hello["t"] == "hello":
                    principal = await session.authenticate(hello)
        except TimeoutError:
            session.close(4403, "Admins only: send an admin hello first", "hello_timeout")
            return None
        if hello is None:
            return None  # gone (or closed for its messages) before saying who it is
        if principal is None or not principal.is_admin:
            session.close(4403, "Admins only", "not_admin")
            return None
        return principal

    async def _serve(self, session: _Session) -> None:
        feed = session.hub.admin_feed
        peer = session.peer
        feed.join(peer)
        metrics.WS_CONNECTIONS.labels("admin").inc()
        try:
            while (message := await session.next_message()) is not None:
                if message["t"] == "ping":
                    session.send({"t": "pong"})
                else:
                    kind = message["t"]
                    session.refuse("unknown_message", f"unknown message type {kind!r}")
        finally:
            feed.leave(peer)
            metrics.WS_CONNECTIONS.labels("admin").dec()


def websocket_routes() -> list[BaseRoute]:
    return [
        WebSocketRoute("/ws/events/{event_id}", EventSocket()),
        WebSocketRoute("/ws/admin", AdminSocket()),
    ]
