"""Accounts: register, log in, log out, who am I, and the bootstrap admin."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import structlog

from hub import auth
from hub.auth import Principal, Role
from hub.context import Hub
from hub.db import users
from hub.errors import Conflict, NotFound, Unauthorized

log = structlog.get_logger(__name__)


def user_view(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "email": row["email"], "name": row["name"], "role": row["role"]}


def _session(hub: Hub, row: Any) -> dict[str, Any]:
    assert hub.settings.secret_key is not None
    ttl = hub.settings.token_ttl_seconds
    token = auth.issue_token(hub.settings.secret_key, row["id"], Role(row["role"]), ttl)
    return {
        "access_token": token,
        "token_type": "bearer",
        "expires_in": ttl,
        "user": user_view(row),
    }


async def register(hub: Hub, email: str, password: str, name: str) -> dict[str, Any]:
    """Create a user account and return a session for it.

    Raises:
        Conflict: the email is already registered.
    """
    # Hashing is deliberately slow; keep it off the event loop.
    password_hash = await asyncio.to_thread(auth.hash_password, hub.passwords, password)
    try:
        async with hub.db.connection() as con:
            row = await users.insert(con, email, name, password_hash, Role.USER.value)
    except users.EmailTaken:
        raise Conflict("That email is already registered", field="email") from None
    log.info("user_registered", user_id=str(row["id"]))
    return _session(hub, row)


async def login(hub: Hub, email: str, password: str) -> dict[str, Any]:
    """Check the credentials and return a session.

    Raises:
        Unauthorized: unknown email or wrong password (the same answer for both).
    """
    async with hub.db.connection() as con:
        row = await users.by_email(con, email)
    if row is None:
        # Spend the same time as a real check so the answer does not reveal the email exists.
        await asyncio.to_thread(auth.verify_password, hub.passwords, _DUMMY_HASH, password)
        raise Unauthorized("Wrong email or password")
    ok = await asyncio.to_thread(
        auth.verify_password, hub.passwords, row["password_hash"], password
    )
    if not ok:
        raise Unauthorized("Wrong email or password")
    return _session(hub, row)


async def logout(hub: Hub, principal: Principal) -> None:
    await auth.revoke(hub, principal)
    log.info("user_logged_out", user_id=str(principal.user_id))


async def me(hub: Hub, user_id: uuid.UUID) -> dict[str, Any]:
    async with hub.db.connection() as con:
        row = await users.by_id(con, user_id)
    if row is None:
        raise NotFound("The account no longer exists")
    return user_view(row)


async def ensure_admin(hub: Hub, email: str, password: str, name: str = "Administrator") -> None:
    """Create the admin account, or make the existing account an admin with this password."""
    password_hash = await asyncio.to_thread(auth.hash_password, hub.passwords, password)
    async with hub.db.connection() as con:
        row = await users.upsert_admin(con, email, name, password_hash)
    log.info("admin_ensured", user_id=str(row["id"]))


async def ensure_bootstrap_admin(hub: Hub) -> None:
    settings = hub.settings
    if settings.admin_email and settings.admin_password:
        await ensure_admin(hub, settings.admin_email, settings.admin_password)


_DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$"
    "2b3XNrFBW3VkxoHkCszdUqB2NQxb4YzDCsWCYbNZ2oE"
)
