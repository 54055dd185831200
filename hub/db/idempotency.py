"""SQL for idempotency keys: a claim per (user, key), then the recorded response."""

from __future__ import annotations

import uuid

from hub.db import Connection, Record

# An in-flight claim older than this was left by a crashed process: a retry may take it.
STALE_CLAIM_SECONDS = 120


async def claim(
    con: Connection, user_id: uuid.UUID, key: str, request_hash: str, keep_seconds: int
) -> tuple[bool, Record | None]:
    """Claim the key atomically: ``(True, None)`` when we hold the claim now, else
    ``(False, row found)``; the row is None when its claimant released it meanwhile.

    A row past its expiry, or an in-flight claim gone stale, is taken over.

    The claim commits without waiting for its WAL to reach the disk (``synchronous_commit``
    off for this statement's transaction alone): the work it guards commits synchronously
    after it, which flushes the WAL up to there, the claim's record included. A claim that
    PostgreSQL's crash loses before that guarded no work that committed (the request failed
    with the crash, its retry claims again; a hold is confirmed once whatever the claims
    say: Redis's begin-confirm and the one booking per hold in PostgreSQL see to that).
    Other sessions see the claim at once either way.
    """
    taken = await con.fetchval(
        f"""INSERT INTO idempotency_keys (user_id, key, request_hash, state, expires_at)
            SELECT $1::uuid, $2::text, $3::text, 'in_flight',
                   now() + make_interval(secs => $4::double precision)
              FROM (SELECT set_config('synchronous_commit', 'off', true)) AS no_flush_wait
            ON CONFLICT (user_id, key) DO UPDATE
               SET request_hash = EXCLUDED.request_hash, state = 'in_flight',
                   response_status = NULL, response_body = NULL,
                   created_at = now(), expires_at = EXCLUDED.expires_at
             WHERE idempotency_keys.expires_at <= now()
                OR (idempotency_keys.state = 'in_flight'
                    AND idempotency_keys.request_hash = EXCLUDED.request_hash
                    AND idempotency_keys.created_at
                        < now() - interval '{STALE_CLAIM_SECONDS} seconds')
            RETURNING true""",
        user_id,
        key,
        request_hash,
        float(keep_seconds),
    )
    if taken:
        return True, None
    row = await con.fetchrow(
        "SELECT request_hash, state, response_status, response_body FROM idempotency_keys "
        "WHERE user_id = $1 AND key = $2",
        user_id,
        key,
    )
    return False, row


async def record(con: Connection, user_id: uuid.UUID, key: str, status: int, body: bytes) -> None:
    """Store the response of a claimed key; run in the transaction that did the work."""
    await con.execute(
        "UPDATE idempotency_keys SET state = 'done', response_status = $3, response_body = $4 "
        "WHERE user_id = $1 AND key = $2",
        user_id,
        key,
        status,
        body,
    )


async def release(con: Connection, user_id: uuid.UUID, key: str, request_hash: str) -> None:
    """Give up an in-flight claim after a failed attempt, so that a retry can proceed."""
    await con.execute(
        "DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND state = 'in_flight' "
        "AND request_hash = $3",
        user_id,
        key,
        request_hash,
    )
