"""Bearer tokens: who an HS256 JWT speaks for, and the process's memory of verified ones.

Below ``hub.context`` on purpose: the hub holds a ``VerifiedTokens``, so this module may
import nothing that imports the hub. Issuing tokens, passwords and revocation (which
need PostgreSQL and Redis) stay in ``hub.auth``.
"""

from __future__ import annotations

import asyncio
import enum
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable
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


class RevokedTokens:
    """The revoked token ids this process knows of, each until its token would expire.

    Kept current across processes by ``hub.revocations.RevocationFeed`` (a pub/sub channel,
    reloaded from PostgreSQL whenever the link comes up), so checking a token costs no round
    trip. While the feed is not live (not started, or its link is down) ``check`` answers
    None and the caller asks Redis or PostgreSQL instead.
    """

    def __init__(self) -> None:
        self.live = False
        self._until: dict[uuid.UUID, float] = {}
        self._echo: dict[uuid.UUID, asyncio.Future[None]] = {}

    def check(self, jti: uuid.UUID, now: float | None = None) -> bool | None:
        """True if revoked, False if not, None when this process cannot tell."""
        if not self.live:
            return None
        until = self._until.get(jti)
        if until is None:
            return False
        if until <= (now if now is not None else time.time()):
            del self._until[jti]  # its token has expired anyway
            return False
        return True

    def add(self, jti: uuid.UUID, until: float) -> None:
        self._until[jti] = until
        echo = self._echo.pop(jti, None)
        if echo is not None and not echo.done():
            echo.set_result(None)

    async def await_echo(self, jti: uuid.UUID, announce: Awaitable[None], within: float) -> None:
        """Run ``announce`` (the publication of ``jti``) and wait, at most ``within``
        seconds, until this process's own feed hands it back. Redis writes a publication to
        every subscriber in the same command, so once it is back here it has reached every
        other process's link too: a revocation that returns has been delivered everywhere.
        """
        if not self.live:
            await announce
            return
        echo = asyncio.get_running_loop().create_future()
        self._echo[jti] = echo
        try:
            await announce
            await asyncio.wait_for(asyncio.shield(echo), within)
        except TimeoutError:
            pass  # the link is slow or down (then no longer live): the others re-read
        finally:
            self._echo.pop(jti, None)

    def __len__(self) -> int:
        return len(self._until)

    def replace(self, revoked: dict[uuid.UUID, float]) -> None:
        """Start over from the complete set (read from PostgreSQL) and go live."""
        self._until = dict(revoked)
        self.live = True
