"""WebSocket limits: the caps per address and per user across two hub processes (one in this
test's loop, one a real uvicorn process), the admin hello deadline, refused messages (1008),
the connect rate, and refusals and early closes logged as info lines, never tracebacks."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import IO, Any

import pytest
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, InvalidStatus

from hub.channels.caps import CapKind
from hub.settings import Settings
from loadtest.client import WatchClient
from tests.conftest import Account
from tests.hub.channels.conftest import WsServer, loaded_event, serve
from tests.live import HubProcess, hub_process
from tests.waiting import eventually

MAX_PER_IP = 3
MAX_PER_USER = 2


@dataclass
class TwoHubs:
    here: WsServer  # served in this test's event loop
    there: HubProcess  # its own uvicorn process, logging JSON lines to ``log``
    log: IO[bytes]
    event_id: uuid.UUID

    def url(self, hub: str, path: str) -> str:
        port = self.here.port if hub == "here" else self.there.port
        return f"ws://127.0.0.1:{port}{path}"

    def event_url(self, hub: str) -> str:
        return self.url(hub, f"/ws/events/{self.event_id}")

    def log_lines(self) -> list[str]:
        self.log.flush()
        with open(self.log.name, encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()


@pytest.fixture(scope="module")
async def two(settings: Settings) -> AsyncIterator[TwoHubs]:
    """Two hub processes on the same Redis keys (a prefix of their own, so connections left
    by other tests do not count), each capped at 3 connections per address, 2 per user."""
    capped = settings.replace(
        redis_prefix=f"{settings.redis_prefix}wscap-{uuid.uuid4().hex[:8]}:",
        ws_max_per_ip=MAX_PER_IP,
        ws_max_per_user=MAX_PER_USER,
    )
    with tempfile.NamedTemporaryFile(prefix="hub-log-", suffix=".jsonl") as log:
        async with (
            serve(capped) as here,
            hub_process(
                capped,
                stderr=log,
                ws_max_per_ip=str(MAX_PER_IP),
                ws_max_per_user=str(MAX_PER_USER),
                log_level="info",
                log_format="json",
            ) as there,
        ):
            event_id = await loaded_event(here.hub)
            yield TwoHubs(here, there, log, event_id)


async def _status_of_refusal(url: str, **kwargs: Any) -> tuple[int, Headers, bytes]:
    with pytest.raises(InvalidStatus) as refused:
        await WatchClient.open(url, **kwargs)
    response = refused.value.response
    return response.status_code, response.headers, bytes(response.body or b"")


async def _close_code(conn: WatchClient, within: float = 5.0) -> int:
    """Read until the server closes the connection; its close code."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(conn.recv(), within)
    assert closed.value.rcvd is not None, "closed without a close frame"
    return closed.value.rcvd.code


async def _all_closed(conns: list[WatchClient]) -> None:
    for conn in conns:
        await conn.close()


async def _free_places(two: TwoHubs) -> bool:
    """True once a connection is accepted again (the places of closed ones given back)."""
    try:
        conn = await WatchClient.open(two.event_url("here"))
    except InvalidStatus:
        return False
    await conn.close()
    return True


async def test_the_per_address_cap_holds_across_processes(two: TwoHubs) -> None:
    conns = [
        await WatchClient.open(two.event_url("here")),
        await WatchClient.open(two.event_url("there")),
        await WatchClient.open(two.url("there", "/ws/admin")),  # admin sockets count too
    ]
    try:
        for hub in ("here", "there"):
            status, headers, body = await _status_of_refusal(two.event_url(hub))
            assert status == 429
            assert int(headers["Retry-After"]) > 0
            problem = json.loads(body)
            assert problem["code"] == "rate_limited" and problem["status"] == 429
        assert (await conns[0].next_seat_message())["t"] == "snapshot"
    finally:
        await _all_closed(conns)
    # the places are given back as the connections close, in both processes
    assert await eventually(lambda: _free_places(two), within=5)
    three = [await WatchClient.open(two.event_url(h)) for h in ("here", "there", "here")]
    await _all_closed(three)


async def test_unauthenticated_admin_sockets_hold_a_place_for_2_s_only(two: TwoHubs) -> None:
    assert await eventually(lambda: _free_places(two), within=5)
    started = time.monotonic()
    silent = [await WatchClient.open(two.url(h, "/ws/admin")) for h in ("there", "here", "there")]
    status, _, _ = await _status_of_refusal(two.event_url("here"))
    assert status == 429
    codes = await asyncio.gather(*(_close_code(conn) for conn in silent))
    assert codes == [4403, 4403, 4403]
    assert time.monotonic() - started < 4.0
    assert await eventually(lambda: _free_places(two), within=5)


