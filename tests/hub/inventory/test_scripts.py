"""The seat-state scripts against a real Redis: all-or-nothing, seq accounting, publishing."""

from __future__ import annotations

import fnmatch
import tomllib
import uuid
from pathlib import Path

import msgpack

from engines.seats import SeatCode
from hub.inventory import (
    ConfirmStarted,
    HoldKind,
    HoldPlaced,
    HoldRefused,
    HoldRequest,
    Inventory,
    Refusal,
    Released,
    ReleaseMode,
    scripts,
)
from tests.hub.inventory.conftest import loaded, wait_past

FREE, HELD, SOLD = SeatCode.FREE, SeatCode.HELD, SeatCode.SOLD


async def test_load_snapshot_and_reload_is_noop(inventory: Inventory) -> None:
    event_id = await loaded(inventory, 5, sold=(1, 3))
    snap = await inventory.snapshot(event_id)
    assert snap is not None
    seq, seats = snap
    assert list(seats) == [FREE, SOLD, FREE, SOLD, FREE]
    assert not await inventory.load(event_id, 5, [], {})
    assert await inventory.snapshot(event_id) == (seq, seats)


async def test_hold_is_all_or_nothing_and_names_taken_seats(inventory: Inventory) -> None:
    event_id = await loaded(inventory, 6)
    pubsub = inventory.client.pubsub()
    await pubsub.subscribe(inventory.channel(event_id))
    await pubsub.get_message(timeout=1)  # subscribe confirmation
    seq0 = (await inventory.snapshot(event_id))[0]  # type: ignore[index]
    user = uuid.uuid4()
    first = await inventory.place_hold(
        event_id, HoldRequest(uuid.uuid4(), user, HoldKind.SINGLE, [0, 1], [1000, 1000], 60_000, 10)
    )
    assert isinstance(first, HoldPlaced) and first.seq == seq0 + 2
    message = await pubsub.get_message(timeout=1)
    assert msgpack.unpackb(message["data"]) == {
        "t": "seats",
        "seq": seq0 + 2,
        "changes": [[0, 1], [1, 1]],
    }
    second = await inventory.place_hold(
        event_id,
        HoldRequest(
            uuid.uuid4(), uuid.uuid4(), HoldKind.SINGLE, [1, 2, 0], [1, 1, 1], 60_000, None
        ),
    )
    assert isinstance(second, HoldRefused) and second.reason is Refusal.TAKEN
    assert sorted(second.taken) == [0, 1]
    seq, seats = await inventory.snapshot(event_id)  # type: ignore[misc]
    assert seq == seq0 + 2 and list(seats) == [HELD, HELD, FREE, FREE, FREE, FREE]
    assert await pubsub.get_message(timeout=0.2) is None  # a failed hold publishes nothing
    await pubsub.aclose()


async def test_limit_counts_held_and_owned(inventory: Inventory) -> None:
    event_id = await loaded(inventory, 10)
    user = uuid.uuid4()
    ok = await inventory.place_hold(
        event_id, HoldRequest(uuid.uuid4(), user, HoldKind.SINGLE, [0, 1, 2], [1] * 3, 60_000, 4)
    )
    assert isinstance(ok, HoldPlaced)
    refused = await inventory.place_hold(
        event_id, HoldRequest(uuid.uuid4(), user, HoldKind.SINGLE, [3, 4], [1, 1], 60_000, 4)
    )
    assert (
        isinstance(refused, HoldRefused)
        and refused.reason is Refusal.LIMIT
        and refused.current == 3
    )
    group = await inventory.place_hold(
        event_id, HoldRequest(uuid.uuid4(), user, HoldKind.GROUP, [5, 6, 7], [1] * 3, 60_000, None)
    )
    assert isinstance(group, HoldPlaced)
    assert await inventory.owned_count(event_id, user) == 3


