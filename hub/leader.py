"""Leader election over a Redis lease, and the loops only the leader runs.

One key holds the leader's token with a TTL (the lease). Every process tries to take it
with ``SET NX PX``; the holder renews it every third of the lease with a compare-and-
pexpire script. A renewal that fails, or that cannot reach Redis before the lease would
run out, means leadership is lost: the leader loops are cancelled at once, before another
process could have taken over. A dead leader's lease simply runs out, so another process
takes over within one lease TTL.

Fencing. Stepping down when a renewal is overdue is not enough on its own: a leader paused
for longer than its lease (a stop signal, swapping, a long collection) wakes up in the middle
of a write it decided on while it still led. So winning the lease also issues a *fencing
token* in the same script (``lease_acquire.lua``: the last token plus one, never below the
Redis clock in ms, so it also grows across a Redis restarted empty), and each leader loop
runs with that `Fence` (`current_fence`), however long it outlives the lease. The writes
that a double run would repeat check it where they happen, atomically with the write:

- PostgreSQL (the pricing tick's prices, the rollup step): the transaction first takes the
  lease's ``leader_fence`` row with the token (``hub.db.fence.hold``) and is refused
  (`StaleLeader`) once a newer leader has written; a newer leader's first write waits for a
  late one's open transaction, so they never interleave.
- Redis (the waiting room's admissions): the admitting script compares the token with the
  last one Redis issued and admits no one for a superseded leader (``queue_admit.lua``).

Hold expiry needs no token: the release script frees only a hold that is due by Redis's own
clock and is not being confirmed, so a late or second sweep finds nothing left to do; a
stuck confirmation is settled from PostgreSQL's record under the hold's advisory lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog

from hub import metrics
from hub.store import UNAVAILABLE, Keys, Store
from hub.tasks import background

log = structlog.get_logger(__name__)

# A leader loop runs until cancelled. It should catch its own errors per iteration.
Loop = Callable[[], Awaitable[None]]

#: Stopping the leader loops: how often a loop that ignored its cancellation is cancelled
#: again, and how long before a shutdown goes on without it.
RECANCEL_SECONDS = 0.5
STOP_TIMEOUT_SECONDS = 10.0

_LUA = Path(__file__).with_name("lua")
# Compare-and-pexpire and compare-and-delete of the lease, read once at import.
_ACQUIRE = (_LUA / "lease_acquire.lua").read_text()
_RENEW = (_LUA / "lease_renew.lua").read_text()
_RESIGN = (_LUA / "lease_resign.lua").read_text()


@dataclass(frozen=True, slots=True)
class Fence:
    """A leader's fencing token, and the lease it was issued with (the Redis key: hubs on
    another key prefix lead apart, with fences of their own)."""

    lease: str
    token: int


#: The fence of the lease a leader loop was started under, set in each loop's task (a loop
#: that outlives its lease still carries its old token).
_FENCE: contextvars.ContextVar[Fence | None] = contextvars.ContextVar("leader_fence", default=None)


def fence_key(keys: Keys) -> str:
    """The Redis key of the last fencing token issued (compared by leader-written scripts)."""
    return keys.global_("leader:fence")


def current_fence() -> Fence | None:
    """The fence of the leader loop running this code; None outside leader loops."""
    return _FENCE.get()


class StaleLeader(Exception):
    """A write of a leader whose fencing token a newer leader has superseded."""

    def __init__(self, token: int, current: int | None) -> None:
        super().__init__(token, current)  # the args rebuild it when unpickled (hub.offload)
        self.token = token
        self.current = current

    def __str__(self) -> str:
        return f"fencing token {self.token} is stale (current: {self.current})"


class Leadership:
    """Campaigns for the lease and runs its loops (by name) while this process holds it."""

    def __init__(self, store: Store, lease_seconds: float) -> None:
        self.client = store.client
        self.token = uuid.uuid4().hex
        self.key = store.keys.global_("leader")
        self.fence_key = fence_key(store.keys)
        #: The fencing token issued with the lease this process last won (0: never led).
        self.fence = 0
        self.lease_ms = int(lease_seconds * 1000)
        self.is_leader = False
        self._acquire = store.client.register_script(_ACQUIRE)
        self._renew = store.client.register_script(_RENEW)
        self._resign = store.client.register_script(_RESIGN)
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping: set[asyncio.Task[None]] = set()

    @contextlib.asynccontextmanager
    async def campaigning(self, loops: Mapping[str, Loop]) -> AsyncIterator[None]:
        """Campaign for the duration of the block, running ``loops`` while leader; resign at
        its end."""
        try:
            async with background(self.run(loops), "leader:campaign"):
                yield
        finally:
            await self.resign()

    async def run(self, loops: Mapping[str, Loop]) -> None:
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
                    fence = int(
                        await self._acquire(
                            keys=[self.key, self.fence_key], args=[self.token, self.lease_ms]
                        )
                    )
                    if fence:
                        held_until = time.monotonic() + self.lease_ms / 1000
                        self.fence = fence
                        self._step_up(loops)
            except UNAVAILABLE as exc:
                log.warning("leader_redis_unreachable", error=type(exc).__name__)
            # Give up before the lease could expire elsewhere: never two leaders at once.
            if self.is_leader and time.monotonic() > held_until - interval:
                self._step_down("renewal_overdue")
            await asyncio.sleep(interval)

    def _step_up(self, loops: Mapping[str, Loop]) -> None:
        self.is_leader = True
        metrics.IS_LEADER.set(1)
        log.info("leadership_acquired", fence=self.fence)
        context = contextvars.copy_context()
        context.run(_FENCE.set, Fence(self.key, self.fence))
        self._tasks = [
            asyncio.create_task(_guarded(name, loop), name=f"leader:{name}", context=context.copy())
            for name, loop in loops.items()
        ]

    def _step_down(self, reason: str) -> None:
        self.is_leader = False
        metrics.IS_LEADER.set(0)
        tasks, self._tasks = self._tasks, []
        for task in tasks:  # now, not when the stopping task first runs
            task.cancel()
        stopping = asyncio.create_task(_stop(tasks), name="leader:stop")
        self._stopping.add(stopping)
        stopping.add_done_callback(self._stopping.discard)
        log.warning("leadership_lost", reason=reason)

    async def resign(self) -> None:
        tasks, self._tasks = self._tasks, []
        await _stop([*tasks, *self._stopping])
        if self.is_leader:
            self.is_leader = False
            metrics.IS_LEADER.set(0)
            with contextlib.suppress(*UNAVAILABLE):
                await self._resign(keys=[self.key], args=[self.token])
            log.info("leadership_resigned")


async def _guarded(name: str, loop: Loop) -> None:
    """Run a loop; if it crashes, log and restart it after a pause (unless it was being
    cancelled: a library that turned the cancellation into another error ends it too)."""
    while True:
        try:
            await loop()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            if _cancelling():
                raise asyncio.CancelledError from None
            log.exception("leader_loop_crashed", loop=name)
            await asyncio.sleep(1.0)


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def _stop(tasks: Iterable[asyncio.Task[None]]) -> None:
    """Cancel the tasks and wait until each has ended, cancelling again every
    `RECANCEL_SECONDS`: a cancellation swallowed inside a library (a Redis read can eat one)
    must not leave a leader loop running after leadership ended, nor hang a shutdown. Gives
    up, loudly, after `STOP_TIMEOUT_SECONDS`."""
    pending = {task for task in tasks if not task.done()}
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_SECONDS)
        if pending and time.monotonic() > deadline:
            log.error("leader_loops_not_stopped", loops=sorted(t.get_name() for t in pending))
            return
