"""The leader killed (issue 18, item 4), and its fencing token.

A hub process killed with SIGKILL while it leads: the other process leads within one lease
TTL, and every leader duty goes on there (a hold expires, a pricing tick, a rollup step, a
waiting-room admission). A stale leader, one whose token a newer lease superseded, has its
writes refused in PostgreSQL (``leader_fence``) and in Redis (the admissions script).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub import leader
from hub.context import Hub
from hub.db import fence as leader_fence
from hub.db import rollups as rollups_db
from hub.leader import Fence, Leadership, StaleLeader
from hub.services import pricing, rollups, waiting_room
from hub.settings import Settings
from hub.store import Keys, Store
from tests.conftest import Account, register
from tests.factories import make_event
from tests.hub.api.booking_helpers import API, statuses
from tests.live import HubProcess, hub_process
from tests.waiting import eventually

LEASE_S = 1.0


# --- a stale leader's writes are refused ---------------------------------------------------


async def test_tokens_grow_with_each_lease_also_after_redis_lost_them(hub: Hub) -> None:
    store = Store(hub.store.client, Keys(f"{hub.settings.redis_prefix}fence-{uuid.uuid4()}:"))
    first, second = Leadership(store, 5), Leadership(store, 5)
    a = asyncio.create_task(first.run({}))
    assert await eventually(lambda: first.is_leader)
    a.cancel()
    await first.resign()  # gives the lease up: the second takes it with a new token
    b = asyncio.create_task(second.run({}))
    assert await eventually(lambda: second.is_leader)
    assert second.fence > first.fence > 0
    # Redis restarted empty: the next token is still above every one issued before.
    b.cancel()
    await second.resign()
    await hub.store.client.delete(second.fence_key)
    third = Leadership(store, 5)
    c = asyncio.create_task(third.run({}))
    assert await eventually(lambda: third.is_leader)
    assert third.fence > second.fence
    c.cancel()
    await third.resign()
    await hub.store.client.delete(third.fence_key)


async def test_a_stale_token_cannot_write_to_postgresql(hub: Hub) -> None:
    """Rollup steps under a lease's current token go through; under an older one the step
    is refused and the watermark stays; a newer leader's first write waits for a late one's
    open transaction instead of interleaving with it; other leases are fenced apart."""
    lease = f"test-lease-{uuid.uuid4()}"  # a leadership of its own: the app's is left alone
    app_lease = hub.leadership.key  # type: ignore[attr-defined]

    async def app_stepped() -> bool:  # the app's leader's first rollup step, not concurrent
        async with hub.db.connection() as con:
            return await leader_fence.current(con, app_lease) is not None

    assert await eventually(app_stepped, within=10)
    old, new = Fence(lease, 10), Fence(lease, 11)
    await rollups.roll_up(hub, old)
    async with hub.db.connection() as con:
        before = await rollups_db.watermark(con)
    await rollups.roll_up(hub, new)  # the new leader's first write raises the row
    async with hub.db.connection() as con:
        after = await rollups_db.watermark(con)
        assert await leader_fence.current(con, lease) == 11
    with pytest.raises(StaleLeader):
        await rollups.roll_up(hub, old)
    async with hub.db.connection() as con:
        assert await rollups_db.watermark(con) == after
        assert before is None or after is None or after >= before
        assert await leader_fence.current(con, lease) == 11

    # A late leader inside its transaction holds the row: the newer one waits for it.
    newest = Fence(lease, 12)
    async with hub.db.connection() as late, hub.db.connection() as other:
        late_tx = late.transaction()
        await late_tx.start()
        await leader_fence.hold(late, new)
        newer = asyncio.create_task(_hold_in_transaction(other, newest))
        await asyncio.sleep(0.3)
        assert not newer.done()  # blocked behind the late leader's open transaction
        await late_tx.commit()
        await asyncio.wait_for(newer, 10)
        with pytest.raises(StaleLeader):  # from now on the late leader is refused
            await _hold_in_transaction(late, new)
        # Another lease (hubs on another key prefix) has a fence of its own.
        await _hold_in_transaction(late, Fence(f"{lease}-other", 1))
        await late.execute("DELETE FROM leader_fence WHERE lease LIKE $1", f"{lease}%")


async def _hold_in_transaction(con: Any, fence: Fence) -> None:
    async with con.transaction():
        await leader_fence.hold(con, fence)


async def test_a_stale_token_cannot_admit(
    hub: Hub, client: httpx.AsyncClient, admin: Account
) -> None:
    event_id = uuid.UUID((await make_event(client, admin, rows=1, seats_per_row=4))["id"])
    await waiting_room.configure(
        hub, event_id, dt.datetime.now(dt.UTC) + dt.timedelta(hours=1), 1.0, None
    )
    users = [uuid.uuid4() for _ in range(2)]
    for user in users:
        await waiting_room.join(hub, user, event_id)
    room = await waiting_room.read_room(hub, event_id)
    assert room is not None
    # The app's own process leads: its token is the last one Redis issued.
    assert await eventually(lambda: hub.leadership.is_leader, within=10)  # type: ignore[attr-defined]
    current = int(await hub.store.client.get(leader.fence_key(hub.store.keys)) or 0)
    lease = hub.leadership.key  # type: ignore[attr-defined]
    with pytest.raises(StaleLeader):
        await waiting_room.admit(hub, room, users[:1], Fence(lease, current - 1))
    assert (await waiting_room.place(hub, users[0], event_id))["status"] == "waiting"
    assert await waiting_room.admit(hub, room, users[:1], Fence(lease, current)) == 1
    assert (await waiting_room.place(hub, users[0], event_id))["status"] == "admitted"
    assert await waiting_room.admit(hub, room, users[1:]) == 1  # no token: not the leader's


# --- the leader killed ---------------------------------------------------------------------


def _log_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for raw in path.read_text(errors="replace").splitlines():
        if raw.startswith("{"):
            try:
                lines.append(json.loads(raw))
            except ValueError:
                continue
    return lines


def _seen(path: Path, name: str, after: int = 0, **fields: Any) -> bool:
    """Whether the log has a line ``name`` (with ``fields``) past its first ``after`` lines."""
    return any(
        line.get("event") == name and all(line.get(k) == v for k, v in fields.items())
        for line in _log_lines(path)[after:]
    )


@pytest.mark.slow
async def test_leader_killed_its_duties_go_on_in_the_other_process(
    client: httpx.AsyncClient, settings: Settings, admin: Account
) -> None:
    held_event = await make_event(client, admin, rows=1, seats_per_row=4)
    roomed = await make_event(client, admin, rows=1, seats_per_row=4)
    buyer, waiter = await register(client), await register(client)
    # Two hub processes on a key prefix of their own, so only they compete for the lease;
    # every leader loop at a pace a test can watch.
    own = {
        "redis_prefix": f"{settings.redis_prefix}kill-{uuid.uuid4().hex[:6]}:",
        "hold_ttl_seconds": "1",
        "leader_lease_seconds": str(LEASE_S),
        "pricing_interval_seconds": "1",
        "pricing_offload": "off",
        "rollup_interval_seconds": "1",
        "log_level": "info",
    }
    with tempfile.TemporaryDirectory() as tmp:
        logs = [Path(tmp) / "a.log", Path(tmp) / "b.log"]
        with logs[0].open("wb") as err_a, logs[1].open("wb") as err_b:
            async with (
                hub_process(settings, stderr=err_a, **own) as a,
                hub_process(settings, stderr=err_b, **own) as b,
                httpx.AsyncClient(timeout=30) as http,
            ):
                procs = {a.port: logs[0], b.port: logs[1]}
                leaders = await _wait_for_one_leader(http, [a, b])
                (leader_proc,) = leaders
                survivor = b if leader_proc is a else a
                log_of = procs[survivor.port]
                old_fence = _fence_of(procs[leader_proc.port])

                # The waiting room is on and open before the kill; the waiter joins after.
                put = await http.put(
                    f"{survivor.base}{API}/events/{roomed['id']}/waiting-room",
                    json={"opens_at": dt.datetime.now(dt.UTC).isoformat(), "admit_per_second": 20},
                    headers=admin.headers,
                )
                assert put.status_code == 200, put.text

                leader_proc.proc.kill()  # SIGKILL: no goodbye, the lease must run out
                leader_proc.proc.wait()
                killed_at = time.monotonic()
                mark = len(_log_lines(log_of))
                held = await http.post(
                    f"{survivor.base}{API}/events/{held_event['id']}/holds",
                    json={"quantity": 1},
                    headers=buyer.headers,
                )
                assert held.status_code == 201, held.text
                seat = held.json()["seats"][0]["id"]
                joined = await http.post(
                    f"{survivor.base}{API}/events/{roomed['id']}/queue", headers=waiter.headers
                )
                assert joined.status_code == 201, joined.text

                assert await eventually(lambda: _seen(log_of, "leadership_acquired"), within=10)
                took = time.monotonic() - killed_at
                new_fence = _fence_of(log_of)
                print(f"\nleader killed -> other process leads after {took:.2f} s "
                      f"(lease {LEASE_S} s); fencing token {old_fence} -> {new_fence}")  # fmt: skip
                # Within one lease TTL (plus a renewal interval of polling, and a loaded box).
                assert took < LEASE_S + 1.5
                assert new_fence > old_fence

                async def released() -> bool:
                    url = f"{survivor.base}{API}/events/{held_event['id']}/seats"
                    seats = (await http.get(url)).json()
                    return statuses(seats["seats"])[seat] == "free"

                async def admitted() -> bool:
                    url = f"{survivor.base}{API}/events/{roomed['id']}/queue"
                    place = (await http.get(url, headers=waiter.headers)).json()
                    return bool(place["status"] == "admitted")

                assert await eventually(released, within=10), "expiry did not go on"
                assert await eventually(admitted, within=10), "admission did not go on"
                assert await eventually(
                    lambda: _seen(log_of, "prices_updated", mark, source="tick"), within=10
                ), "no pricing tick after the kill"
                assert await eventually(lambda: _seen(log_of, "rollup_step", mark), within=10), (
                    "no rollup step after the kill"
                )
                print(f"expiry, admission, a pricing tick and a rollup step seen "
                      f"{time.monotonic() - killed_at:.2f} s after the kill")  # fmt: skip
                # The survivor's writes were never fenced: it is the only leader.
                for name in ("rollup_step_fenced", "pricing_tick_fenced", "admission_step_fenced"):
                    assert not _seen(log_of, name), name


def _fence_of(path: Path) -> int:
    fences = [
        int(line["fence"])
        for line in _log_lines(path)
        if line.get("event") == "leadership_acquired"
    ]
    assert fences, f"no leadership_acquired in {path.name}"
    return fences[-1]


async def _wait_for_one_leader(http: httpx.AsyncClient, procs: list[HubProcess]) -> list[Any]:
    async def leaders() -> list[HubProcess]:
        found = []
        for proc in procs:
            text = (await http.get(f"{proc.base}/metrics")).text
            if "evently_leader 1.0" in text:
                found.append(proc)
        return found

    async def one() -> bool:
        return len(await leaders()) == 1

    assert await eventually(one, within=10)
    return await leaders()


async def test_a_stale_pricing_tick_in_the_offload_child_writes_nothing(
    hub: Hub, client: httpx.AsyncClient, admin: Account
) -> None:
    """The tick runs in the niced child (``hub.offload``) with the fence it was given: a
    superseded leader's tick is refused there, and its error comes back whole."""
    event = await make_event(client, admin, max_tickets_per_user=10)
    lease = f"test-lease-{uuid.uuid4()}"
    tracker = pricing.VelocityTracker(interval_seconds=10.0)
    tracker = await hub.offload.run(pricing._tick_in_child, tracker, Fence(lease, 2))
    buyers = [await register(client) for _ in range(3)]
    for buyer in buyers:  # a burst: the next tick raises this event's prices
        booked = await client.post(
            f"{API}/bookings", json={"event_id": event["id"], "quantity": 4}, headers=buyer.headers
        )
        assert booked.status_code == 201, booked.text
    prices = (await client.get(f"{API}/events/{event['id']}")).json()["prices"]
    with pytest.raises(StaleLeader) as refused:
        await hub.offload.run(pricing._tick_in_child, tracker, Fence(lease, 1))
    assert (refused.value.token, refused.value.current) == (1, 2)
    assert (await client.get(f"{API}/events/{event['id']}")).json()["prices"] == prices
    await hub.offload.run(pricing._tick_in_child, tracker, Fence(lease, 2))
    raised = (await client.get(f"{API}/events/{event['id']}")).json()["prices"]
    assert all(raised[section] > price for section, price in prices.items()), (prices, raised)
    async with hub.db.connection() as con:
        await con.execute("DELETE FROM leader_fence WHERE lease = $1", lease)
