"""Bearer tokens: who an HS256 JWT speaks for, and the process's memory of verified ones,
revoked ones and of the accounts whose tokens no longer tell the whole truth.

Below ``hub.context`` on purpose: the hub holds a ``VerifiedTokens``, so this module may
import nothing that imports the hub. Issuing tokens, passwords and revocation (which
need PostgreSQL and Redis) stay in ``hub.auth``.

A token is refused when: it is not an HS256 JWT signed with the key (``alg=none``, another
algorithm, another key, a changed byte), a claim is missing or malformed, it has expired,
its ``iat`` lies in the future (beyond ``LEEWAY_SECONDS``), its ``jti`` was revoked (logout),
or it was issued before its account's cutoff (logout-all, password change). Its ``role``
claim is only what the role was when it was issued: ``Accounts`` gives the current one.
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
#: Clock difference tolerated between the process that issued a token and the one
#: checking it (``iat`` a little in the future, ``exp`` a little in the past).
LEEWAY_SECONDS = 5


class Role(enum.StrEnum):
    USER = "user"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: uuid.UUID
    role: Role
    jti: uuid.UUID
    expires_at: int
    issued_at: float = 0.0

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


def decode_token(secret: str, token: str) -> Principal:
    """Verify signature, algorithm (HS256 only: ``none`` and every other algorithm are
    refused), expiry and issue time; return who the token speaks for.

    Raises:
        Unauthorized: the token is malformed, forged, expired, issued in the future or
            lacks a claim.
    """
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["sub", "role", "iat", "exp", "jti"]},
            leeway=LEEWAY_SECONDS,
        )
        return Principal(
            user_id=uuid.UUID(claims["sub"]),
            role=Role(claims["role"]),
            jti=uuid.UUID(claims["jti"]),
            expires_at=int(claims["exp"]),
            issued_at=float(claims["iat"]),
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("The token has expired") from None
    except jwt.ImmatureSignatureError:
        raise Unauthorized("The token was issued in the future") from None
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


class _Echoes:
    """Publications this process made and waits to hear back from its own feed.

    Redis writes a publication to every subscriber in the same command, so once it is back
    here it has reached every other process's link too: a change that returns has been
    delivered everywhere."""

    def __init__(self) -> None:
        self._waiting: dict[uuid.UUID, asyncio.Future[None]] = {}

    def heard(self, key: uuid.UUID) -> None:
        echo = self._waiting.pop(key, None)
        if echo is not None and not echo.done():
            echo.set_result(None)

    async def announce(self, key: uuid.UUID, announce: Awaitable[None], within: float) -> None:
        """Run ``announce`` (a publication about ``key``) and wait, at most ``within``
        seconds, until ``heard(key)``."""
        echo = asyncio.get_running_loop().create_future()
        self._waiting[key] = echo
        try:
            await announce
            await asyncio.wait_for(asyncio.shield(echo), within)
        except TimeoutError:
            pass  # the link is slow or down (then no longer live): the others re-read
        finally:
            self._waiting.pop(key, None)


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
        self._echoes = _Echoes()

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
        self._echoes.heard(jti)

    async def await_echo(self, jti: uuid.UUID, announce: Awaitable[None], within: float) -> None:
        """Run ``announce`` (the publication of ``jti``) and wait, at most ``within``
        seconds, until this process's own feed hands it back: a revocation that returns
        has been delivered to every process."""
        if not self.live:
            await announce
            return
        await self._echoes.announce(jti, announce, within)

    def __len__(self) -> int:
        return len(self._until)

    def replace(self, revoked: dict[uuid.UUID, float]) -> None:
        """Start over from the complete set (read from PostgreSQL) and go live."""
        self._until = dict(revoked)
        self.live = True


@dataclass(frozen=True, slots=True)
class Standing:
    """What an account's tokens cannot tell: its current role, and the moment (epoch
    seconds) before which every token issued to it is void — set by ``logout-all`` and a
    password change; None when no such moment."""

    role: Role
    tokens_after: float | None = None

    def voids(self, principal: Principal) -> bool:
        """True if ``principal``'s token was issued before the account's cutoff."""
        return self.tokens_after is not None and principal.issued_at < self.tokens_after


#: The standing of every account ``Accounts`` does not list.
PLAIN = Standing(Role.USER)


class Accounts:
    """The standing of every account that is not ``PLAIN``: each admin, and each account
    with a cutoff younger than the longest token lifetime. Any other account is a user
    whose every unexpired, unrevoked token is good.

    Kept current across processes by ``hub.revocations.RevocationFeed`` exactly as
    ``RevokedTokens`` is (the same channel, the complete set read from PostgreSQL whenever
    the link comes up), so reading the current role on every request costs no round trip
    — a role change or a cutoff takes effect on the account's next request, in every
    process. While the feed is not live ``standing`` answers None and the caller asks
    PostgreSQL.
    """

    def __init__(self) -> None:
        self.live = False
        self._standing: dict[uuid.UUID, Standing] = {}
        self._echoes = _Echoes()

    def standing(self, user_id: uuid.UUID) -> Standing | None:
        """The account's standing, or None when this process cannot tell."""
        if not self.live:
            return None
        return self._standing.get(user_id, PLAIN)

    def set(self, user_id: uuid.UUID, standing: Standing) -> None:
        if standing == PLAIN:
            self._standing.pop(user_id, None)
        else:
            self._standing[user_id] = standing
        self._echoes.heard(user_id)

    async def await_echo(
        self, user_id: uuid.UUID, announce: Awaitable[None], within: float
    ) -> None:
        """Run ``announce`` (the publication of ``user_id``'s standing) and wait, at most
        ``within`` seconds, until this process's own feed hands it back: a change that
        returns has been delivered to every process."""
        if not self.live:
            await announce
            return
        await self._echoes.announce(user_id, announce, within)

    def __len__(self) -> int:
        return len(self._standing)

    def replace(self, standings: dict[uuid.UUID, Standing]) -> None:
        """Start over from the complete set (read from PostgreSQL) and go live."""
        self._standing = {u: s for u, s in standings.items() if s != PLAIN}
        self.live = True