async def test_confirm_cycle_and_release(inventory: Inventory) -> None:
    event_id = await loaded(inventory, 4)
    user, hold_id = uuid.uuid4(), uuid.uuid4()
    await inventory.place_hold(
        event_id, HoldRequest(hold_id, user, HoldKind.SINGLE, [2, 3], [500, 700], 60_000, 10)
    )
    assert await inventory.begin_confirm(event_id, hold_id, uuid.uuid4()) is Refusal.MISSING
    started = await inventory.begin_confirm(event_id, hold_id, user)
    assert isinstance(started, ConfirmStarted) and started.prices == (500, 700)
    assert await inventory.begin_confirm(event_id, hold_id, user) is Refusal.CONFIRMING
    assert await inventory.release(event_id, hold_id) is Refusal.CONFIRMING
    assert await inventory.abort_confirm(event_id, hold_id)
    await inventory.begin_confirm(event_id, hold_id, user)
    seq_before = (await inventory.snapshot(event_id))[0]  # type: ignore[index]
    seq = await inventory.finish_confirm(event_id, hold_id, started.seats)
    assert seq == seq_before + 2
    assert list((await inventory.snapshot(event_id))[1]) == [FREE, FREE, SOLD, SOLD]  # type: ignore[index]
    assert await inventory.get_hold(event_id, hold_id) is None
    assert await inventory.owned_count(event_id, user) == 2
    # A cancellation frees the seats and gives the user's allowance back.
    await inventory.set_seats(event_id, [2, 3], FREE, user_id=user, count_delta=-2)
    assert list((await inventory.snapshot(event_id))[1]) == [FREE] * 4  # type: ignore[index]
    assert await inventory.owned_count(event_id, user) == 0

    other = uuid.uuid4()
    await inventory.place_hold(
        event_id, HoldRequest(other, user, HoldKind.SINGLE, [0], [1], 60_000, 10)
    )
    released = await inventory.release(event_id, other, user_id=user)
    assert isinstance(released, Released) and released.seats == (0,)
    assert await inventory.release(event_id, other) is Refusal.MISSING


async def test_expire_only_when_due_and_extend_once(inventory: Inventory) -> None:
    event_id = await loaded(inventory, 3)
    user, hold_id = uuid.uuid4(), uuid.uuid4()
    placed = await inventory.place_hold(
        event_id, HoldRequest(hold_id, user, HoldKind.SINGLE, [0], [1], 60_000, 10)
    )
    assert isinstance(placed, HoldPlaced)
    assert await inventory.release(event_id, hold_id, mode=ReleaseMode.EXPIRE) is Refusal.NOT_DUE
    new_expiry = await inventory.extend(event_id, hold_id, 30_000, 120_000)
    assert new_expiry == placed.expires_ms + 30_000
    assert await inventory.extend(event_id, hold_id, 30_000, 120_000) is Refusal.ALREADY
    short = uuid.uuid4()
    brief = await inventory.place_hold(
        event_id, HoldRequest(short, user, HoldKind.SINGLE, [1], [1], 1, 10)
    )
    assert isinstance(brief, HoldPlaced)
    await wait_past(inventory, brief.expires_ms)
    [due] = await inventory.due_holds([event_id], await inventory.server_time_ms())
    assert short in due and hold_id not in due
    assert isinstance(await inventory.release(event_id, short, mode=ReleaseMode.EXPIRE), Released)


async def test_forced_reload_keeps_live_holds_and_moves_seq_forward(inventory: Inventory) -> None:
    event_id = await loaded(inventory, 4)
    await inventory.place_hold(
        event_id, HoldRequest(uuid.uuid4(), uuid.uuid4(), HoldKind.SINGLE, [1], [1], 60_000, None)
    )
    seq_before = (await inventory.snapshot(event_id))[0]  # type: ignore[index]
    assert await inventory.load(event_id, 4, [3], {}, force=True)
    seq, seats = await inventory.snapshot(event_id)  # type: ignore[misc]
    assert list(seats) == [FREE, HELD, FREE, SOLD] and seq >= seq_before


async def test_pipelined_scripts_survive_a_redis_that_lost_its_scripts(
    inventory: Inventory,
) -> None:
    event_id = await loaded(inventory, 4)
    user, hold_id = uuid.uuid4(), uuid.uuid4()
    await inventory.client.script_flush()  # as after a Redis restart
    placed = await inventory.place_hold(
        event_id,
        HoldRequest(hold_id, user, HoldKind.SINGLE, [1], [100], 60_000, 10, index_ttl_s=60),
    )
    assert isinstance(placed, HoldPlaced) and placed.seats == (1,)
    assert await inventory.hold_ref(hold_id) == (event_id, user)
    await inventory.begin_confirm(event_id, hold_id, user)
    await inventory.client.script_flush()
    await inventory.finish_confirm(event_id, hold_id, [1], forget=True)
    assert await inventory.hold_ref(hold_id) is None
    assert list((await inventory.snapshot(event_id))[1]) == [FREE, SOLD, FREE, FREE]  # type: ignore[index]


