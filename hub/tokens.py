"""Bearer tokens: who an HS256 JWT speaks for, and the process's memory of verified ones.

Below ``hub.context`` on purpose: the hub holds a ``VerifiedTokens``, so this module may
import nothing that imports the hub. Issuing tokens, passwords and revocation (which
need PostgreSQL and Redis) stay in ``hub.auth``.
"""

from __future__ import annotations

import enum
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass

import jwt

from hub.errors import Unauthorized

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


class VerifiedTokens:
    """Tokens whose signature this process has checked, by their exact text (bounded, least
    recently used out). A buyer in a surge sends the same token with every click; checking
    its HMAC and parsing its claims once is enough. Expiry is still checked on every call
    (and revocation by the caller, on every request)."""

    def __init__(self, capacity: int = 20_000) -> None:
        self.capacity = capacity
        self._known: OrderedDict[str, Principal] = OrderedDict()

    def principal(self, secret: str, token: str) -> Principal:
        """Who ``token`` speaks for.

        Raises:
            Unauthorized: the token is malformed, forged or expired.
        """
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
