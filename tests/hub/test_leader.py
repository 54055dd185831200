"""Leader election against a real Redis: one leader, loss noticed, takeover after death; and
across hub processes, a killed leader's duties (expiry) taken over by the survivor."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import httpx
import pytest

from hub.context import Hub
from hub.leader import Leadership, Loop
from hub.settings import Settings
from hub.store import Keys, Store
from tests.conftest import Account
from tests.factories import make_event
from tests.hub.api.booking_helpers import API, statuses
from tests.live import hub_process
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
    # cancelled at once; a task ends cancelled when it next runs
    assert all(t.cancelling() or t.cancelled() for t in loops_b)
    assert await eventually(lambda: all(t.cancelled() for t in loops_b), within=0.5)
    task_b.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task_b
    await b.resign()
    await hub.store.client.delete(b.key)


async def test_a_loop_that_swallows_its_cancellation_is_still_stopped(hub: Hub) -> None:
    """A library may eat a cancellation (a Redis read can): resigning and stepping down
    cancel again until the loop has ended, instead of waiting for it forever."""
    swallowed: list[str] = []

    async def stubborn() -> None:
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if not swallowed or swallowed[-1] == "second":
                    swallowed.append("first")  # as if a library ate it: go on
                    continue
                swallowed.append("second")
                raise

    for ending in ("resign", "step down"):
        swallowed.clear()
        leader = Leadership(Store(hub.store.client, Keys(hub.settings.redis_prefix + "stub:")), 5)
        campaign = asyncio.create_task(leader.run({"stubborn": stubborn}))
        assert await eventually(lambda: leader.is_leader)  # noqa: B023 (awaited here)
        task = leader._tasks[0]
        await asyncio.sleep(0.05)
        started = time.monotonic()
        if ending == "resign":
            campaign.cancel()
            await asyncio.wait_for(leader.resign(), timeout=5)
        else:
            await hub.store.client.set(leader.key, "intruder", px=5000)
            assert await eventually(lambda: not leader.is_leader, within=5)  # noqa: B023
            assert await eventually(task.done, within=3)
            campaign.cancel()
            await leader.resign()
        assert task.done() and swallowed == ["first", "second"], (ending, swallowed)
        assert time.monotonic() - started < 5
        await hub.store.client.delete(leader.key)


@pytest.mark.slow
async def test_leader_failover_keeps_expiry_going(
    client: httpx.AsyncClient, settings: Settings, admin: Account, user: Account
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=2)
    # Two hub processes on a key prefix of their own, so only they compete for the lease.
    own = {
        "redis_prefix": f"{settings.redis_prefix}failover:",
        "hold_ttl_seconds": "1",
        "leader_lease_seconds": "1",
    }
    async with hub_process(settings, **own) as a, hub_process(settings, **own) as b:
        async with httpx.AsyncClient() as http:

            async def leader_of() -> list[Any]:
                found = []
                for proc in (a, b):
                    if proc.proc.poll() is not None:
                        continue
                    text = (await http.get(f"{proc.base}/metrics")).text
                    if "evently_leader 1.0" in text:
                        found.append(proc)
                return found

            assert await eventually(lambda: _one(leader_of), within=5)
            (leader,) = await leader_of()
            survivor = b if leader is a else a
            leader.proc.kill()  # no goodbye: the lease must run out
            leader.proc.wait()
            started = time.monotonic()
            held = await http.post(
                f"{survivor.base}{API}/events/{event['id']}/holds",
                json={"quantity": 1},
                headers=user.headers,
            )
            assert held.status_code == 201, held.text
            seat = held.json()["seats"][0]["id"]

            async def released() -> bool:
                seats = (await http.get(f"{survivor.base}{API}/events/{event['id']}/seats")).json()
                return statuses(seats["seats"])[seat] == "free"

            assert await eventually(released, within=5)
            # Lease (1 s) runs out, the survivor takes over, the 1 s hold expires, swept.
            assert time.monotonic() - started < 4
            assert [p.port for p in await leader_of()] == [survivor.port]


async def _one(leaders: Any) -> bool:
    return len(await leaders()) == 1
