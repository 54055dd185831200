"""Light watcher processes for the fan-out benchmark: many raw WebSocket clients per process.

The reference client (``loadtest.client``) is the readable one; this one exists so that a
few client processes can keep up with thousands of connections: an ``asyncio.Protocol``
per connection, a hand-written handshake and frame parser (server frames are unmasked),
no task per connection. Each ``seats`` message is recorded as ``(conn, from, seq,
receipt time)``; continuity (``from`` equals the previous ``seq``) is checked as it goes.

Cheap on purpose: a few processes share one core with ~100k frames/s, and whatever a
watcher spends per frame delays the next watcher's receipt (it showed up as latency).
The receipt time is taken first thing in ``data_received``, before any parsing; msgpack
``seats`` and ``counts`` frames are recognised by their fixed prefix (the server encodes
the map keys in a fixed order) and only the ``from``/``seq`` integers are read; anything
else (snapshots, JSON, an unexpected layout) is fully decoded.

With ``hellos`` (the fan-out benchmark's ``--reco``) each watcher sends its own ``hello``
right after the handshake and counts as ready once it holds both its snapshot and its first
``reco``; later ``reco`` frames are only counted (recognised by their prefix, like ``seats``).
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
import time
from array import array
from collections.abc import Sequence
from typing import Any

import msgpack

_KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
_PONG_MASK = b"\x00\x00\x00\x00"
# msgpack of {"t": "seats", "from": ...} and {"t": "counts", ...} as the servers encode them
_SEATS = b"\x84\xa1t\xa5seats\xa4from"
_SEQ = b"\xa3seq"
_COUNTS = b"\x86\xa1t\xa6counts"
_RECO = b"\x82\xa1t\xa4reco"
_UINT = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}


def _uint_at(data: bytes, i: int) -> tuple[int, int]:
    """A non-negative msgpack integer at ``i``: (value, index after it); -1 if not one."""
    b = data[i]
    if b < 0x80:
        return b, i + 1
    size = _UINT.get(b)
    if size is None:
        return -1, i
    return int.from_bytes(data[i + 1 : i + 1 + size], "big"), i + 1 + size


class Recorder:
    def __init__(self) -> None:
        self.conn = array("i")
        self.from_seq = array("q")
        self.seq = array("q")
        self.at = array("d")
        self.frames = 0
        self.gaps = 0
        self.snapshots = 0
        self.recos = 0
        self.closed = 0


def client_frame(payload: bytes) -> bytes:
    """A binary client frame carrying ``payload``: masked, as RFC 6455 requires of clients,
    with a zero key so the payload goes as it is."""
    n = len(payload)
    head = bytes((0x82, 0x80 | n)) if n < 126 else struct.pack("!BBH", 0x82, 0x80 | 126, n)
    return head + _PONG_MASK + payload


class Watcher(asyncio.Protocol):
    def __init__(
        self,
        index: int,
        rec: Recorder,
        request: bytes,
        ready: asyncio.Future[None],
        hello: bytes | None = None,
    ):
        self.index = index
        self.rec = rec
        self.request = request
        self.ready = ready
        self.hello = hello
        self.snapshot = False
        self.reco = hello is None  # nothing to wait for without a hello
        self.buf = bytearray()
        self.open = False
        self.last: int | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        self.rec.closed += 1
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed before the snapshot"))

    def data_received(self, data: bytes) -> None:
        now = time.time()  # the receipt: before any parsing
        buf = self.buf
        buf += data
        if not self.open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if b" 101 " not in buf[:20]:
                if not self.ready.done():
                    self.ready.set_exception(ConnectionError(bytes(buf[:40]).decode()))
                return
            del buf[: end + 4]
            self.open = True
            if self.hello is not None:
                assert self.transport is not None
                self.transport.write(client_frame(self.hello))
        i, n = 0, len(buf)
        while n - i >= 2:
            b0, b1 = buf[i], buf[i + 1] & 0x7F
            head = 2
            if b1 == 126:
                if n - i < 4:
                    break
                b1 = (buf[i + 2] << 8) | buf[i + 3]
                head = 4
            elif b1 == 127:
                if n - i < 10:
                    break
                b1 = struct.unpack_from("!Q", buf, i + 2)[0]
                head = 10
            if n - i < head + b1:
                break
            payload = bytes(buf[i + head : i + head + b1])
            i += head + b1
            self._frame(b0 & 0x0F, payload, now)
        del buf[:i]

    def _frame(self, opcode: int, payload: bytes, now: float) -> None:
        rec = self.rec
        if opcode == 9:  # ping: answer with a masked pong
            assert self.transport is not None and len(payload) < 126
            self.transport.write(bytes((0x8A, 0x80 | len(payload))) + _PONG_MASK + payload)
            return
        if opcode == 8:
            return
        rec.frames += 1
        if opcode == 2 and payload.startswith(_SEATS):
            frm, j = _uint_at(payload, len(_SEATS))
            if frm >= 0 and payload.startswith(_SEQ, j):
                seq, _ = _uint_at(payload, j + len(_SEQ))
                if seq >= 0:
                    self._seats(frm, seq, now)
                    return
        elif opcode == 2 and payload.startswith(_COUNTS):
            return
        elif opcode == 2 and payload.startswith(_RECO) and self.reco:
            rec.recos += 1
            return
        message: dict[str, Any] = json.loads(payload) if opcode == 1 else msgpack.unpackb(payload)
        kind = message["t"]
        if kind == "seats":
            self._seats(message["from"], message["seq"], now)
        elif kind == "snapshot":
            rec.snapshots += 1
            self.last = message["seq"]
            self.snapshot = True
        elif kind == "reco":
            if self.reco:
                rec.recos += 1
            self.reco = True
        elif kind == "error" and not self.ready.done():
            self.ready.set_exception(ConnectionError(f"refused: {message}"))
        if self.snapshot and self.reco and not self.ready.done():
            self.ready.set_result(None)

    def _seats(self, frm: int, seq: int, now: float) -> None:
        rec = self.rec
        if self.last is None or frm != self.last:
            rec.gaps += 1
        self.last = seq
        rec.conn.append(self.index)
        rec.from_seq.append(frm)
        rec.seq.append(seq)
        rec.at.append(now)


async def run_watchers(
    host: str,
    port: int,
    path: str,
    count: int,
    first_index: int,
    subprotocol: str,
    conn: Any,
    hellos: Sequence[bytes] | None = None,
) -> None:
    """Open ``count`` watchers, report ready, record until told to stop, send the records.

    ``hellos``: one msgpack ``hello`` per watcher, sent as soon as its handshake is done.
    Told "pause" instead, every watcher stops reading (its socket stays open, nothing is
    read, no ping answered: a client that stalled), and the process waits for "stop".
    """
    loop = asyncio.get_running_loop()
    rec = Recorder()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {_KEY.decode()}\r\n"
        f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: evently.v1.{subprotocol}\r\n\r\n"
    ).encode()
    gate = asyncio.Semaphore(64)
    transports: list[asyncio.Transport] = []

    async def one(index: int) -> None:
        async with gate:
            ready: asyncio.Future[None] = loop.create_future()
            transport, _ = await loop.create_connection(
                lambda: Watcher(
                    index, rec, request, ready, hellos[index - first_index] if hellos else None
                ),
                host,
                port,
            )
            transports.append(transport)  # type: ignore[arg-type]
            await asyncio.wait_for(ready, 60)

    results = await asyncio.gather(
        *(one(first_index + k) for k in range(count)), return_exceptions=True
    )
    failed = [r for r in results if isinstance(r, BaseException)]
    conn.send(("ready", len(failed), repr(failed[0]) if failed else ""))
    started = time.process_time()
    while await loop.run_in_executor(None, conn.recv) == "pause":  # else "stop"
        for transport in transports:
            transport.pause_reading()
        conn.send(("paused", len(transports)))
    cpu = time.process_time() - started
    conn.send(
        (
            "records",
            {
                "conn": rec.conn.tobytes(),
                "from": rec.from_seq.tobytes(),
                "seq": rec.seq.tobytes(),
                "at": rec.at.tobytes(),
                "frames": rec.frames,
                "gaps": rec.gaps,
                "snapshots": rec.snapshots,
                "recos": rec.recos,
                "closed": rec.closed,
                "cpu_seconds": cpu,
            },
        )
    )
    for transport in transports:
        transport.abort()


def watcher_process(args: tuple[Any, ...]) -> None:
    """Entry point of one client process (pinned to the given CPUs)."""
    host, port, path, count, first_index, subprotocol, conn, cpus, *rest = args
    if cpus:
        os.sched_setaffinity(0, cpus)
    import uvloop

    hellos = rest[0] if rest else None
    uvloop.run(run_watchers(host, port, path, count, first_index, subprotocol, conn, hellos))
