"""Discount codes: created, listed and disabled by admins; checked and used by bookings.

A code takes its percent off a booking (on top of a group rate, within the cap). Its uses
are counted in the booking's own transaction (``use_code``), by a conditional update that
never lets ``uses`` pass ``max_uses`` — so ten bookings racing for a code with three uses
left get it three times — and given back in a cancellation's transaction (``give_back``).
``code_rate_bp`` is the early check a booking makes before it holds or charges anything.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import structlog

from hub import jsonenc
from hub.context import Hub
from hub.db import Connection, Record
from hub.db import discounts as discounts_db
from hub.db import events as events_db
from hub.errors import Conflict, NotFound, ValidationError

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class NewCode:
    """A code as an admin asks for it (field ranges are checked by the route's model)."""

    code: str
    percent: Decimal
    max_uses: int
    valid_from: dt.datetime | None = None
    valid_until: dt.datetime | None = None
    event_id: uuid.UUID | None = None


def code_view(row: Record) -> dict[str, Any]:
    """``{code, percent, max_uses, uses, valid_from, valid_until, event_id, active,
    created_at}``: ``uses`` is how many bookings hold the code now."""

    def moment(value: dt.datetime | None) -> str | None:
        return jsonenc.isoformat(value) if value is not None else None

    return {
        "code": row["code"],
        "percent": row["percent"],
        "max_uses": row["max_uses"],
        "uses": row["uses"],
        "valid_from": moment(row["valid_from"]),
        "valid_until": moment(row["valid_until"]),
        "event_id": row["event_id"],
        "active": row["active"],
        "created_at": moment(row["created_at"]),
    }


async def create_code(hub: Hub, new: NewCode) -> dict[str, Any]:
    """Create a code.

    Raises:
        ValidationError: the window ends before it starts, or no such event.
        Conflict: a code of that name exists (names are case-insensitive).
    """
    if new.valid_from and new.valid_until and new.valid_until <= new.valid_from:
        raise ValidationError.field("valid_until", "must be after valid_from")
    async with hub.db.connection() as con:
        if new.event_id is not None and await events_db.by_id(con, new.event_id) is None:
            raise ValidationError.field("event_id", f"no such event: {new.event_id}")
        row = await discounts_db.insert(
            con,
            discounts_db.NewCode(
                new.code, new.percent, new.max_uses, new.valid_from, new.valid_until, new.event_id
            ),
        )
    if row is None:
        raise Conflict(f"A discount code {new.code!r} exists already (codes ignore case)")
    log.info("discount_code_created", code=row["code"], max_uses=row["max_uses"])
    return code_view(row)


async def list_codes(hub: Hub) -> dict[str, Any]:
    """Every code with its use count, newest first: ``{items}``."""
    async with hub.db.connection() as con:
        rows = await discounts_db.all_codes(con)
    return {"items": [code_view(row) for row in rows]}


async def disable_code(hub: Hub, code: str) -> None:
    """Turn a code off: no booking can use it from now on (bookings made keep it).

    Raises:
        NotFound: no such code.
    """
    async with hub.db.connection() as con:
        row = await discounts_db.disable(con, code)
    if row is None:
        raise NotFound(f"No such discount code: {code!r}")
    log.info("discount_code_disabled", code=row["code"])


def _invalid(reason: str) -> ValidationError:
    return ValidationError.field("discount_code", reason)


async def code_rate_bp(hub: Hub, code: str, event_id: uuid.UUID) -> int:
    """The code's rate in basis points if it is valid for the event now.

    Raises:
        ValidationError: unknown, disabled, not yet or no longer valid, used up, or for
            another event (naming ``discount_code``).
    """
    async with hub.db.connection() as con:
        row = await discounts_db.by_code(con, code)
    now = dt.datetime.now(dt.UTC)
    if row is None or not row["active"]:
        raise _invalid("no such discount code")
    if row["uses"] >= row["max_uses"]:
        raise _invalid("this code has been used up")
    if (row["valid_from"] and row["valid_from"] > now) or (
        row["valid_until"] and row["valid_until"] <= now
    ):
        raise _invalid("this code is not valid now")
    if row["event_id"] is not None and row["event_id"] != event_id:
        raise _invalid("this code is for another event")
    return int(row["percent"] * 100)


async def use_code(con: Connection, code: str, event_id: uuid.UUID) -> str:
    """Count a use of the code in the booking's transaction; returns its stored name.

    Raises:
        ValidationError: it went bad (used up, disabled, expired) since it was checked.
    """
    used = await discounts_db.use(con, code, event_id, dt.datetime.now(dt.UTC))
    if used is None:
        raise _invalid("this code is no longer valid")
    return str(used["code"])


async def give_back(con: Connection, code: str) -> None:
    """A cancelled booking's use of its code is returned (in the cancellation's transaction)."""
    await discounts_db.give_back(con, code)