async def test_the_per_user_cap_holds_across_processes(two: TwoHubs, user: Account) -> None:
    assert await eventually(lambda: _free_places(two), within=5)
    conns = []
    for hub in ("here", "there"):
        conn = await WatchClient.open(two.event_url(hub))
        await conn.next_seat_message()
        await conn.send({"t": "hello", "token": user.token})
        await conn.send({"t": "ping"})  # answered only once the hello is through
        assert (await asyncio.wait_for(conn.recv(), 5))["t"] == "pong"
        conns.append(conn)
    third = await WatchClient.open(two.event_url("here"))
    await third.next_seat_message()
    await third.send({"t": "hello", "token": user.token})
    assert await _close_code(third) == 4429
    # the same user's own connection saying hello again is not a new one
    await conns[1].send({"t": "hello", "token": user.token})
    await conns[1].send({"t": "ping"})
    assert (await asyncio.wait_for(conns[1].recv(), 5))["t"] == "pong"
    await conns[0].close()  # its place is given back: another process may use it
    caps = two.here.hub.ws_caps
    assert await eventually(lambda: caps.held(CapKind.USER, user.id) == 0, within=5)
    fourth = await WatchClient.open(two.event_url("there"))
    await fourth.next_seat_message()
    await fourth.send({"t": "hello", "token": user.token})
    await fourth.send({"t": "ping"})
    assert (await asyncio.wait_for(fourth.recv(), 5))["t"] == "pong"
    await _all_closed([conns[1], fourth])


@pytest.mark.parametrize("subprotocol", ["msgpack", "json"])
async def test_more_than_10_refused_messages_in_10_s_close_with_1008(
    ws: WsServer, subprotocol: str
) -> None:
    event_id = await loaded_event(ws.hub)
    conn = await WatchClient.open(ws.event_url(event_id), subprotocol=subprotocol)
    await conn.next_seat_message()
    bad = b"\xc1" if subprotocol == "msgpack" else "{nope"
    for i in range(10):
        await (conn.ws.send(bad) if i % 2 else conn.send({"t": "dance"}))
        error = await asyncio.wait_for(conn.recv(), 5)
        assert error["t"] == "error" and error["code"] in ("bad_message", "unknown_message")
    await conn.send({"t": "ping"})  # ten refused: still open
    assert (await asyncio.wait_for(conn.recv(), 5))["t"] == "pong"
    await conn.send({"t": "hello", "token": "not-a-token"})  # the eleventh
    error = await asyncio.wait_for(conn.recv(), 5)
    assert error["t"] == "error" and error["code"] == "unauthorized"
    assert await _close_code(conn) == 1008


async def test_websocket_connects_are_rate_limited_per_address(settings: Settings) -> None:
    limited = settings.replace(
        redis_prefix=f"{settings.redis_prefix}wsrate-{uuid.uuid4().hex[:8]}:",
        rate_limits=True,
        ws_max_per_ip=10_000,
    )
    async with serve(limited) as server:
        event_id = await loaded_event(server.hub)
        for _ in range(60):  # WS_CONNECTS: 60 per 10 s per address
            conn = await WatchClient.open(server.event_url(event_id))
            await conn.close()
        status, headers, body = await _status_of_refusal(server.event_url(event_id))
        assert status == 429 and 1 <= int(headers["Retry-After"]) <= 10
        assert json.loads(body)["code"] == "rate_limited"
        status, _, _ = await _status_of_refusal(server.url("/ws/admin"))
        assert status == 429


async def test_refusals_and_early_closes_are_info_lines_not_tracebacks(
    two: TwoHubs, user: Account
) -> None:
    assert await eventually(lambda: _free_places(two), within=5)
    status, _, _ = await _status_of_refusal(two.event_url("there"), origin="https://evil.example")
    assert status == 403
    # admin sockets that say hello as a non-admin and close at once, before the answer
    for _ in range(5):
        conn = await WatchClient.open(two.url("there", "/ws/admin"))
        await conn.send({"t": "hello", "token": user.token})
        await conn.ws.close()
    silent = await WatchClient.open(two.url("there", "/ws/admin"))
    assert await _close_code(silent) == 4403
    unknown = await WatchClient.open(two.url("there", "/ws/events/not-an-id"))
    assert await _close_code(unknown) == 4404
    full = [await WatchClient.open(two.event_url("there")) for _ in range(MAX_PER_IP)]
    status, _, _ = await _status_of_refusal(two.event_url("there"))
    assert status == 429
    await _all_closed(full)

    def reasons() -> set[str]:
        found = set()
        for line in two.log_lines():
            if '"ws_refused"' in line:
                entry = json.loads(line)
                assert entry["level"] == "info", entry
                found.add(entry["reason"])
        return found

    expected = {"origin", "not_admin", "hello_timeout", "no_such_event", "ip_cap"}
    assert await eventually(lambda: expected <= reasons(), within=5), reasons()
    text = "\n".join(two.log_lines())
    for bad in (
        "Traceback",
        "InvalidState",
        "Exception in ASGI application",
        "without completing handshake",
    ):
        assert bad not in text, text[-3000:]
