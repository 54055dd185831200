"""Connection caps in Redis: shared by processes, atomic at the last place, and never leaked
by a process that dies (its claims lapse once it stops renewing them)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

from hub.channels import caps as caps_module
from hub.channels.caps import CapKind, ConnectionCaps
from hub.context import Hub
from hub.store import Keys, Store
from tests.waiting import eventually


def _store(hub: Hub) -> Store:
    """The run's Redis under a key prefix of this test's own."""
    return Store(hub.store.client, Keys(f"{hub.settings.redis_prefix}caps-{uuid.uuid4().hex}:"))


async def _takes(caps: ConnectionCaps, n: int, who: str, cap: int) -> int:
    """How many of ``n`` claims got a place."""
    return sum([await caps.claim(CapKind.IP, who, cap) is not None for _ in range(n)])


async def _took_one(caps: ConnectionCaps, who: str, cap: int) -> bool:
    return await _takes(caps, 1, who, cap) == 1


async def test_a_cap_counts_every_process_and_frees_a_released_place(hub: Hub) -> None:
    store = _store(hub)
    a, b = ConnectionCaps(store), ConnectionCaps(store)
    first = await a.claim(CapKind.IP, "10.0.0.1", 3)
    assert first is not None
    assert await _takes(a, 1, "10.0.0.1", 3) == 1
    assert await _takes(b, 1, "10.0.0.1", 3) == 1
    assert await _takes(a, 1, "10.0.0.1", 3) == 0
    assert await _takes(b, 1, "10.0.0.1", 3) == 0
    # another address, and the same name as a user, are other caps
    assert await _takes(b, 1, "10.0.0.2", 3) == 1
    assert await b.claim(CapKind.USER, "10.0.0.1", 3) is not None
    a.release(first)
    a.release(first)  # twice is harmless
    assert a.held(CapKind.IP, "10.0.0.1") == 1
    assert await eventually(lambda: _took_one(b, "10.0.0.1", 3), within=5)
    assert await _takes(a, 1, "10.0.0.1", 3) == 0
    await a.stop()
    await b.stop()


async def test_only_cap_many_of_simultaneous_claims_get_a_place(hub: Hub) -> None:
    store = _store(hub)
    processes = [ConnectionCaps(store) for _ in range(4)]
    results = await asyncio.gather(
        *(p.claim(CapKind.USER, "ada", 5) for p in processes for _ in range(10))
    )
    assert sum(r is not None for r in results) == 5
    for p in processes:
        await p.stop()


async def test_a_dead_process_stops_counting_within_a_lease(hub: Hub) -> None:
    store = _store(hub)
    dead = ConnectionCaps(
        store, lease_seconds=1.0
    )  # never started: nothing renews, as after a crash
    other = ConnectionCaps(store)
    assert await _takes(dead, 2, "10.0.0.1", 2) == 2
    assert await _takes(other, 1, "10.0.0.1", 2) == 0
    started = time.monotonic()
    assert await eventually(lambda: _took_one(other, "10.0.0.1", 2), within=5)
    assert 0.5 < time.monotonic() - started < 3.0
    await other.stop()


async def test_a_live_process_keeps_its_places_until_it_stops(hub: Hub) -> None:
    store = _store(hub)
    live = ConnectionCaps(store, lease_seconds=1.0, renew_seconds=0.2)
    await live.start()
    other = ConnectionCaps(store)
    assert await _takes(live, 2, "10.0.0.1", 2) == 2
    await asyncio.sleep(2.5)  # two and a half leases: renewed all along
    assert await _takes(other, 1, "10.0.0.1", 2) == 0
    await live.stop()  # a process that stops gives its places back at once
    assert await _takes(other, 2, "10.0.0.1", 2) == 2
    await other.stop()


async def _zrem_calls(store: Store) -> int:
    stats = await store.client.info("commandstats")
    return int(stats.get("cmdstat_zrem", {}).get("calls", 0))


async def test_connections_closing_at_once_are_released_together(hub: Hub) -> None:
    """Two thousand sockets closing in one moment (a network blip) are forgotten in a few
    pipelined rounds, not two thousand calls contending for the Redis pool."""
    store = _store(hub)
    caps = ConnectionCaps(store)
    claims = [await caps.claim(CapKind.IP, f"10.1.{n % 4}.1", 10_000) for n in range(2_000)]
    before = await _zrem_calls(store)
    for claim in claims:
        assert claim is not None
        caps.release(claim)
    assert all(caps.held(CapKind.IP, f"10.1.{n}.1") == 0 for n in range(4))

    async def forgotten() -> bool:
        counts = [await store.client.zcard(claim.key) for claim in claims[:4] if claim]
        return counts == [0, 0, 0, 0]

    assert await eventually(forgotten, within=5)
    # one ZREM per address and round; other tests sharing the server add a few of theirs
    assert await _zrem_calls(store) - before < 200
    await caps.stop()


class _CountingPipelines:
    """The caps' Redis client, counting the pipelines asked of it; ``on_pipeline`` runs
    before each."""

    def __init__(self, client: Any, on_pipeline: Callable[[int], None]) -> None:
        self.client = client
        self.on_pipeline = on_pipeline
        self.pipelines = 0

    def pipeline(self, **kwargs: Any) -> Any:
        self.pipelines += 1
        self.on_pipeline(self.pipelines)
        return self.client.pipeline(**kwargs)


async def test_a_renewal_goes_in_slices_and_misses_no_cap(hub: Hub, monkeypatch: Any) -> None:
    """Thousands of caps renewed in one pipeline held a worker's loop for hundreds of
    milliseconds: the renewal goes ``RENEW_SLICE_CAPS`` caps at a time, renews every cap
    still held, and skips one whose last connection closed between two slices."""
    monkeypatch.setattr(caps_module, "RENEW_SLICE_CAPS", 10)
    store = _store(hub)
    caps = ConnectionCaps(store, lease_seconds=60.0)
    claims = [await caps.claim(CapKind.USER, f"user-{n}", 5) for n in range(35)]
    assert all(claims)
    last = claims[-1]
    assert last is not None
    before = await store.client.zscore(last.key, last.member)

    def closing_midway(pipelines: int) -> None:
        if pipelines == 2:
            caps.release(last)  # in the fourth slice, not renewed yet

    counting = _CountingPipelines(store.client, closing_midway)
    caps.client = counting
    await asyncio.sleep(0.01)  # a later lapse than the claims'
    await caps.renew()
    # 35 caps, 10 at a time (the release's ZREM, told in the background, may make a fifth)
    assert counting.pipelines >= 4
    caps.client = store.client
    for claim in claims[:-1]:
        assert claim is not None
        assert await store.client.zscore(claim.key, claim.member) > before
    assert await eventually(lambda: _gone(store, last.key), within=5)
    await caps.stop()


async def _gone(store: Store, key: str) -> bool:
    return await store.client.zcard(key) == 0
