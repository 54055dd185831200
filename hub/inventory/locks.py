"""The per-event seat-assignment lock that best-available and bulk choosers take.

A token with a TTL in Redis (so a crashed holder cannot block the event), released by
compare-and-delete (``lua/unlock.lua``), so a holder whose TTL ran out never deletes its
successor's lock. Within a process, choosers queue on an asyncio lock first (FIFO, no
polling), so only one per process polls Redis, briefly, against the other processes. Small
named-seat holds never take it: the hold script alone keeps them all-or-nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from hub.inventory.records import AssignmentBusy
from hub.store import Keys


class AssignmentLocks:
    def __init__(self, client: Redis, keys: Keys, unlock: AsyncScript) -> None:
        self.client = client
        self.keys = keys
        self._unlock = unlock
        # One per event this process has assigned seats for: a few hundred at most.
        self._local: dict[uuid.UUID, asyncio.Lock] = {}

    @contextlib.asynccontextmanager
    async def hold(
        self, event_id: uuid.UUID, *, ttl_ms: int = 2000, wait_s: float = 2.0
    ) -> AsyncIterator[None]:
        """Hold the event's assignment lock for the body of the ``async with``.

        Raises:
            AssignmentBusy: not acquired within ``wait_s``.
        """
        local = self._local.setdefault(event_id, asyncio.Lock())
        try:
            async with asyncio.timeout(wait_s):
                await local.acquire()
        except TimeoutError:
            raise AssignmentBusy(str(event_id)) from None
        try:
            key = self.keys.event(event_id, "assign")
            token = uuid.uuid4().hex
            deadline = time.monotonic() + wait_s
            pause = 0.0005
            while not await self.client.set(key, token, nx=True, px=ttl_ms):
                if time.monotonic() >= deadline:
                    raise AssignmentBusy(str(event_id))
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.004)
            try:
                yield
            finally:
                await asyncio.shield(self._unlock(keys=[key], args=[token]))
        finally:
            local.release()
