"""Accounts: register, log in, log out (this token, or every token), change the password,
change a role, who am I, and the bootstrap admin.

A role change, a logout-all and a password change are written to PostgreSQL and then
published to every serving process (``auth.publish_standing``) before they return, so they
take effect on the account's next request wherever it lands.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from typing import Any

import structlog

from hub import auth, ratelimit, revocations
from hub.auth import Principal, Role
from hub.context import Hub
from hub.db import users
from hub.errors import Conflict, NotFound, Unauthorized, ValidationError

log = structlog.get_logger(__name__)


def user_view(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "email": row["email"], "name": row["name"], "role": row["role"]}


def _session(hub: Hub, row: Any) -> dict[str, Any]:
    assert hub.settings.secret_key is not None
    ttl = hub.settings.token_ttl_seconds
    after = row["tokens_after"]
    token = auth.issue_token(
        hub.settings.secret_key,
        row["id"],
        Role(row["role"]),
        ttl,
        not_before=None if after is None else after.timestamp(),
    )
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
        RateLimited: the account (the email, known or not) had ``SIGN_IN_FAILURES``
            failed sign-ins within its window; checked before the password is.
        Unauthorized: unknown email or wrong password (the same answer for both); counted
            as a failure of the account.
    """
    await hub.limits.ensure_left(ratelimit.SIGN_IN_FAILURES, email)
    async with hub.db.connection() as con:
        row = await users.by_email(con, email)
    if row is None:
        # Spend the same time as a real check so the answer does not reveal the email exists.
        await asyncio.to_thread(auth.verify_password, hub.passwords, _DUMMY_HASH, password)
        await hub.limits.hit(ratelimit.SIGN_IN_FAILURES, email)
        raise Unauthorized("Wrong email or password")
    ok = await asyncio.to_thread(
        auth.verify_password, hub.passwords, row["password_hash"], password
    )
    if not ok:
        await hub.limits.hit(ratelimit.SIGN_IN_FAILURES, email)
        raise Unauthorized("Wrong email or password")
    return _session(hub, row)


async def logout(hub: Hub, principal: Principal) -> None:
    """Revoke the token the caller used."""
    await auth.revoke(hub, principal)
    log.info("user_logged_out", user_id=str(principal.user_id))


async def logout_all(hub: Hub, principal: Principal) -> None:
    """Void every token issued to the caller until now, in every process.

    Raises:
        NotFound: the account no longer exists.
    """
    await _void_tokens(hub, principal.user_id)
    log.info("user_logged_out_everywhere", user_id=str(principal.user_id))


async def change_password(
    hub: Hub, principal: Principal, current_password: str, new_password: str
) -> None:
    """Replace the caller's password and void every token issued to it until now (the one
    used for this call too): other sessions must sign in again with the new password.

    Raises:
        RateLimited: the account had too many failed sign-ins (a wrong current password
            counts as one).
        ValidationError: ``current_password`` is wrong.
        NotFound: the account no longer exists.
    """
    async with hub.db.connection() as con:
        row = await users.by_id(con, principal.user_id)
    if row is None:
        raise NotFound("The account no longer exists")
    await hub.limits.ensure_left(ratelimit.SIGN_IN_FAILURES, row["email"])
    ok = await asyncio.to_thread(
        auth.verify_password, hub.passwords, row["password_hash"], current_password
    )
    if not ok:
        await hub.limits.hit(ratelimit.SIGN_IN_FAILURES, row["email"])
        raise ValidationError.field("current_password", "is not the account's password")
    password_hash = await asyncio.to_thread(auth.hash_password, hub.passwords, new_password)
    await _void_tokens(hub, principal.user_id, password_hash)
    log.info("password_changed", user_id=str(principal.user_id))


async def _void_tokens(hub: Hub, user_id: uuid.UUID, password_hash: str | None = None) -> None:
    after = dt.datetime.fromtimestamp(time.time(), dt.UTC)
    async with hub.db.connection() as con:
        row = await users.void_tokens(con, user_id, after, password_hash)
    if row is None:
        raise NotFound("The account no longer exists")
    await _publish(hub, row)


async def set_role(hub: Hub, user_id: uuid.UUID, role: Role) -> dict[str, Any]:
    """Give an account ``role``; it applies from the account's next request on, in every
    process (tokens keep their ``role`` claim, which is no longer trusted).

    Returns:
        The account ``{id, email, name, role}``.

    Raises:
        NotFound: no such account.
    """
    async with hub.db.connection() as con:
        row = await users.set_role(con, user_id, role.value)
    if row is None:
        raise NotFound(f"No such user: {user_id}")
    await _publish(hub, row)
    log.info("user_role_set", user_id=str(user_id), role=role.value)
    return user_view(row)


async def _publish(hub: Hub, row: Any) -> None:
    standing = revocations.standing_of(row["role"], row["tokens_after"])
    await auth.publish_standing(hub, row["id"], standing)


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
    await _publish(hub, row)
    log.info("admin_ensured", user_id=str(row["id"]))


async def ensure_bootstrap_admin(hub: Hub) -> None:
    settings = hub.settings
    if settings.admin_email and settings.admin_password:
        await ensure_admin(hub, settings.admin_email, settings.admin_password)


_DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$"
    "2b3XNrFBW3VkxoHkCszdUqB2NQxb4YzDCsWCYbNZ2oE"
)
