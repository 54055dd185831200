"""Background tasks: those the lifespan owns (started on entry, cancelled and awaited on
exit), and the clean-up of a failed request, which must run to its end but must not keep
the request's answer waiting on a server that stopped answering."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import structlog

log = structlog.get_logger(__name__)

# How long a failed request waits for its clean-up before it answers. Clean-up is a few
# milliseconds when the servers answer; when one does not, a pool acquire there waits 10 s,
# and the request, often already past its deadline, must not wait with it.
SETTLE_WAIT_SECONDS = 0.4


@contextlib.asynccontextmanager
async def background(
    coro: Coroutine[Any, Any, None], name: str
) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``coro`` as a task for the duration of the block; cancel it and wait on exit."""
    task = asyncio.create_task(coro, name=name)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class CleanUps:
    """The clean-ups of one hub's failed requests (``hub.cleanups``)."""

    def __init__(self) -> None:
        # Those still running after their request answered (asyncio keeps only weak
        # references to tasks, so they are kept here until they end).
        self._running: set[asyncio.Task[Any]] = set()
        # Each request's latest clean-up: the next one it asks for runs after it (a
        # booking's undo puts the hold back before the one-call booking releases it).
        self._latest: weakref.WeakKeyDictionary[asyncio.Task[Any], asyncio.Task[Any]] = (
            weakref.WeakKeyDictionary()
        )

    async def settle(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        """Run the clean-up ``coro`` to its end, whatever becomes of the caller, and wait for
        it at most ``SETTLE_WAIT_SECONDS``; past that it finishes in the background.

        Never raises the clean-up's own error (logged as ``cleanup_failed``): the caller is
        already on its way out with the error that matters. A caller cancelled while
        waiting gets its ``CancelledError``; the clean-up goes on. One caller's clean-ups
        run in the order it asked for them."""
        owner = asyncio.current_task()
        before = self._latest.get(owner) if owner is not None else None
        task = asyncio.create_task(_after(before, coro), name=name)
        if owner is not None:
            self._latest[owner] = task
        self._running.add(task)
        task.add_done_callback(self._ended)
        await asyncio.wait((task,), timeout=SETTLE_WAIT_SECONDS)
        if not task.done():
            log.warning("cleanup_in_background", task=name)

    def _ended(self, task: asyncio.Task[Any]) -> None:
        self._running.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("cleanup_failed", task=task.get_name(), error=repr(exc))

    async def drain(self, within: float) -> None:
        """Wait (at most ``within`` seconds) for clean-ups still running, then cancel the
        rest: called on shutdown, before the pools they use close. (What a cancelled one
        leaves, a hold left confirming, the leader settles from PostgreSQL's record.)"""
        if not self._running:
            return
        _, pending = await asyncio.wait(tuple(self._running), timeout=within)
        if pending:
            log.warning("cleanups_cancelled", count=len(pending))
            for task in pending:
                task.cancel()
            await asyncio.wait(pending)


async def _after(before: asyncio.Task[Any] | None, coro: Coroutine[Any, Any, Any]) -> Any:
    if before is not None:
        await asyncio.wait((before,))
    return await coro
