"""Rate limits: fixed windows counted in Redis, shared by every hub process.

A limit allows ``count`` calls per ``seconds`` to one caller (a user, or an IP address for
calls made before signing in). The counter key names the window, so it expires by itself.
``EVENTLY_RATE_LIMITS=off`` (load tests, benchmarks) turns every limit off.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass

from hub.errors import RateLimited
from hub.store import Store


class By(enum.Enum):
    USER = "user"
    IP = "ip"


@dataclass(frozen=True, slots=True)
class Limit:
    name: str
    count: int
    seconds: int
    by: By = By.USER


async def check(store: Store, limit: Limit, caller: str, now: float | None = None) -> None:
    """Count one call by ``caller`` against ``limit``.

    Raises:
        RateLimited: over the limit; ``Retry-After`` says when the window ends.
    """
    moment = time.time() if now is None else now
    window = int(moment // limit.seconds)
    key = store.keys.global_(f"rl:{limit.name}:{caller}:{window}")
    async with store.client.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, limit.seconds + 1)
        used, _ = await pipe.execute()
    if int(used) > limit.count:
        retry_after = max(1, int((window + 1) * limit.seconds - moment) + 1)
        raise RateLimited(
            retry_after,
            f"At most {limit.count} {limit.name} requests per {limit.seconds} s; "
            f"try again in {retry_after} s",
        )


AUTH = Limit("sign-in", 20, 60, By.IP)
HOLDS = Limit("hold", 30, 10)
BOOKINGS = Limit("booking", 20, 10)
WAITLIST = Limit("waitlist", 10, 10)
