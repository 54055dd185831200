"""SQL the demo seed needs that no other aggregate owns yet."""

from __future__ import annotations

from decimal import Decimal

from hub.db import Connection

# Any constant shared by every seeding process; it only has to differ from other locks.
_SEED_LOCK = 0x45564E5444454D4F  # "EVNTDEMO"


async def lock(con: Connection) -> None:
    """Wait for the session-level seeding lock, so two seeds never interleave."""
    await con.execute("SELECT pg_advisory_lock($1)", _SEED_LOCK)


async def unlock(con: Connection) -> None:
    await con.execute("SELECT pg_advisory_unlock($1)", _SEED_LOCK)


async def ensure_discount_code(con: Connection, code: str, percent: Decimal, max_uses: int) -> bool:
    """Insert the code unless it exists; return whether it was inserted."""
    status = await con.execute(
        "INSERT INTO discount_codes (code, percent, max_uses) VALUES ($1, $2, $3) "
        "ON CONFLICT (code) DO NOTHING",
        code,
        percent,
        max_uses,
    )
    return status.endswith(" 1")
