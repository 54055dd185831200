"""SQL for users."""

from __future__ import annotations

import datetime as dt
import uuid

from hub.db import Connection, Record, UniqueViolation

# ``tokens_after``: every token issued to the account before it is void (logout-all, a
# password change); null when none is.
COLUMNS = "id, email, name, role, password_hash, created_at, tokens_after"


class EmailTaken(Exception):
    pass


async def insert(con: Connection, email: str, name: str, password_hash: str, role: str) -> Record:
    try:
        row = await con.fetchrow(
            f"INSERT INTO users (email, name, password_hash, role) VALUES ($1, $2, $3, $4) "
            f"RETURNING {COLUMNS}",
            email,
            name,
            password_hash,
            role,
        )
    except UniqueViolation:
        raise EmailTaken(email) from None
    assert row is not None
    return row


async def by_email(con: Connection, email: str) -> Record | None:
    return await con.fetchrow(f"SELECT {COLUMNS} FROM users WHERE lower(email) = lower($1)", email)


async def by_id(con: Connection, user_id: uuid.UUID) -> Record | None:
    return await con.fetchrow(f"SELECT {COLUMNS} FROM users WHERE id = $1", user_id)


async def upsert_admin(con: Connection, email: str, name: str, password_hash: str) -> Record:
    row = await con.fetchrow(
        f"""INSERT INTO users (email, name, password_hash, role) VALUES ($1, $2, $3, 'admin')
            ON CONFLICT (lower(email)) DO UPDATE
               SET password_hash = EXCLUDED.password_hash, role = 'admin'
            RETURNING {COLUMNS}""",
        email,
        name,
        password_hash,
    )
    assert row is not None
    return row


async def set_role(con: Connection, user_id: uuid.UUID, role: str) -> Record | None:
    """Give the account ``role``; None when there is no such account."""
    return await con.fetchrow(
        f"UPDATE users SET role = $2 WHERE id = $1 RETURNING {COLUMNS}", user_id, role
    )


async def void_tokens(
    con: Connection, user_id: uuid.UUID, after: dt.datetime, password_hash: str | None = None
) -> Record | None:
    """Void every token issued to the account before ``after`` (never moving an earlier
    cutoff forward past a later one), with a new password hash when given. None when there
    is no such account."""
    return await con.fetchrow(
        f"""UPDATE users
               SET tokens_after = greatest(tokens_after, $2),
                   password_hash = coalesce($3, password_hash)
             WHERE id = $1
         RETURNING {COLUMNS}""",
        user_id,
        after,
        password_hash,
    )


async def standings(con: Connection, cutoffs_since: dt.datetime) -> list[Record]:
    """``id, role, tokens_after`` of every account that is not a plain user with every
    token good: each admin, and each account whose cutoff is later than ``cutoffs_since``
    (older cutoffs void only tokens that have expired anyway)."""
    return await con.fetch(
        "SELECT id, role, tokens_after FROM users WHERE role <> 'user' OR tokens_after > $1",
        cutoffs_since,
    )
