"""JSON encoding for responses: decimals as JSON numbers that keep their two places."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec

_encoder = msgspec.json.Encoder(decimal_format="number", uuid_format="canonical")


def dumps(value: Any) -> bytes:
    """Encode plain data (dicts, lists, Decimal, UUID, datetime, enums) to JSON bytes."""
    return _encoder.encode(value)


def loads(data: bytes | str) -> Any:
    return msgspec.json.decode(data)


def isoformat(moment: dt.datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, millisecond precision."""
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def uuid_str(value: uuid.UUID | str) -> str:
    return str(value)
