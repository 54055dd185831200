"""Authentication: Argon2id password hashes, HS256 JWT bearer tokens, revocation on logout."""

from __future__ import annotations

import datetime as dt
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
from hub.errors import Unauthorized
from hub.tokens import ALGORITHM, Principal, Role

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


def issue_token(secret: str, user_id: uuid.UUID, role: Role, ttl_seconds: int) -> str:
    now = int(time.time())
    claims = {
        "sub": str(user_id),
        "role": role.value,
        "iat": now,
        "exp": now + ttl_seconds,
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
    assert hub.settings.secret_key is not None
    principal = hub.tokens.principal(hub.settings.secret_key, token)
    if await is_revoked(hub, principal.jti):
        raise Unauthorized("The token has been revoked")
    return principal


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
