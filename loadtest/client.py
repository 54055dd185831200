"""The reference WebSocket client: a seat mirror that checks seq continuity and resyncs.

Contract it checks (docs/channels.md): a ``snapshot`` sets the mirror at its ``seq``; a
``seats`` message covers the changes with seq in ``(from, seq]``, conflated (each seat's
last code). A message with ``seq <= last`` is stale and ignored; one with ``from != last``
(or any delta before a snapshot) means something was missed: the client sends ``resync``
and waits for the next snapshot.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import msgpack
from websockets.asyncio.client import ClientConnection, connect

SUBPROTOCOLS = {"msgpack": "evently.v1.msgpack", "json": "evently.v1.json"}


@dataclass
class SeatMirror:
    """A client's view of one event's seats."""

    seq: int | None = None
    seats: bytearray = field(default_factory=bytearray)
    counts: dict[str, int] = field(default_factory=dict)
    prices: dict[str, Any] = field(default_factory=dict)
    snapshots: int = 0
    deltas: int = 0
    gaps: int = 0
    stale: int = 0

    def on_message(self, message: dict[str, Any]) -> bool:
        """Apply a server message; True when the client must send ``resync``."""
        kind = message.get("t")
        if kind == "snapshot":
            self.seq = int(message["seq"])
            self.seats = bytearray(message["seats"])
            self.counts = dict(message.get("counts") or {})
            self.prices = dict(message.get("prices") or {})
            self.snapshots += 1
            return False
        if kind == "seats":
            if self.seq is None:
                self.gaps += 1
                return True
            seq = int(message["seq"])
            if seq <= self.seq:
                self.stale += 1
                return False
            if int(message["from"]) != self.seq:
                self.gaps += 1
                self.seq = None  # ignore deltas until the fresh snapshot
                return True
            for idx, code in message["changes"]:
                self.seats[idx] = code
            self.seq = seq
            self.deltas += 1
            return False
        if kind == "counts":
            self.counts = {k: message[k] for k in ("total", "available", "held", "sold")}
        elif kind == "price":
            self.prices = dict(message.get("prices") or {})
        return False


class WatchClient:
    """A connection to ``/ws/events/{id}`` (or ``/ws/admin``) speaking either subprotocol."""

    def __init__(self, ws: ClientConnection, subprotocol: str) -> None:
        self.ws = ws
        self.subprotocol = subprotocol
        self.mirror = SeatMirror()
        self.others: list[dict[str, Any]] = []  # messages that are not seat state

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        subprotocol: str | None = "msgpack",
        origin: str | None = None,
        **kwargs: Any,
    ) -> WatchClient:
        protocols = [SUBPROTOCOLS[subprotocol]] if subprotocol else None
        ws = await connect(
            url,
            subprotocols=protocols,  # type: ignore[arg-type]
            origin=origin,  # type: ignore[arg-type]
            compression=None,
            max_size=None,
            **kwargs,
        )
        return cls(ws, subprotocol or "msgpack")

    async def send(self, message: dict[str, Any]) -> None:
        if self.subprotocol == "json":
            await self.ws.send(json.dumps(message))
        else:
            await self.ws.send(msgpack.packb(message, use_bin_type=True))

    async def recv(self) -> dict[str, Any]:
        """The next message, decoded."""
        return self.decode(await self.ws.recv())

    @staticmethod
    def decode(data: str | bytes) -> dict[str, Any]:
        """A frame's message: a text frame is JSON, a binary one msgpack."""
        if isinstance(data, str):
            value: dict[str, Any] = json.loads(data)
        else:
            value = msgpack.unpackb(data, raw=False)
        return value

    async def next_seat_message(self) -> dict[str, Any]:
        """Receive until a snapshot or seats message, applying it (and resyncing on a gap)."""
        while True:
            message = await self.recv()
            if message.get("t") in ("snapshot", "seats"):
                if self.mirror.on_message(message):
                    await self.send({"t": "resync"})
                return message
            self.mirror.on_message(message)
            self.others.append(message)

    async def until_seq(self, seq: int) -> None:
        """Receive until the mirror reaches ``seq`` (resyncing on gaps)."""
        while self.mirror.seq is None or self.mirror.seq < seq:
            await self.next_seat_message()

    async def close(self) -> None:
        await self.ws.close()
