"""The many-event calls of ``Inventory`` against a real Redis: each answers as its
one-event form would, in order, across chunks, and after Redis lost its scripts."""

from __future__ import annotations

import uuid

import msgpack

from engines.seats import SeatCode
from hub.inventory import HoldKind, HoldPlaced, HoldRequest, Inventory
from tests.hub.inventory.conftest import loaded

FREE, HELD, SOLD = SeatCode.FREE, SeatCode.HELD, SeatCode.SOLD


async def test_snapshots_answer_each_event_in_order_across_chunks(inventory: Inventory) -> None:
    first = await loaded(inventory, 3, sold=(0,))
    second = await loaded(inventory, 4)
    placed = await inventory.place_hold(
        second, HoldRequest(uuid.uuid4(), uuid.uuid4(), HoldKind.SINGLE, [2], [500], 60_000, None)
    )
    assert isinstance(placed, HoldPlaced)
    absent = uuid.uuid4()  # never loaded
    third = await loaded(inventory, 2, sold=(1,))
    ids = [first, absent, second, third, first]

    found = await inventory.snapshots(ids, chunk=2)

    assert found == [await inventory.snapshot(event_id) for event_id in ids]
    assert [None if f is None else list(f[1]) for f in found] == [
        [SOLD, FREE, FREE],
        None,
        [FREE, FREE, HELD, FREE],
        [FREE, SOLD],
        [SOLD, FREE, FREE],
    ]
    assert await inventory.snapshots([]) == []


async def test_snapshots_survive_a_redis_that_lost_its_scripts(inventory: Inventory) -> None:
    event_id = await loaded(inventory, 2, sold=(1,))
    await inventory.client.script_flush()  # as after a Redis restart
    found = await inventory.snapshots([event_id, uuid.uuid4()])
    assert found[1] is None and found[0] is not None
    assert list(found[0][1]) == [FREE, SOLD]


async def test_bump_versions_and_publish_bumps_each_version_before_its_message(
    inventory: Inventory,
) -> None:
    events = [uuid.uuid4() for _ in range(3)]
    before = [await inventory.version(e) for e in events]
    await inventory.bump_version(events[1])
    pubsub = inventory.client.pubsub()
    await pubsub.subscribe(*(inventory.channel(e) for e in events))
    for _ in events:
        await pubsub.get_message(timeout=1)  # subscribe confirmations
    try:
        versions = await inventory.bump_versions_and_publish(
            [(e, {"t": "price", "n": n}) for n, e in enumerate(events)], chunk=2
        )
        assert versions == [before[0] + 1, before[1] + 2, before[2] + 1]
        for n, event_id in enumerate(events):
            message = await pubsub.get_message(timeout=1)
            assert message is not None and message["channel"].decode() == inventory.channel(
                event_id
            )
            assert msgpack.unpackb(message["data"]) == {"t": "price", "n": n}
            assert await inventory.version(event_id) == versions[n]
        assert await pubsub.get_message(timeout=0.2) is None  # one message per event
    finally:
        await pubsub.aclose()
    assert await inventory.bump_versions_and_publish([]) == []
