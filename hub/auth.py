"""Authentication: Argon2id password hashes, HS256 JWT bearer tokens, revocation.

Passwords are hashed with Argon2id by argon2-cffi's ``PasswordHasher`` at its defaults
(RFC 9106's low-memory profile): memory 64 MiB (``m=65536``), 3 passes (``t=3``), 4 lanes
(``p=4``), a 16-byte random salt and a 32-byte hash; about 50 ms a hash on this machine,
run off the event loop. A hash made with older parameters still verifies.

A request's principal is its token's, checked in this order: signature, algorithm and claims
(``hub.tokens``), the token's own revocation (logout), then the account's standing: a token
issued before the account's cutoff (logout-all, password change) is void, and the role is
the account's current one, not the token's claim. Both come from in-process sets kept current
by ``hub.revocations`` — no round trip while the feed is live.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import time
import uuid

import jwt
import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from starlette.requests import HTTPConnection

from hub import revocations
from hub import store as store_mod
from hub.context import Hub
from hub.db import tokens as tokens_db
from hub.db import users as users_db
from hub.errors import Unauthorized
from hub.tokens import ALGORITHM, PLAIN, Principal, Role, Standing

log = structlog.get_logger(__name__)

# How long a revocation waits for its own publication to come back (see RevokedTokens).
ECHO_WAIT_SECONDS = 0.25


def hash_password(hasher: PasswordHasher, password: str) -> str:
    return hasher.hash(password)


def verify_password(hasher: PasswordHasher, password_hash: str, password: str) -> bool:
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def issue_token(
    secret: str,
    user_id: uuid.UUID,
    role: Role,
    ttl_seconds: int,
    not_before: float | None = None,
) -> str:
    """A signed token for ``user_id``. ``iat`` has millisecond precision (a NumericDate may
    be fractional), so that a cutoff voids the tokens issued before it and not those of a
    sign-in a moment later; ``not_before`` (the account's cutoff) is never later than it."""
    now = math.floor(time.time() * 1000) / 1000
    if not_before is not None:
        now = max(now, math.ceil(not_before * 1000) / 1000)
    claims = {
        "sub": str(user_id),
        "role": role.value,
        "iat": now,
        "exp": int(now) + ttl_seconds,
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def bearer_token(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Use the Bearer scheme: Authorization: Bearer <token>")
    return token.strip()


async def authenticate(hub: Hub, conn: HTTPConnection) -> Principal | None:
    """The caller's principal, or None when no token was sent.

    Raises:
        Unauthorized: a token was sent but is invalid, expired or revoked.
    """
    token = bearer_token(conn)
    if token is None:
        return None
    return await principal_from_token(hub, token)


async def principal_from_token(hub: Hub, token: str) -> Principal:
    """Who ``token`` speaks for, with the account's current role.

    Raises:
        Unauthorized: the token is invalid, expired, revoked, or issued before its
            account's cutoff.
    """
    assert hub.settings.secret_key is not None
    principal = hub.tokens.principal(hub.settings.secret_key, token)
    if await is_revoked(hub, principal.jti):
        raise Unauthorized("The token has been revoked")
    standing = hub.accounts.standing(principal.user_id)
    if standing is None:  # the feed is not live: ask PostgreSQL
        standing = await _standing_from_db(hub, principal.user_id)
    if standing.voids(principal):
        raise Unauthorized("The token has been revoked")
    if standing.role is not principal.role:
        return dataclasses.replace(principal, role=standing.role)
    return principal


async def _standing_from_db(hub: Hub, user_id: uuid.UUID) -> Standing:
    async with hub.db.connection() as con:
        row = await users_db.by_id(con, user_id)
    if row is None:
        return PLAIN
    return revocations.standing_of(row["role"], row["tokens_after"])


async def publish_standing(hub: Hub, user_id: uuid.UUID, standing: Standing) -> None:
    """Make ``standing`` (just written to PostgreSQL) the one every serving process uses
    from the account's next request on: it returns once the publication has gone out."""
    await hub.accounts.await_echo(
        user_id,
        revocations.announce_standing(hub.store, user_id, standing),
        within=ECHO_WAIT_SECONDS,
    )
    hub.accounts.set(user_id, standing)


async def is_revoked(hub: Hub, jti: uuid.UUID) -> bool:
    """From the process's live revocation set when it has one (no round trip), else from
    Redis, else (Redis down) from PostgreSQL, which keeps every revocation."""
    known = hub.revoked.check(jti)
    if known is not None:
        return known
    try:
        return bool(await hub.store.client.exists(hub.store.keys.global_(f"revoked:{jti}")))
    except store_mod.UNAVAILABLE:
        # Redis is down: PostgreSQL keeps every revocation too.
        async with hub.db.connection() as con:
            return await tokens_db.is_revoked(con, jti)


async def revoke(hub: Hub, principal: Principal) -> None:
    """Revoke a token until it would have expired: in PostgreSQL (durable) and Redis (fast)."""
    expires = dt.datetime.fromtimestamp(principal.expires_at, dt.UTC)
    async with hub.db.connection() as con:
        await tokens_db.revoke(con, principal.jti, expires)
    ttl = max(1, principal.expires_at - int(time.time()))
    await hub.store.client.set(hub.store.keys.global_(f"revoked:{principal.jti}"), b"1", ex=ttl)
    # Every serving process adds it to its live set; the call returns once it has gone out.
    await hub.revoked.await_echo(
        principal.jti,
        revocations.announce(hub.store, principal.jti, principal.expires_at),
        within=ECHO_WAIT_SECONDS,
    )
    hub.revoked.add(principal.jti, principal.expires_at)
