"""Rate limits: moving windows counted in Redis, shared by every hub process.

A limit allows ``count`` calls per ``seconds`` to one caller (a user, an address, or an
account named by its email) in ANY span of ``seconds`` — a moving window, not a fixed one:
with fixed windows a burst at the end of one window and another at the start of the next
got twice the limit through. The algorithm is the ``limits`` library's moving window
(``MovingWindowRateLimiter`` over its Redis storage): each caller's key is a list of the
times of its last ``count`` accepted calls, and one Lua script (one round trip) accepts a
call only if the oldest of them is older than ``seconds``, then records it. Every process
uses the same keys on the same Redis, so a limit holds however many workers serve; the
times are the serving processes' clocks (the same clock on one host; keep hosts in sync).
A refusal costs a second round trip, to read when the oldest call leaves the window, which
is ``Retry-After``.

``EVENTLY_RATE_LIMITS=off`` (load tests, benchmarks) turns every limit off.

What is limited (the constants below): sign-in per address (every attempt) and per account
(failures, checked before the password is), registration per address, holds, bookings,
waitlist joins and queue joins per user, WebSocket connects per address (the waiting room's
queue joins are also limited per address, where that route is declared,
``hub.api.waiting_room``).
"""

from __future__ import annotations

import enum
import math
import time
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from hub.errors import RateLimited
from hub.store import Store


class By(enum.Enum):
    USER = "user"
    IP = "ip"
    ACCOUNT = "account"  # the email a sign-in names, whether or not it exists


@dataclass(frozen=True, slots=True)
class Limit:
    name: str
    count: int
    seconds: int
    by: By = By.USER

    @property
    def item(self) -> RateLimitItemPerSecond:
        return RateLimitItemPerSecond(self.count, self.seconds, namespace=self.name)


class RateLimits:
    """The limits of one hub process, counted in its Redis (``store``) under its key prefix.

    With ``enabled`` false every call is let through without touching Redis.
    """

    def __init__(self, store: Store, *, enabled: bool) -> None:
        self.enabled = enabled
        # The hub's own pool (bounded, blocking): the library's typing knows only scalars.
        shared: dict[str, Any] = {"connection_pool": store.client.connection_pool}
        storage = RedisStorage(
            "async+redis://",
            implementation="redispy",
            key_prefix=store.keys.global_("rl"),
            **shared,
        )
        self._limiter = MovingWindowRateLimiter(storage)

    async def hit(self, limit: Limit, caller: str) -> None:
        """Count one call by ``caller`` against ``limit`` (one round trip).

        Raises:
            RateLimited: ``limit`` calls were accepted within the last ``seconds``; the call
                is not counted, and ``Retry-After`` says when the oldest leaves the window.
        """
        if self.enabled and not await self._limiter.hit(limit.item, caller):
            raise await self._refusal(limit, caller)

    async def ensure_left(self, limit: Limit, caller: str) -> None:
        """Refuse now, without counting anything, if ``caller`` has used up ``limit`` (the
        check before a call that counts only when it fails, such as a sign-in).

        Raises:
            RateLimited: as ``hit``.
        """
        if self.enabled and not await self._limiter.test(limit.item, caller):
            raise await self._refusal(limit, caller)

    async def _refusal(self, limit: Limit, caller: str) -> RateLimited:
        stats = await self._limiter.get_window_stats(limit.item, caller)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        return RateLimited(
            retry_after,
            f"At most {limit.count} {limit.name} requests per {_span(limit.seconds)}; "
            f"try again in {retry_after} s",
        )


def _span(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


SIGN_IN = Limit("sign-in", 20, 60, By.IP)
SIGN_IN_FAILURES = Limit("failed sign-in", 10, 15 * 60, By.ACCOUNT)
REGISTRATIONS = Limit("registration", 20, 3600, By.IP)
HOLDS = Limit("hold", 30, 10)
BOOKINGS = Limit("booking", 20, 10)
WAITLIST = Limit("waitlist", 10, 10)
# A person needs one place per event (joining again answers the same place): a handful per
# 10 s, from however many addresses the user comes.
QUEUE_JOINS = Limit("queue join", 5, 10)
WS_CONNECTS = Limit("websocket connect", 60, 10, By.IP)
