"""SQL for the notifications outbox.

One drainer at a time holds a session advisory lock; it reads the oldest unsent rows and
marks each sent in its own statement (autocommit) as soon as it is delivered.
"""

from __future__ import annotations

import uuid
from typing import Any

from hub.db import Connection, Record


async def add(
    con: Connection, kind: str, user_id: uuid.UUID | None, payload: dict[str, Any]
) -> None:
    await con.execute(
        "INSERT INTO outbox (kind, user_id, payload) VALUES ($1, $2, $3)", kind, user_id, payload
    )


async def add_many(
    con: Connection, kind: str, rows: list[tuple[uuid.UUID, dict[str, Any]]]
) -> None:
    await con.executemany(
        "INSERT INTO outbox (kind, user_id, payload) VALUES ($1, $2, $3)",
        [(kind, user_id, payload) for user_id, payload in rows],
    )


# Rows refused this many times as undeliverable are given up (they stay unsent).
MAX_ATTEMPTS = 10
# pg_try_advisory_lock key: one sender drains the outbox at a time, across processes.
_DRAIN_LOCK = 0x65766F7574626F78  # "evoutbox"


async def try_lock(con: Connection) -> bool:
    """Take the drain lock on this session (not a transaction); False if another has it.

    Released by ``unlock`` on the same connection, or when the session ends (a crash)."""
    return bool(await con.fetchval("SELECT pg_try_advisory_lock($1)", _DRAIN_LOCK))


async def unlock(con: Connection) -> None:
    await con.execute("SELECT pg_advisory_unlock($1)", _DRAIN_LOCK)


async def pending(con: Connection, limit: int) -> list[Record]:
    """The oldest unsent notifications (not given up), with their user's address.

    Read under the drain lock, not a row lock, so each row can be marked sent in its own
    commit right after its send."""
    return list(
        await con.fetch(
            """SELECT o.id, o.kind, o.user_id, o.payload, o.attempts, u.email
                 FROM outbox o LEFT JOIN users u ON u.id = o.user_id
                WHERE o.sent_at IS NULL AND o.attempts < $2
                ORDER BY o.id LIMIT $1""",
            limit,
            MAX_ATTEMPTS,
        )
    )


async def mark_sent(con: Connection, ids: list[int]) -> None:
    await con.execute("UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[])", ids)


async def mark_failed(con: Connection, ids: list[int]) -> None:
    """Count an attempt that failed through the message's own fault (not an outage)."""
    await con.execute("UPDATE outbox SET attempts = attempts + 1 WHERE id = ANY($1::bigint[])", ids)


async def pending_count(con: Connection) -> int:
    return int(await con.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))
