"""Authentication: Argon2id password hashes, HS256 JWT bearer tokens, revocation on logout."""

from __future__ import annotations

import datetime as dt
import enum
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass

import jwt
import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from starlette.requests import HTTPConnection

from hub import store as store_mod
from hub.context import Hub
from hub.db import tokens as tokens_db
from hub.errors import Unauthorized

log = structlog.get_logger(__name__)

ALGORITHM = "HS256"


class Role(enum.StrEnum):
    USER = "user"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: uuid.UUID
    role: Role
    jti: uuid.UUID
    expires_at: int

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


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


def decode_token(secret: str, token: str) -> Principal:
    """Verify signature, algorithm and expiry; return who the token speaks for.

    Raises:
        Unauthorized: the token is malformed, forged, expired or lacks a claim.
    """
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["sub", "role", "iat", "exp", "jti"]},
        )
        return Principal(
            user_id=uuid.UUID(claims["sub"]),
            role=Role(claims["role"]),
            jti=uuid.UUID(claims["jti"]),
            expires_at=int(claims["exp"]),
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("The token has expired") from None
    except (jwt.InvalidTokenError, ValueError, TypeError):
        raise Unauthorized("The token is not valid") from None


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


class VerifiedTokens:
    """Tokens whose signature this process has checked, by their exact text (bounded, least
    recently used out). A buyer in a surge sends the same token with every click; checking
    its HMAC and parsing its claims once is enough. Expiry and revocation are still checked
    on every request."""

    def __init__(self, capacity: int = 20_000) -> None:
        self.capacity = capacity
        self._known: OrderedDict[str, Principal] = OrderedDict()

    def principal(self, secret: str, token: str) -> Principal:
        known = self._known.get(token)
        if known is not None:
            if known.expires_at <= time.time():
                del self._known[token]
                raise Unauthorized("The token has expired")
            self._known.move_to_end(token)
            return known
        principal = decode_token(secret, token)
        self._known[token] = principal
        if len(self._known) > self.capacity:
            self._known.popitem(last=False)
        return principal


async def principal_from_token(hub: Hub, token: str) -> Principal:
    assert hub.settings.secret_key is not None
    verified: VerifiedTokens = hub.parts.setdefault("verified_tokens", VerifiedTokens())
    principal = verified.principal(hub.settings.secret_key, token)
    if await is_revoked(hub, principal.jti):
        raise Unauthorized("The token has been revoked")
    return principal


async def is_revoked(hub: Hub, jti: uuid.UUID) -> bool:
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