async def test_due_holders_names_only_expired_holds(inventory: Inventory) -> None:
    event_id = await loaded(inventory, 4)
    short, long = uuid.uuid4(), uuid.uuid4()
    brief = await inventory.place_hold(
        event_id, HoldRequest(short, uuid.uuid4(), HoldKind.SINGLE, [0, 1], [1, 1], 1, None)
    )
    await inventory.place_hold(
        event_id, HoldRequest(long, uuid.uuid4(), HoldKind.SINGLE, [2], [1], 60_000, None)
    )
    assert isinstance(brief, HoldPlaced)
    await wait_past(inventory, brief.expires_ms)
    assert await inventory.due_holders(event_id, [0, 1, 2, 3]) == [short]


async def test_refusals_off_the_state_table(inventory: Inventory) -> None:
    event_id = await loaded(inventory, 3)
    user, hold_id = uuid.uuid4(), uuid.uuid4()

    async def hold(seat: int, hold: uuid.UUID = hold_id, *, event: uuid.UUID = event_id) -> object:
        placed = await inventory.place_hold(
            event, HoldRequest(hold, user, HoldKind.SINGLE, [seat], [1], 60_000, None)
        )
        return placed.reason if isinstance(placed, HoldRefused) else placed

    assert await hold(0, event=uuid.uuid4()) is Refusal.NOT_LOADED
    assert await hold(3) is Refusal.BAD_SEAT
    assert isinstance(await hold(0), HoldPlaced)
    assert await hold(1) is Refusal.EXISTS
    assert list((await inventory.snapshot(event_id))[1]) == [HELD, FREE, FREE]  # type: ignore[index]
    # The maximum lifetime is the hold's whole TTL: nothing is left to add.
    assert await inventory.extend(event_id, hold_id, 30_000, 60_000) is Refusal.MAX_LIFETIME
    assert await inventory.extend(event_id, uuid.uuid4(), 30_000, 120_000) is Refusal.MISSING
    assert isinstance(await inventory.begin_confirm(event_id, hold_id, user), ConfirmStarted)
    assert await inventory.extend(event_id, hold_id, 30_000, 120_000) is Refusal.CONFIRMING

    brief = uuid.uuid4()
    placed = await inventory.place_hold(
        event_id, HoldRequest(brief, user, HoldKind.SINGLE, [2], [1], 1, None)
    )
    assert isinstance(placed, HoldPlaced)
    await wait_past(inventory, placed.expires_ms)
    assert await inventory.extend(event_id, brief, 30_000, 120_000) is Refusal.EXPIRED


def test_every_script_ships_with_the_package() -> None:
    """Each Lua file is package data (``pyproject.toml``), so an installed hub finds it."""
    root = Path(__file__).parents[3]
    config = tomllib.loads((root / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["hub.inventory"]
    package = root / "hub" / "inventory"
    files = sorted(p.relative_to(package).as_posix() for p in (package / "lua").iterdir())
    assert files == sorted(f"lua/{name}.lua" for name in ("prelude", *scripts.NAMES))
    assert all(any(fnmatch.fnmatch(f, pattern) for pattern in patterns) for f in files)


async def test_a_release_reads_the_waitlist_mark_and_a_join_keeps_it_from_being_dropped(
    inventory: Inventory,
) -> None:
    event_id = await loaded(inventory, 4)
    user = uuid.uuid4()

    async def hold_and_release() -> Released:
        hold_id = uuid.uuid4()
        placed = await inventory.place_hold(
            event_id, HoldRequest(hold_id, user, HoldKind.SINGLE, [0], [100], 60_000, None)
        )
        assert isinstance(placed, HoldPlaced)
        released = await inventory.release(event_id, hold_id)
        assert isinstance(released, Released)
        return released

    assert (await hold_and_release()).waitlist == 0  # nobody ever waited
    seen = await inventory.mark_waitlist(event_id)
    assert (await hold_and_release()).waitlist == seen
    await inventory.mark_waitlist(event_id)  # someone joins after the round read the mark
    assert not await inventory.clear_waitlist(event_id, seen)
    newest = (await hold_and_release()).waitlist
    assert newest > seen
    assert await inventory.clear_waitlist(event_id, newest)
    assert (await hold_and_release()).waitlist == 0
