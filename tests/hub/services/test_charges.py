"""A confirmation's charge is noted with its confirming hold until the confirmation settles:
the leader refunds the charge of one whose process died before its booking was written,
keeps the one whose booking stands, and an undone confirmation is refunded exactly once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from hub.context import Hub
from hub.services import charges, expiry
from tests.conftest import Account
from tests.factories import make_event
from tests.hub.api.booking_helpers import (
    API,
    ScriptedPayments,
    book,
    hold_ok,
    seat_map,
    statuses,
    write_booking_behind,
)


@pytest.fixture
def payments(hub: Hub) -> Iterator[ScriptedPayments]:
    previous = hub.payments
    scripted = hub.payments = ScriptedPayments()
    yield scripted
    hub.payments = previous


async def _confirming(
    client: httpx.AsyncClient, hub: Hub, user: Account, event: dict[str, Any]
) -> tuple[uuid.UUID, dict[str, Any]]:
    """A hold its process marked confirming and charged for, then died: (hold id, hold)."""
    held = await hold_ok(client, user, event["id"], quantity=2)
    event_id, hold_id = uuid.UUID(event["id"]), uuid.UUID(held["hold_id"])
    started = await hub.inventory.begin_confirm(event_id, hold_id, uuid.UUID(user.id))
    assert not isinstance(started, str)
    charge = charges.Charge(user.id, f"EVT-C{uuid.uuid4().hex[:7].upper()}", 24000, "ch_dead")
    assert await charges.note(hub, event_id, hold_id, charge)
    return hold_id, held


async def _noted(hub: Hub, event: dict[str, Any], hold_id: uuid.UUID) -> bool:
    key = hub.store.keys.event(event["id"], f"hold:{hold_id}")
    return bool(await hub.store.client.hexists(key, "charge"))


async def test_the_charge_of_a_confirmation_whose_process_died_is_refunded(
    client: httpx.AsyncClient, hub: Hub, admin: Account, user: Account, payments: ScriptedPayments
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=4)
    hold_id, held = await _confirming(client, hub, user, event)

    assert await expiry.reconcile_stuck(hub, [uuid.UUID(event["id"])]) == 0  # may still commit
    assert payments.refunds == 0 and await _noted(hub, event, hold_id)

    assert await expiry.reconcile_stuck(hub, [uuid.UUID(event["id"])], stuck_after_ms=0) == 1
    assert payments.refunds == 1
    assert await expiry.reconcile_stuck(hub, [uuid.UUID(event["id"])], stuck_after_ms=0) == 0
    assert payments.refunds == 1  # once
    now = statuses(await seat_map(client, event["id"]))
    assert [now[s["id"]] for s in held["seats"]] == ["free", "free"]


async def test_the_charge_of_a_booking_that_was_written_is_kept(
    client: httpx.AsyncClient, hub: Hub, admin: Account, user: Account, payments: ScriptedPayments
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=4)
    hold_id, held = await _confirming(client, hub, user, event)
    # The process committed, then died.
    await write_booking_behind(
        hub, uuid.UUID(event["id"]), uuid.UUID(user.id), hold_id, [s["id"] for s in held["seats"]]
    )
    assert await expiry.reconcile_stuck(hub, [uuid.UUID(event["id"])], stuck_after_ms=0) == 1
    assert payments.refunds == 0 and not await _noted(hub, event, hold_id)
    now = statuses(await seat_map(client, event["id"]))
    assert [now[s["id"]] for s in held["seats"]] == ["sold", "sold"]


async def test_an_undone_confirmation_is_refunded_once_and_a_booking_keeps_no_note(
    client: httpx.AsyncClient, hub: Hub, admin: Account, user: Account, payments: ScriptedPayments
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=4)
    held = await hold_ok(client, user, event["id"], quantity=1)
    booked = await book(client, user, hold_id=held["hold_id"])
    assert booked.status_code == 201, booked.text
    assert payments.charges == 1 and not await _noted(hub, event, uuid.UUID(held["hold_id"]))

    other = await hold_ok(client, user, event["id"], quantity=1)
    async with hub.db.connection() as con:  # cancelled behind the cached copy: undone
        await con.execute(
            "UPDATE events SET status = 'cancelled' WHERE id = $1", uuid.UUID(event["id"])
        )
    refused = await book(client, user, hold_id=other["hold_id"])
    assert refused.status_code == 409, refused.text
    assert payments.refunds == 1 and not await _noted(hub, event, uuid.UUID(other["hold_id"]))
    again = await client.get(f"{API}/holds/{other['hold_id']}", headers=user.headers)
    assert again.status_code == 200, again.text  # held again, not confirming: nothing to settle
    assert await expiry.reconcile_stuck(hub, [uuid.UUID(event["id"])], stuck_after_ms=0) == 0
    assert payments.refunds == 1


async def test_a_note_is_taken_once_and_only_from_a_confirming_hold(
    client: httpx.AsyncClient, hub: Hub, admin: Account, user: Account
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=4)
    event_id = uuid.UUID(event["id"])
    hold_id, _ = await _confirming(client, hub, user, event)
    taken = await charges.take(hub, event_id, hold_id)
    assert taken is not None and taken.charge_ref == "ch_dead" and taken.amount_cents == 24000
    assert await charges.take(hub, event_id, hold_id) is None  # the other caller does not refund

    gone = uuid.uuid4()  # a hold settled meanwhile: the note creates no record
    assert not await charges.note(hub, event_id, gone, taken)
    key = hub.store.keys.event(event["id"], f"hold:{gone}")
    assert not await hub.store.client.exists(key)


async def test_a_release_that_fails_keeps_the_note_for_the_next_settle(
    client: httpx.AsyncClient,
    hub: Hub,
    admin: Account,
    user: Account,
    payments: ScriptedPayments,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=4)
    event_id = uuid.UUID(event["id"])
    hold_id, _ = await _confirming(client, hub, user, event)

    async def failing(*_: Any, **__: Any) -> Any:
        raise RuntimeError("Redis failed between the take and the release")

    with monkeypatch.context() as patched:
        patched.setattr(hub.inventory, "release", failing)
        with pytest.raises(RuntimeError):
            await expiry.reconcile_stuck(hub, [event_id], stuck_after_ms=0)
    assert payments.refunds == 0 and await _noted(hub, event, hold_id)
    assert await expiry.reconcile_stuck(hub, [event_id], stuck_after_ms=0) == 1
    assert payments.refunds == 1
