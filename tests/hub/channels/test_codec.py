"""The codec: every message of the WebSocket contract (DESIGN §5) in both subprotocols.

Round trips go through the frame the hub writes (parsed here as a client would), then the
client's own decoder: msgpack for binary frames, JSON for text frames. Seat codes travel as
``bin`` in msgpack and as a list of ints in JSON.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import msgpack
import pytest

from engines.seats import SeatCode
from hub.channels.codec import Encoded, Subprotocol, decode_client, encode, error, frame

FREE, HELD, SOLD = SeatCode.FREE, SeatCode.HELD, SeatCode.SOLD

# 21,000 seats: a frame past 64 KiB in JSON
SEATS = bytes([FREE, HELD, SOLD, FREE, FREE, SOLD, HELD] * 3000)
PRICES = {"Floor": 165.5, "Balcony": 45.0}

# One of each server message type of DESIGN §5, as the hub builds it.
SERVER_MESSAGES: list[dict[str, Any]] = [
    {
        "t": "snapshot",
        "seq": 41,
        "seats": SEATS,
        "prices": PRICES,
        "counts": {"total": len(SEATS), "available": 9000, "held": 6000, "sold": 6000},
    },
    {"t": "seats", "from": 41, "seq": 44, "changes": [[0, 1], [17, 2], [20_999, 0]]},
    {
        "t": "price",
        "seq": 44,
        "prices": PRICES,
        "factors": {"demand": 0.12, "time": -0.03, "velocity": 0.0, "waitlist": 0.01},
    },
    {"t": "counts", "seq": 44, "total": 7, "available": 3, "held": 2, "sold": 2},
    {
        "t": "reco",
        "recommendations": [
            {
                "seats": [{"id": "5b0e…", "section": "Floor", "row": "A", "number": 3}],
                "total_price": 165.5,
                "together": True,
                "score": 0.81,
                "scores": {"similarity": 0.5, "value": 0.7, "location": 0.9, "group": 1.0},
            }
        ],
    },
    {
        "t": "offer",
        "hold_id": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "seats": [{"id": "s1", "section": "Floor", "row": "B", "number": 9, "price": 120.0}],
        "expires_at": "2026-12-04T15:00:00Z",
    },
    error("rate_limited", "too many refused messages", refused="hello"),
    {"t": "queue", "status": "waiting", "position": 120, "ahead": 119, "eta_seconds": 42},
    {"t": "admitted", "token": "adm.token", "expires_at": "2026-12-04T15:10:00Z"},
    {"t": "sold_out"},
    {
        "t": "metrics",
        "at": 1_796_000_000_000,
        "holds_per_s": 812.5,
        "redis": {"ok": True, "ms": 0.31},
        "postgres": {"ok": False, "ms": None},
    },
    {"t": "pong"},
]

CLIENT_MESSAGES: list[dict[str, Any]] = [
    {"t": "hello"},
    {
        "t": "hello",
        "token": "jwt.token.here",
        "reco": {
            "quantity": 2,
            "max_price": 150.0,
            "preferred_sections": ["Floor"],
            "accessibility_required": False,
        },
    },
    {"t": "resync"},
    {"t": "ping"},
]


def unframe(data: bytes) -> tuple[int, bytes, bytes]:
    """``(opcode, payload, rest)`` of the first frame in ``data``, checked as a client must:
    final, unmasked, its length exactly as announced."""
    first, second = data[0], data[1]
    assert first & 0x80, "a server frame here is always final"
    assert not second & 0x80, "server frames are never masked"
    length, offset = second & 0x7F, 2
    if length == 126:
        (length,) = struct.unpack_from("!H", data, 2)
        offset = 4
    elif length == 127:
        (length,) = struct.unpack_from("!Q", data, 2)
        offset = 10
    return first & 0x0F, data[offset : offset + length], data[offset + length :]


def client_decode(proto: Subprotocol, encoded: Encoded) -> dict[str, Any]:
    opcode, payload, rest = unframe(encoded.frame)
    assert rest == b""
    assert payload == encoded.payload
    if proto is Subprotocol.MSGPACK:
        assert opcode == 0x2 and not encoded.text
        value: dict[str, Any] = msgpack.unpackb(payload, raw=False)
    else:
        assert opcode == 0x1 and encoded.text
        value = json.loads(payload.decode("utf-8"))
    return value


@pytest.mark.parametrize("proto", list(Subprotocol))
@pytest.mark.parametrize("message", SERVER_MESSAGES, ids=lambda m: str(m["t"]))
def test_every_server_message_round_trips(proto: Subprotocol, message: dict[str, Any]) -> None:
    decoded = client_decode(proto, encode(message, proto))
    expected = dict(message)
    if proto is Subprotocol.JSON and "seats" in message and isinstance(message["seats"], bytes):
        expected["seats"] = list(message["seats"])
    assert decoded == expected


def test_snapshot_seats_are_bytes_in_msgpack_and_a_list_of_ints_in_json() -> None:
    snapshot = SERVER_MESSAGES[0]
    packed = client_decode(Subprotocol.MSGPACK, encode(snapshot, Subprotocol.MSGPACK))
    assert isinstance(packed["seats"], bytes) and packed["seats"] == SEATS
    # bin of 21,000 bytes: one byte per seat plus a few of header, not an array of ints.
    assert len(encode(snapshot, Subprotocol.MSGPACK).payload) < len(SEATS) + 200
    text = client_decode(Subprotocol.JSON, encode(snapshot, Subprotocol.JSON))
    assert text["seats"] == list(SEATS) and all(type(code) is int for code in text["seats"])
    assert snapshot["seats"] is SEATS, "encoding JSON must not change the caller's message"


@pytest.mark.parametrize("proto", list(Subprotocol))
@pytest.mark.parametrize("message", CLIENT_MESSAGES, ids=lambda m: str(sorted(m)))
def test_every_client_message_is_decoded(proto: Subprotocol, message: dict[str, Any]) -> None:
    data: bytes | str
    if proto is Subprotocol.MSGPACK:
        data = msgpack.packb(message, use_bin_type=True)
    else:
        data = json.dumps(message)
    assert decode_client(data) == message


@pytest.mark.parametrize(
    "data",
    [
        b"\xc1",  # never used in msgpack
        "{nope",
        msgpack.packb([1, 2]),
        "[1, 2]",
        msgpack.packb({"type": "hello"}),
        '{"t": 7}',
        msgpack.packb({1: "x", "t": "ping"}),  # a map key that is not a string
    ],
)
def test_undecodable_or_shapeless_client_messages_are_refused(data: bytes | str) -> None:
    with pytest.raises(ValueError):
        decode_client(data)


@pytest.mark.parametrize("size", [0, 125, 126, 65_535, 65_536, 70_000])
def test_frame_length_encoding_at_every_boundary(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    for text in (False, True):
        opcode, body, rest = unframe(frame(payload, text))
        assert (opcode, body, rest) == (0x1 if text else 0x2, payload, b"")
    header = len(frame(payload, False)) - size
    assert header == (2 if size < 126 else 4 if size < 65_536 else 10)


def test_two_messages_joined_make_one_write_of_two_frames() -> None:
    seats = encode(SERVER_MESSAGES[1], Subprotocol.MSGPACK)
    counts = encode(SERVER_MESSAGES[3], Subprotocol.MSGPACK)
    joined = seats + counts
    opcode, first, rest = unframe(joined.frame)
    _, second, tail = unframe(rest)
    assert tail == b""
    assert msgpack.unpackb(first) == SERVER_MESSAGES[1]
    assert msgpack.unpackb(second) == SERVER_MESSAGES[3]
    assert opcode == 0x2 and not joined.text


@pytest.mark.parametrize(
    ("offered", "expected"),
    [
        ([], (Subprotocol.MSGPACK, None)),
        (["evently.v1.json"], (Subprotocol.JSON, "evently.v1.json")),
        (["evently.v1.json", "evently.v1.msgpack"], (Subprotocol.JSON, "evently.v1.json")),
        (["chat", "evently.v1.msgpack"], (Subprotocol.MSGPACK, "evently.v1.msgpack")),
        (["evently.v2.cbor"], (Subprotocol.MSGPACK, None)),
    ],
)
def test_subprotocol_choice(offered: list[str], expected: tuple[Subprotocol, str | None]) -> None:
    assert Subprotocol.choose(offered) == expected


def test_error_names_the_refused_message_only_when_given() -> None:
    assert error("bad_request", "unknown type") == {
        "t": "error",
        "code": "bad_request",
        "detail": "unknown type",
    }
    assert error("bad_request", "x", refused="hello")["refused"] == "hello"
