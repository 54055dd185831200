"""Messages of the WebSocket contract, encoded once per subprotocol, as ready-made frames.

A broadcast encodes a message once for each subprotocol in use and builds the WebSocket
frame bytes once too (server frames are never masked), so writing it to a thousand
connections is a thousand ``transport.write(frame)`` calls and nothing else.

msgpack sends seat states as raw bytes (``bin``); JSON sends them as a list of ints.
"""

from __future__ import annotations

import enum
import struct
from typing import Any

import msgpack
import msgspec


class Subprotocol(enum.IntEnum):
    """Index into per-subprotocol tables; the default comes first."""

    MSGPACK = 0
    JSON = 1

    @property
    def wire_name(self) -> str:
        return _NAMES[self]

    @classmethod
    def choose(cls, offered: list[str]) -> tuple[Subprotocol, str | None]:
        """The subprotocol to speak and the name to answer with (None: answer none).

        msgpack when the client names none; otherwise the first one we know, in the
        client's order; a client offering only names we do not know gets msgpack and no
        header, so a strict client can give up.
        """
        for name in offered:
            for proto, wire in _NAMES.items():
                if name == wire:
                    return proto, wire
        return cls.MSGPACK, None


_NAMES = {Subprotocol.MSGPACK: "evently.v1.msgpack", Subprotocol.JSON: "evently.v1.json"}
_json_encoder = msgspec.json.Encoder()


class Encoded:
    """One message in one subprotocol: its payload and its complete server frame."""

    __slots__ = ("frame", "payload", "text")

    def __init__(self, payload: bytes, text: bool) -> None:
        self.payload = payload
        self.text = text
        self.frame = frame(payload, text)

    def __add__(self, other: Encoded) -> Encoded:
        """Two messages sent back to back: one write, two frames."""
        joined = Encoded.__new__(Encoded)
        joined.payload = b""
        joined.text = self.text
        joined.frame = self.frame + other.frame
        return joined


def frame(payload: bytes, text: bool) -> bytes:
    """A final, unmasked server frame (RFC 6455 §5.2) carrying ``payload``."""
    head = 0x81 if text else 0x82
    n = len(payload)
    if n < 126:
        return bytes((head, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", head, 126, n) + payload
    return struct.pack("!BBQ", head, 127, n) + payload


def encode(message: dict[str, Any], proto: Subprotocol) -> Encoded:
    """Encode a message map. Seat states given as ``bytes`` become a list of ints in JSON."""
    if proto is Subprotocol.MSGPACK:
        return Encoded(msgpack.packb(message, use_bin_type=True), text=False)
    seats = message.get("seats")
    if isinstance(seats, bytes | bytearray):
        message = {**message, "seats": list(seats)}
    return Encoded(_json_encoder.encode(message), text=True)


def decode_client(data: bytes | str) -> dict[str, Any]:
    """A client message: a binary frame is msgpack, a text frame JSON, either way a map
    with a string ``t``.

    Raises:
        ValueError: not decodable, not a map, or no type.
    """
    try:
        if isinstance(data, str):
            value = msgspec.json.decode(data)
        else:
            value = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as exc:  # every decoder error means the same thing here
        raise ValueError(f"not valid {'JSON' if isinstance(data, str) else 'msgpack'}") from exc
    if not isinstance(value, dict) or not isinstance(value.get("t"), str):
        raise ValueError("a message is a map with a string 't'")
    return value


def error(code: str, detail: str, refused: str | None = None) -> dict[str, Any]:
    """The ``error`` message; ``refused`` names the client message type refused."""
    message: dict[str, Any] = {"t": "error", "code": code, "detail": detail}
    if refused is not None:
        message["refused"] = refused
    return message
