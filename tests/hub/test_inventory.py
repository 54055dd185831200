"""The seat-state scripts against a real Redis: all-or-nothing, seq accounting, publishing."""

from __future__ import annotations

import asyncio
import uuid

import msgpack
import pytest

from hub.context import Hub
from hub.inventory import HoldKind, HoldPlaced, HoldRefused, Inventory, Released, SeatCode


@pytest.fixture
def inventory(hub: Hub) -> Inventory:
    return hub.inventory


async def loaded(inventory: Inventory, n: int = 10, sold: tuple[int, ...] = ()) -> uuid.UUID:
    event_id = uuid.uuid4()
    assert await inventory.load(event_id, n, list(sold), {})
    return event_id


async def test_load_snapshot_and_reload_is_noop(inventory: Inventory) -> None:
    event_id = await loaded(inventory, 5, sold=(1, 3))
    snap = await inventory.snapshot(event_id)
    assert snap is not None
    seq, seats = snap
    assert list(seats) == [0, 2, 0, 2, 0]
    assert not await inventory.load(event_id, 5, [], {})
    assert await inventory.snapshot(event_id) == (seq, seats)


async def test_hold_is_all_or_nothing_and_names_taken_seats(inventory: Inventory, hub: Hub) -> None:
    event_id = await loaded(inventory, 6)
    pubsub = hub.store.client.pubsub()
    await pubsub.subscribe(inventory.channel(event_id))
    await pubsub.get_message(timeout=1)  # subscribe confirmation
    seq0 = (await inventory.snapshot(event_id))[0]  # type: ignore[index]
    user = uuid.uuid4()
    first = await inventory.place_hold(
        event_id, uuid.uuid4(), user, HoldKind.SINGLE, [0, 1], [1000, 1000], 60_000, 10
    )
    assert isinstance(first, HoldPlaced) and first.seq == seq0 + 2
    message = await pubsub.get_message(timeout=1)
    assert msgpack.unpackb(message["data"]) == {
        "t": "seats",
        "seq": seq0 + 2,
        "changes": [[0, 1], [1, 1]],
    }
    second = await inventory.place_hold(
        event_id, uuid.uuid4(), uuid.uuid4(), HoldKind.SINGLE, [1, 2, 0], [1, 1, 1], 60_000, None
    )
    assert isinstance(second, HoldRefused) and second.reason == "taken"
    assert sorted(second.taken) == [0, 1]
    seq, seats = await inventory.snapshot(event_id)  # type: ignore[misc]
    assert seq == seq0 + 2 and list(seats) == [1, 1, 0, 0, 0, 0]
    assert await pubsub.get_message(timeout=0.2) is None  # a failed hold publishes nothing
    await pubsub.aclose()


async def test_limit_counts_held_and_owned(inventory: Inventory) -> None:
    event_id = await loaded(inventory, 10)
    user = uuid.uuid4()
    ok = await inventory.place_hold(
        event_id, uuid.uuid4(), user, HoldKind.SINGLE, [0, 1, 2], [1] * 3, 60_000, 4
    )
    assert isinstance(ok, HoldPlaced)
    refused = await inventory.place_hold(
        event_id, uuid.uuid4(), user, HoldKind.SINGLE, [3, 4], [1, 1], 60_000, 4
    )
    assert isinstance(refused, HoldRefused) and refused.reason == "limit" and refused.current == 3
    group = await inventory.place_hold(
        event_id, uuid.uuid4(), user, HoldKind.GROUP, [5, 6, 7], [1] * 3, 60_000, None
    )
    assert isinstance(group, HoldPlaced)
    assert await inventory.owned_count(event_id, user) == 3


