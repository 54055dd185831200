"""SQL for users."""

from __future__ import annotations

import uuid

from hub.db import Connection, Record, UniqueViolation

COLUMNS = "id, email, name, role, password_hash, created_at"


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
