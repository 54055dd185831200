"""Leader election over a Redis lease, and the loops only the leader runs.

One key holds the leader's token with a TTL (the lease). Every process tries to take it
with ``SET NX PX``; the holder renews it every third of the lease with a compare-and-
pexpire script. A renewal that fails, or that cannot reach Redis before the lease would
run out, means leadership is lost: the leader loops are cancelled at once, before another
process could have taken over. A dead leader's lease simply runs out, so another process
takes over within one lease TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import structlog

from hub import metrics
from hub.context import Hub
from hub.store import UNAVAILABLE
from hub.tasks import background

log = structlog.get_logger(__name__)

# A leader loop runs until cancelled. It should catch its own errors per iteration.
LeaderLoop = Callable[[Hub], Awaitable[None]]

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_RESIGN = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Leadership:
    """Campaigns for the lease and runs ``loops`` while this process holds it."""

    def __init__(self, hub: Hub, loops: Sequence[LeaderLoop]) -> None:
        self.hub = hub
        self.loops = loops
        self.token = uuid.uuid4().hex
        self.key = hub.store.keys.global_("leader")
        self.lease_ms = int(hub.settings.leader_lease_seconds * 1000)
        self.is_leader = False
        self._renew = hub.store.client.register_script(_RENEW)
        self._resign = hub.store.client.register_script(_RESIGN)
        self._tasks: list[asyncio.Task[None]] = []

    async def run(self) -> None:
        """Campaign forever: take the lease when free, renew while held."""
        interval = self.lease_ms / 3000
        held_until = 0.0
        while True:
            try:
                if self.is_leader:
                    renewed = await self._renew(keys=[self.key], args=[self.token, self.lease_ms])
                    if renewed:
                        held_until = time.monotonic() + self.lease_ms / 1000
                    else:
                        self._step_down("lease_taken")
                else:
                    acquired = await self.hub.store.client.set(
                        self.key, self.token, nx=True, px=self.lease_ms
                    )
                    if acquired:
                        held_until = time.monotonic() + self.lease_ms / 1000
                        self._step_up()
            except UNAVAILABLE as exc:
                log.warning("leader_redis_unreachable", error=type(exc).__name__)
            # Give up before the lease could expire elsewhere: never two leaders at once.
            if self.is_leader and time.monotonic() > held_until - interval:
                self._step_down("renewal_overdue")
            await asyncio.sleep(interval)

    def _step_up(self) -> None:
        self.is_leader = True
        metrics.IS_LEADER.set(1)
        log.info("leadership_acquired")
        self._tasks = [
            asyncio.create_task(_guarded(loop, self.hub), name=f"leader:{loop.__name__}")
            for loop in self.loops
        ]

    def _step_down(self, reason: str) -> None:
        self.is_leader = False
        metrics.IS_LEADER.set(0)
        for task in self._tasks:
            task.cancel()
        self._tasks = []
        log.warning("leadership_lost", reason=reason)

    async def resign(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.is_leader:
            self.is_leader = False
            metrics.IS_LEADER.set(0)
            with contextlib.suppress(*UNAVAILABLE):
                await self._resign(keys=[self.key], args=[self.token])
            log.info("leadership_resigned")


async def _guarded(loop: LeaderLoop, hub: Hub) -> None:
    """Run a loop; if it crashes, log and restart it after a pause."""
    while True:
        try:
            await loop(hub)
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("leader_loop_crashed", loop=loop.__name__)
            await asyncio.sleep(1.0)


def leadership_part(
    loops: Sequence[LeaderLoop],
) -> Callable[[Hub], contextlib.AbstractAsyncContextManager[None]]:
    """A lifespan part that campaigns for leadership and runs ``loops`` while leader."""

    @contextlib.asynccontextmanager
    async def part(hub: Hub) -> AsyncIterator[None]:
        leadership = Leadership(hub, loops)
        hub.parts["leadership"] = leadership
        try:
            async with background(leadership.run(), "leader:campaign"):
                yield
        finally:
            await leadership.resign()

    return part
