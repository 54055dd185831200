"""SQL for discount codes: create, list with use counts, disable, and count a use.

A code's ``uses`` never passes ``max_uses``: a use is counted by one conditional UPDATE
(``uses < max_uses``, row-locked by PostgreSQL for the rest of the booking's transaction),
and the table's ``CHECK (uses <= max_uses)`` refuses anything else. Codes are matched
case-insensitively (unique index on ``upper(code)``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal

from hub.db import Connection, Record

_COLUMNS = "code, percent, max_uses, uses, valid_from, valid_until, event_id, active, created_at"


@dataclass(frozen=True, slots=True)
class NewCode:
    code: str
    percent: Decimal
    max_uses: int
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None
    event_id: uuid.UUID | None


async def insert(con: Connection, new: NewCode) -> Record | None:
    """Create the code; None when a code of the same name (in any case) exists."""
    return await con.fetchrow(
        f"""INSERT INTO discount_codes (code, percent, max_uses, valid_from, valid_until,
                                        event_id)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT DO NOTHING
            RETURNING {_COLUMNS}""",
        new.code,
        new.percent,
        new.max_uses,
        new.valid_from,
        new.valid_until,
        new.event_id,
    )


async def all_codes(con: Connection) -> list[Record]:
    """Every code, newest first."""
    return list(await con.fetch(f"SELECT {_COLUMNS} FROM discount_codes ORDER BY created_at DESC"))


async def by_code(con: Connection, code: str) -> Record | None:
    return await con.fetchrow(
        f"SELECT {_COLUMNS} FROM discount_codes WHERE upper(code) = upper($1)", code
    )


async def disable(con: Connection, code: str) -> Record | None:
    """Turn the code off for good; None when there is no such code."""
    return await con.fetchrow(
        f"UPDATE discount_codes SET active = false WHERE upper(code) = upper($1) "
        f"RETURNING {_COLUMNS}",
        code,
    )


async def use(con: Connection, code: str, event_id: uuid.UUID, now: dt.datetime) -> Record | None:
    """Count one use of a code that is valid for the event now; None when it is not.
    Run inside the booking's transaction: the row stays locked until it commits, so two
    bookings can never both take a code's last use."""
    return await con.fetchrow(
        """UPDATE discount_codes SET uses = uses + 1
            WHERE upper(code) = upper($1) AND active AND uses < max_uses
              AND (valid_from IS NULL OR valid_from <= $3)
              AND (valid_until IS NULL OR valid_until > $3)
              AND (event_id IS NULL OR event_id = $2)
            RETURNING code, percent""",
        code,
        event_id,
        now,
    )


async def give_back(con: Connection, code: str) -> None:
    """A cancelled booking returns its use of the code (in the cancellation's transaction)."""
    await con.execute(
        "UPDATE discount_codes SET uses = uses - 1 WHERE code = $1 AND uses > 0", code
    )
