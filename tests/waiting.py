"""Waiting for an outcome in tests without fixed sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def eventually(predicate: Callable[[], bool | Awaitable[bool]], within: float = 5.0) -> bool:
    """Poll ``predicate`` (sync or async) until it is true or ``within`` seconds pass."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result or loop.time() >= deadline:
            return result
        await asyncio.sleep(0.02)
