"""SQL for revoked tokens: the durable record of every logout, kept until the token would
have expired anyway (Redis holds the fast copy)."""

from __future__ import annotations

import datetime as dt
import uuid

from hub.db import Connection


async def is_revoked(con: Connection, jti: uuid.UUID) -> bool:
    return bool(await con.fetchval("SELECT 1 FROM revoked_tokens WHERE jti = $1", jti))


async def revoke(con: Connection, jti: uuid.UUID, expires_at: dt.datetime) -> None:
    await con.execute(
        "INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        jti,
        expires_at,
    )


async def live_revocations(con: Connection) -> dict[uuid.UUID, float]:
    """Every revocation whose token has not expired yet: jti -> expiry (epoch seconds)."""
    rows = await con.fetch(
        "SELECT jti, extract(epoch FROM expires_at)::float8 AS until "
        "FROM revoked_tokens WHERE expires_at > now()"
    )
    return {row["jti"]: row["until"] for row in rows}
