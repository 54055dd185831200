"""The shared-load cache: one load per key however many ask at once; failures not kept."""

from __future__ import annotations

import asyncio

import pytest

from hub.cache import SharedLoads


async def test_concurrent_callers_share_one_load() -> None:
    cache: SharedLoads[str, int] = SharedLoads(capacity=8)
    loads = 0

    async def load() -> int:
        nonlocal loads
        loads += 1
        await asyncio.sleep(0.05)
        return 42

    results = await asyncio.gather(*(cache.get("venue", load) for _ in range(100)))
    assert results == [42] * 100 and loads == 1
    assert await cache.get("venue", load) == 42 and loads == 1
    assert await cache.get("venue", load, fresh=True) == 42 and loads == 2


async def test_failed_loads_are_not_kept_and_entries_age_out() -> None:
    cache: SharedLoads[str, int] = SharedLoads(capacity=1, max_age=0.05)
    attempts = 0

    async def flaky() -> int:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise LookupError("not yet")
        return attempts

    with pytest.raises(LookupError):
        await cache.get("k", flaky)
    assert await cache.get("k", flaky) == 2  # tried again, not the stored failure
    assert await cache.get("k", flaky) == 2
    await asyncio.sleep(0.06)
    assert await cache.get("k", flaky) == 3  # aged out
    await cache.get("other", flaky)  # capacity 1: "k" is evicted
    assert await cache.get("k", flaky) == 5
