"""Offload: heavy background runs in a child process at a lower CPU priority.

Why. Some runs are long stretches of Python: a pricing run over 10,000 events spends
1.5 to 2 s of CPU reading rows, building messages and encoding its answer. Inside a serving
worker that CPU is taken straight from the hold path (BENCHMARKS.md, "Dynamic pricing end
to end": hold p99 2.5 times higher beside a looping `update-all`). Python cannot share it out within
one process, but the kernel can between processes: a child niced to
``offload_nice`` gets the core only when the serving processes leave it idle, so selling
always goes first and the run takes what is left.

How. One child per process that uses it, started on first use (``spawn``: a fresh
interpreter, no inherited event loop, sockets or threads) and kept for the next run. It
opens its own hub (PostgreSQL and Redis connections) once, with the ``opener`` it is
given, and runs each job there: a module-level ``async def job(hub, *args)`` whose
arguments and result pickle. A job's typed errors come back as themselves. The child dies
with its parent (it polls the parent's pid), and a child that crashed is replaced on the
next call, which fails that call with ``ServiceUnavailable`` instead of hanging. A child
left idle for ``IDLE_SECONDS`` is stopped (a worker that answered one ``update-all``, a
leader that lost its lease to another process: each kept ~90 MB for nothing) and started
again by the next run.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Any, Concatenate, ParamSpec, TypeVar

import structlog

from hub.errors import ServiceUnavailable
from hub.settings import Settings

log = structlog.get_logger(__name__)

P = ParamSpec("P")
R = TypeVar("R")
H = TypeVar("H")

Opener = Callable[[Settings], AbstractAsyncContextManager[Any]]

#: How long `Offload.stop` lets a run in progress end before it kills the child.
STOP_GRACE_SECONDS = 3.0
#: How long to wait for a killed child to be reaped.
_KILLED_JOIN_SECONDS = 5.0
#: How often the child checks that its parent still lives.
_PARENT_POLL_SECONDS = 2.0
#: A child with no run for this long is stopped (a leader ticks every 10 s: it keeps its own).
IDLE_SECONDS = 60.0


class Offload:
    """Runs jobs in a niced child process that holds its own hub (see the module docstring)."""

    def __init__(
        self, settings: Settings, opener: Opener, *, idle_seconds: float = IDLE_SECONDS
    ) -> None:
        self._settings = settings
        self._opener = opener
        self._idle_seconds = idle_seconds
        self._pool: ProcessPoolExecutor | None = None
        self._lock = asyncio.Lock()
        self._running = 0  # runs in progress
        self._last_end = 0.0  # loop time the last run ended
        self._reaper: asyncio.Task[None] | None = None

    @property
    def child_running(self) -> bool:
        return self._pool is not None

    async def run(
        self, job: Callable[Concatenate[H, P], Awaitable[R]], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """Run ``job(hub, *args)`` in the child and return its result (or raise its error).

        Raises:
            ServiceUnavailable: the child died during the run (it is replaced next time).
        """
        pool = await self._ready()
        loop = asyncio.get_running_loop()
        self._running += 1
        try:
            return await loop.run_in_executor(pool, _call, job, args, kwargs)  # type: ignore[arg-type]
        except BrokenProcessPool:
            log.error("offload_child_died", job=job.__qualname__)
            await self._discard(pool, grace=0.0)
            raise ServiceUnavailable("The background worker stopped; try again") from None
        finally:
            self._running -= 1
            self._last_end = loop.time()

    async def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Stop the child, if one runs. A run in progress gets ``grace`` seconds to end; then
        the child is killed. Losing a run is safe: a job's writes are transactions (rolled
        back with the killed connection) and what it computes is computed again by the next
        run (a pricing tick, a model build), so a long build never holds up a shutdown."""
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        if self._pool is not None:
            await self._discard(self._pool, grace)

    async def _ready(self) -> ProcessPoolExecutor:
        async with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start,
                    initargs=(self._settings, self._opener, os.getpid()),
                )
                if self._reaper is None:
                    self._reaper = asyncio.get_running_loop().create_task(self._reap_idle())
            return self._pool

    async def _reap_idle(self) -> None:
        """Stop the child once it has had no run for ``idle_seconds``; then end."""
        loop = asyncio.get_running_loop()
        self._last_end = loop.time()
        try:
            while self._pool is not None:
                await asyncio.sleep(self._idle_seconds / 4)
                idle = loop.time() - self._last_end
                if self._running == 0 and idle >= self._idle_seconds and self._pool is not None:
                    log.info("offload_child_idle_stopped", idle_seconds=round(idle, 1))
                    await self._discard(self._pool, grace=STOP_GRACE_SECONDS)
        finally:
            if self._reaper is asyncio.current_task():
                self._reaper = None

    async def _discard(self, pool: ProcessPoolExecutor, grace: float) -> None:
        if self._pool is pool:
            self._pool = None
        # The executor keeps its processes in a private map, read before shutdown clears
        # it; the public API can only wait for a run to end, however long it takes.
        children = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for child in children:
            await asyncio.to_thread(child.join, grace)
            if child.is_alive():
                log.warning("offload_child_killed", pid=child.pid, grace_seconds=grace)
                child.kill()
                await asyncio.to_thread(child.join, _KILLED_JOIN_SECONDS)
        await asyncio.to_thread(pool.shutdown, wait=True)


# --- in the child -------------------------------------------------------------------------

_child: _Child | None = None


class _Child:
    """The child's event loop and hub, alive for the life of the process."""

    def __init__(self, settings: Settings, opener: Opener) -> None:
        self.loop = asyncio.new_event_loop()
        self._stack = AsyncExitStack()
        self.hub = self.loop.run_until_complete(self._open(opener(settings)))

    async def _open(self, opening: AbstractAsyncContextManager[Any]) -> Any:
        return await self._stack.enter_async_context(opening)


def _start(settings: Settings, opener: Opener, parent: int) -> None:
    global _child
    os.nice(settings.offload_nice)
    _child = _Child(settings, opener)
    threading.Thread(target=_orphan_watch, args=(parent,), daemon=True).start()
    log.info("offload_child_started", pid=os.getpid(), nice=os.nice(0))


def _orphan_watch(parent: int) -> None:
    """Exit when the parent is gone: a killed hub must not leave its child behind."""
    while True:
        threading.Event().wait(_PARENT_POLL_SECONDS)
        if os.getppid() != parent:
            os._exit(0)


def _call(job: Callable[..., Awaitable[Any]], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    assert _child is not None, "the offload child was not started"
    return _child.loop.run_until_complete(job(_child.hub, *args, **kwargs))
