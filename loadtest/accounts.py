"""Buyer accounts for a surge, made fast when the load test owns the hub's secrets.

Signing up through the API hashes each password with Argon2id (about 50 ms of server CPU
each: three minutes for 1,000 buyers on this machine) — a cost of the sign-up path, not
of the booking path a surge measures. When the run knows the hub's database and signing
key (it started the hub, or was given both), buyers are inserted in one statement sharing
one real Argon2id hash, and their tokens are issued with the hub's own code, exactly as a
login would. Otherwise buyers sign up over HTTP (``buyers.Recorder._register``).
"""

from __future__ import annotations

import asyncpg
from argon2 import PasswordHasher

from hub.auth import Role, hash_password, issue_token

TOKEN_TTL_SECONDS = 6 * 3600


async def seed_buyers(
    database_url: str, secret: str, emails: list[str], password: str
) -> list[str]:
    """Create (or find) the accounts and return one bearer token per email, in order."""
    password_hash = hash_password(PasswordHasher(), password)
    con = await asyncpg.connect(database_url)
    try:
        rows = await con.fetch(
            """INSERT INTO users (email, name, password_hash, role)
               SELECT e, 'Surge buyer', $2, 'user' FROM unnest($1::text[]) AS e
               ON CONFLICT (lower(email)) DO UPDATE SET password_hash = EXCLUDED.password_hash
               RETURNING id, email""",
            emails,
            password_hash,
        )
    finally:
        await con.close()
    by_email = {row["email"]: row["id"] for row in rows}
    return [issue_token(secret, by_email[e], Role.USER, TOKEN_TTL_SECONDS) for e in emails]
