"""The seat state table of ``hub.inventory``'s docstring, walked cell by cell on a real Redis.

The table is read from the docstring itself, so the documentation cannot drift from the
scripts: each cell puts seat 0 of a fresh event in the column's state, makes the row's
call, and checks the outcome. A next state must be reached through that call (and be
published when the seat's code changed); a refusal or ``-`` must change nothing at all
(seat bytes, seq, every live hold, the owner's count) and publish nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgpack
import pytest

import hub.inventory
from engines.seats import SeatCode
from hub.inventory import (
    HoldKind,
    HoldPlaced,
    HoldRecord,
    HoldRefused,
    HoldRequest,
    HoldStatus,
    Inventory,
    Refusal,
    ReleaseMode,
)
from tests.hub.inventory.conftest import loaded, wait_past

N_SEATS = 4
SEAT = 0
LONG_TTL_MS = 60_000
# Rows about a hold past its expiry: long enough for begin_confirm to come first.
SHORT_TTL_MS = 500
DUE_ROWS = {"expire_due", "begin_late"}
SENTINEL = b"end-of-cell"


@dataclass(frozen=True)
class Cell:
    event: str
    state: str  # FREE | HELD | CONFIRMING | SOLD
    expected: str  # a state in capitals, a refusal in lower case, or "-"


def _read_table(doc: str) -> list[Cell]:
    lines = doc.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["event", "FREE"])
    columns = lines[start].split()[1:]
    cells: list[Cell] = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        event, *outcomes = line.split()
        assert len(outcomes) == len(columns), line
        cells += [Cell(event, state, out) for state, out in zip(columns, outcomes, strict=True)]
    return cells


CELLS = _read_table(hub.inventory.__doc__ or "")


@dataclass
class Seat0:
    inventory: Inventory
    event_id: uuid.UUID
    hold_id: uuid.UUID  # the hold on seat 0, or one that no longer (or never did) exist
    user_id: uuid.UUID


Action = Callable[[Seat0], Awaitable[object]]

ACTIONS: dict[str, Action] = {
    "hold": lambda s: s.inventory.place_hold(
        s.event_id,
        HoldRequest(uuid.uuid4(), uuid.uuid4(), HoldKind.SINGLE, [SEAT], [100], LONG_TTL_MS, None),
    ),
    "hold_stale": lambda s: s.inventory.place_hold(  # made with a copy of an older version
        s.event_id,
        HoldRequest(
            uuid.uuid4(),
            uuid.uuid4(),
            HoldKind.SINGLE,
            [SEAT],
            [100],
            LONG_TTL_MS,
            None,
            version=7,
        ),
    ),
    "release": lambda s: s.inventory.release(s.event_id, s.hold_id, user_id=s.user_id),
    "expire": lambda s: s.inventory.release(s.event_id, s.hold_id, mode=ReleaseMode.EXPIRE),
    "expire_due": lambda s: s.inventory.release(s.event_id, s.hold_id, mode=ReleaseMode.EXPIRE),
    "force": lambda s: s.inventory.release(s.event_id, s.hold_id, mode=ReleaseMode.FORCE),
    "begin_confirm": lambda s: s.inventory.begin_confirm(s.event_id, s.hold_id, s.user_id),
    "begin_late": lambda s: s.inventory.begin_confirm(s.event_id, s.hold_id, s.user_id),
    "abort_confirm": lambda s: s.inventory.abort_confirm(s.event_id, s.hold_id),
    "finish_confirm": lambda s: s.inventory.finish_confirm(s.event_id, s.hold_id, [SEAT]),
    "set_sold": lambda s: s.inventory.set_seats(s.event_id, [SEAT], SeatCode.SOLD),
    "set_free": lambda s: s.inventory.set_seats(s.event_id, [SEAT], SeatCode.FREE),
    "rebuild_sold": lambda s: s.inventory.load(s.event_id, N_SEATS, [SEAT], {}, force=True),
    "rebuild_free": lambda s: s.inventory.load(s.event_id, N_SEATS, [], {}, force=True),
}


def test_the_table_names_every_event_and_every_state() -> None:
    assert [c.event for c in CELLS[::4]] == list(ACTIONS)
    assert {c.state for c in CELLS} == {"FREE", "HELD", "CONFIRMING", "SOLD"}


async def _seat_in(inventory: Inventory, state: str, ttl_ms: int) -> Seat0:
    event_id = await loaded(inventory, N_SEATS)
    user_id, hold_id = uuid.uuid4(), uuid.uuid4()
    seat = Seat0(inventory, event_id, hold_id, user_id)
    if state == "FREE":
        return seat
    placed = await inventory.place_hold(
        event_id, HoldRequest(hold_id, user_id, HoldKind.SINGLE, [SEAT], [100], ttl_ms, 10)
    )
    assert isinstance(placed, HoldPlaced)
    if state != "HELD":
        assert not isinstance(await inventory.begin_confirm(event_id, hold_id, user_id), Refusal)
    if state == "SOLD":
        await inventory.finish_confirm(event_id, hold_id, [SEAT])
    if ttl_ms != LONG_TTL_MS and state in ("HELD", "CONFIRMING"):
        await wait_past(inventory, placed.expires_ms)
    return seat


async def _everything(seat: Seat0) -> tuple[Any, ...]:
    """All the state a call could change, as values."""
    inventory, event_id = seat.inventory, seat.event_id
    holds: dict[uuid.UUID, HoldRecord | None] = {
        h: await inventory.get_hold(event_id, h) for h in await inventory.hold_ids(event_id)
    }
    owned = await inventory.owned_count(event_id, seat.user_id)
    return await inventory.snapshot(event_id), holds, owned


async def _hold_on_seat(seat: Seat0) -> HoldRecord | None:
    for hold_id in await seat.inventory.hold_ids(seat.event_id):
        record = await seat.inventory.get_hold(seat.event_id, hold_id)
        if record is not None and SEAT in record.seats:
            return record
    return None


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: f"{c.event}-{c.state}")
async def test_seat_state_table(inventory: Inventory, cell: Cell) -> None:
    ttl = SHORT_TTL_MS if cell.event in DUE_ROWS else LONG_TTL_MS
    seat = await _seat_in(inventory, cell.state, ttl)
    channel = inventory.channel(seat.event_id)
    pubsub = inventory.client.pubsub()
    await pubsub.subscribe(channel)
    try:
        confirmed = await pubsub.get_message(timeout=5)
        assert confirmed is not None and confirmed["type"] == "subscribe"
        before = await _everything(seat)
        result = await ACTIONS[cell.event](seat)
        after = await _everything(seat)
        # Published after the call returned: anything the call published arrives first.
        await inventory.client.publish(channel, SENTINEL)
        published: list[dict[str, Any]] = []
        while (message := await pubsub.get_message(timeout=5)) is not None:
            if message["data"] == SENTINEL:
                break
            published.append(msgpack.unpackb(message["data"]))
        else:
            pytest.fail("the sentinel never arrived")
    finally:
        await pubsub.aclose()

    refusal = result.reason if isinstance(result, HoldRefused) else result
    if cell.expected == "-" or cell.expected.islower():
        if cell.expected == "-":
            assert not isinstance(refusal, Refusal)
        else:
            assert refusal is Refusal(cell.expected)
        assert after == before, "a refused or empty call changed state"
        assert published == []
        return

    assert not isinstance(refusal, Refusal)
    snapshot_before, snapshot_after = before[0], after[0]
    assert snapshot_before is not None and snapshot_after is not None
    code_before = SeatCode(snapshot_before[1][SEAT])
    expected = SeatCode.HELD if cell.expected == "CONFIRMING" else SeatCode[cell.expected]
    assert SeatCode(snapshot_after[1][SEAT]) is expected
    if cell.expected in ("HELD", "CONFIRMING"):
        holding = await _hold_on_seat(seat)
        assert holding is not None and holding.status is HoldStatus(cell.expected.lower())
    if cell.event.startswith("rebuild"):
        assert published == [{"t": "reset", "seq": snapshot_after[0]}]
        assert snapshot_after[0] >= snapshot_before[0]
    elif expected is code_before:
        assert published == [] and snapshot_after[0] == snapshot_before[0]
    else:
        seq = snapshot_before[0] + 1
        assert published == [{"t": "seats", "seq": seq, "changes": [[SEAT, expected]]}]
        assert snapshot_after[0] == seq
