"""A client that stops answering pings with bytes still waiting to go out to it is gone
after the heartbeat: uvicorn's keepalive timeout only *closes* the transport, which waits
for its buffer to drain, and the buffer of a client that stopped reading never drains, so
the connection (and its buffer) stayed open for good (seen: 283 KB held 30 s past the
timeout, until the test ended)."""

from __future__ import annotations

import asyncio
import os
import socket

import msgpack

from hub.settings import Settings
from loadtest.watchers import client_frame
from tests.bench.ws_faults import established
from tests.hub.channels.conftest import loaded_event
from tests.hub.channels.test_ws_faults import PING_S, _serve
from tests.waiting import eventually

REQUEST = (
    "GET /ws/events/{event_id} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: evently.v1.msgpack\r\n\r\n"
)


async def test_a_silent_client_with_a_full_buffer_is_gone_after_the_heartbeat(
    settings: Settings,
) -> None:
    # The backlog bound is out of the way: only the heartbeat can find this client.
    roomy = settings.replace(ws_max_per_ip=10_000, ws_backlog_bytes=64 * 2**20)
    async with _serve(roomy) as (hub, port):
        event_id = await loaded_event(hub, 100_000)  # ~100 KB snapshots
        loop = asyncio.get_running_loop()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, ("127.0.0.1", port))
            await loop.sock_sendall(sock, REQUEST.format(event_id=event_id).encode())
            await asyncio.sleep(0.2)
            for _ in range(40):  # snapshots it never reads: the kernel's buffers fill up
                await loop.sock_sendall(sock, client_frame(msgpack.packb({"t": "resync"})))
                await asyncio.sleep(0.005)
            peers = [peer for channel in hub.channels.events.values() for peer in channel.peers]
            assert len(peers) == 1 and peers[0].buffered() > 0  # bytes wait in user space
            assert established(os.getpid(), port) == 1
            # Ping, then the pong's deadline, then some slack for a loaded box.
            assert await eventually(
                lambda: established(os.getpid(), port) == 0, within=2 * PING_S + 5
            )
            assert await eventually(lambda: not hub.channels.events, within=5)  # unwatched
        finally:
            sock.close()