async def test_confirm_cycle_and_release(inventory: Inventory) -> None:
    event_id = await loaded(inventory, 4)
    user, hold_id = uuid.uuid4(), uuid.uuid4()
    await inventory.place_hold(
        event_id, hold_id, user, HoldKind.SINGLE, [2, 3], [500, 700], 60_000, 10
    )
    assert await inventory.begin_confirm(event_id, hold_id, uuid.uuid4()) == "missing"
    started = await inventory.begin_confirm(event_id, hold_id, user)
    assert not isinstance(started, str) and started.prices == (500, 700)
    assert await inventory.begin_confirm(event_id, hold_id, user) == "confirming"
    assert await inventory.release(event_id, hold_id) == "confirming"
    assert await inventory.abort_confirm(event_id, hold_id)
    await inventory.begin_confirm(event_id, hold_id, user)
    seq_before = (await inventory.snapshot(event_id))[0]  # type: ignore[index]
    seq = await inventory.finish_confirm(event_id, hold_id, started.seats)
    assert seq == seq_before + 2
    assert list((await inventory.snapshot(event_id))[1]) == [0, 0, 2, 2]  # type: ignore[index]
    assert await inventory.get_hold(event_id, hold_id) is None
    assert await inventory.owned_count(event_id, user) == 2
    # A cancellation frees the seats and gives the user's allowance back.
    await inventory.set_seats(event_id, [2, 3], SeatCode.FREE, user_id=user, count_delta=-2)
    assert list((await inventory.snapshot(event_id))[1]) == [0, 0, 0, 0]  # type: ignore[index]
    assert await inventory.owned_count(event_id, user) == 0

    other = uuid.uuid4()
    await inventory.place_hold(event_id, other, user, HoldKind.SINGLE, [0], [1], 60_000, 10)
    released = await inventory.release(event_id, other, user_id=user)
    assert isinstance(released, Released) and released.seats == (0,)
    assert await inventory.release(event_id, other) == "missing"


async def test_expire_only_when_due_and_extend_once(inventory: Inventory) -> None:
    event_id = await loaded(inventory, 3)
    user, hold_id = uuid.uuid4(), uuid.uuid4()
    placed = await inventory.place_hold(
        event_id, hold_id, user, HoldKind.SINGLE, [0], [1], 60_000, 10
    )
    assert isinstance(placed, HoldPlaced)
    assert await inventory.release(event_id, hold_id, mode="expire") == "not_due"
    new_expiry = await inventory.extend(event_id, hold_id, 30_000, 120_000)
    assert new_expiry == placed.expires_ms + 30_000
    assert await inventory.extend(event_id, hold_id, 30_000, 120_000) == "already"
    short = uuid.uuid4()
    await inventory.place_hold(event_id, short, user, HoldKind.SINGLE, [1], [1], 1, 10)
    await asyncio.sleep(0.01)
    [due] = await inventory.due_holds([event_id], await inventory.server_time_ms())
    assert short in due
    assert isinstance(await inventory.release(event_id, short, mode="expire"), Released)


async def test_forced_reload_keeps_live_holds_and_moves_seq_forward(inventory: Inventory) -> None:
    event_id = await loaded(inventory, 4)
    await inventory.place_hold(
        event_id, uuid.uuid4(), uuid.uuid4(), HoldKind.SINGLE, [1], [1], 60_000, None
    )
    seq_before = (await inventory.snapshot(event_id))[0]  # type: ignore[index]
    assert await inventory.load(event_id, 4, [3], {}, force=True)
    seq, seats = await inventory.snapshot(event_id)  # type: ignore[misc]
    assert list(seats) == [0, 1, 0, 2] and seq >= seq_before


async def test_pipelined_scripts_survive_a_redis_that_lost_its_scripts(
    inventory: Inventory, hub: Hub
) -> None:
    event_id = await loaded(inventory, 4)
    user, hold_id = uuid.uuid4(), uuid.uuid4()
    await hub.store.client.script_flush()  # as after a Redis restart
    placed = await inventory.place_hold(
        event_id, hold_id, user, HoldKind.SINGLE, [1], [100], 60_000, 10, index_ttl_s=60
    )
    assert isinstance(placed, HoldPlaced) and placed.seats == (1,)
    assert await inventory.hold_ref(hold_id) == (event_id, user)
    await inventory.begin_confirm(event_id, hold_id, user)
    await hub.store.client.script_flush()
    await inventory.finish_confirm(event_id, hold_id, [1], forget=True)
    assert await inventory.hold_ref(hold_id) is None
    assert list((await inventory.snapshot(event_id))[1]) == [0, 2, 0, 0]  # type: ignore[index]


async def test_due_holders_names_only_expired_holds(inventory: Inventory) -> None:
    event_id = await loaded(inventory, 4)
    short, long = uuid.uuid4(), uuid.uuid4()
    await inventory.place_hold(
        event_id, short, uuid.uuid4(), HoldKind.SINGLE, [0, 1], [1, 1], 1, None
    )
    await inventory.place_hold(
        event_id, long, uuid.uuid4(), HoldKind.SINGLE, [2], [1], 60_000, None
    )
    await asyncio.sleep(0.01)
    assert await inventory.due_holders(event_id, [0, 1, 2, 3]) == [short]
