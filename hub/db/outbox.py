"""SQL for the notifications outbox."""

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


async def claim_pending(con: Connection, limit: int) -> list[Record]:
    """Lock a batch of unsent notifications (others skip them) in the caller's transaction."""
    return list(
        await con.fetch(
            """SELECT o.id, o.kind, o.user_id, o.payload, o.attempts, u.email
                 FROM outbox o LEFT JOIN users u ON u.id = o.user_id
                WHERE o.sent_at IS NULL AND o.attempts < 10
                ORDER BY o.id LIMIT $1 FOR UPDATE OF o SKIP LOCKED""",
            limit,
        )
    )


async def mark_sent(con: Connection, ids: list[int]) -> None:
    await con.execute("UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[])", ids)


async def mark_failed(con: Connection, ids: list[int]) -> None:
    await con.execute("UPDATE outbox SET attempts = attempts + 1 WHERE id = ANY($1::bigint[])", ids)


async def pending_count(con: Connection) -> int:
    return int(await con.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))
