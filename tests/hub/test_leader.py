"""Leader election against a real Redis: one leader, loss noticed, takeover after death."""

from __future__ import annotations

import asyncio
import contextlib

from hub.context import Hub
from hub.leader import Leadership, Loop
from hub.store import Keys, Store
from tests.waiting import eventually


def _candidate(hub: Hub, prefix: str, runs: list[str]) -> tuple[Leadership, dict[str, Loop]]:
    async def work() -> None:
        runs.append("started")
        await asyncio.Event().wait()

    return Leadership(Store(hub.store.client, Keys(prefix)), 0.6), {"work": work}


async def test_exactly_one_leader_and_takeover(hub: Hub) -> None:
    prefix = hub.settings.redis_prefix + "leader-test:"
    runs_a: list[str] = []
    runs_b: list[str] = []
    (a, work_a), (b, work_b) = _candidate(hub, prefix, runs_a), _candidate(hub, prefix, runs_b)
    task_a = asyncio.create_task(a.run(work_a))
    assert await eventually(lambda: a.is_leader)
    assert await eventually(lambda: runs_a == ["started"], within=1)
    task_b = asyncio.create_task(b.run(work_b))
    await asyncio.sleep(0.8)  # more than a lease: b must still not lead while a renews
    assert a.is_leader and not b.is_leader
    assert runs_a == ["started"] and runs_b == []

    # a dies without resigning: its lease runs out and b takes over within one TTL.
    task_a.cancel()
    for task in a._tasks:
        task.cancel()
    assert await eventually(lambda: b.is_leader, within=0.6 + 0.5)
    assert await eventually(lambda: runs_b == ["started"], within=1)  # its loops start

    # Someone else takes the key: b notices at its next renewal and stops its loops.
    loops_b = list(b._tasks)
    assert loops_b and not any(t.done() for t in loops_b)
    await hub.store.client.set(b.key, "intruder", px=5000)
    assert await eventually(lambda: not b.is_leader, within=1.0)
    await asyncio.sleep(0)
    assert all(t.cancelled() for t in loops_b)
    task_b.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task_b
    await b.resign()
    await hub.store.client.delete(b.key)
