"""Bulk group bookings, at the service: all or nothing under contention and failure.

Two groups racing for most of an event, a group against a stream of small holds, a group
whose card is declined, and the discount arithmetic of a group's booking in cents.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from hub.context import Hub
from hub.errors import Busy, HubError, PaymentFailed, SeatUnavailable, SoldOut
from hub.services import bulk, holds
from hub.services.bulk import GroupRequest
from tests.conftest import Account, register
from tests.factories import make_event
from tests.hub.api.booking_helpers import seat_map, statuses
from tests.hub.services.test_releases import Declining


@pytest.fixture
def declining(hub: Hub) -> Iterator[Declining]:
    previous = hub.payments
    provider = Declining()
    provider.gate.set()
    hub.payments = provider
    yield provider
    hub.payments = previous


def _group(event_id: str, quantity: int, **extra: Any) -> GroupRequest:
    return GroupRequest(
        event_id=uuid.UUID(event_id), quantity=quantity, group_name="Choir", **extra
    )


async def _booked(hub: Hub, user: Account, request: GroupRequest) -> dict[str, Any]:
    view = await bulk.book_group(hub, uuid.UUID(user.id), request)
    assert isinstance(view, dict)
    return view


async def _active_tickets(hub: Hub, event_id: str) -> list[uuid.UUID]:
    rows = await hub.db.fetch(
        "SELECT seat_id FROM tickets WHERE event_id = $1 AND active", uuid.UUID(event_id)
    )
    return [row["seat_id"] for row in rows]


async def test_two_groups_of_60_on_100_seats_one_wins_and_no_seat_is_shared(
    client: httpx.AsyncClient, hub: Hub, admin: Account, user: Account, other_user: Account
) -> None:
    event = await make_event(client, admin, rows=5, seats_per_row=10)  # 100 seats
    results = await asyncio.gather(
        _booked(hub, user, _group(event["id"], 60)),
        _booked(hub, other_user, _group(event["id"], 60)),
        return_exceptions=True,
    )
    won = [r for r in results if isinstance(r, dict)]
    lost = [r for r in results if not isinstance(r, dict)]
    assert len(won) == 1 and len(lost) == 1, results
    assert isinstance(lost[0], SoldOut)
    seats = {str(s["id"]) for s in won[0]["seats"]}
    assert len(seats) == 60
    tickets = await _active_tickets(hub, event["id"])
    assert sorted(map(str, tickets)) == sorted(seats)
    shown = statuses(await seat_map(client, event["id"]))
    assert sum(1 for s in shown.values() if s == "sold") == 60
    assert sum(1 for s in shown.values() if s == "free") == 40  # the loser holds nothing


async def test_a_group_against_a_stream_of_small_holds_shares_no_seat(
    client: httpx.AsyncClient, hub: Hub, admin: Account, user: Account
) -> None:
    event = await make_event(client, admin, rows=6, seats_per_row=12)  # 144 seats
    event_id = uuid.UUID(event["id"])
    buyers = [uuid.UUID((await register(client)).id) for _ in range(12)]
    small: list[set[str]] = []
    tried_at: list[float] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    go = asyncio.Event()

    async def stream(buyer: uuid.UUID) -> None:
        await go.wait()
        while not stop.is_set() and sum(len(s) for s in small) < 60:
            tried_at.append(loop.time())
            try:
                held = await holds.place_hold(hub, buyer, event_id, quantity=2)
            except (SoldOut, SeatUnavailable, Busy):
                await asyncio.sleep(0)
                continue
            except HubError as exc:  # the per-user cap: this buyer is done
                assert exc.code == "limit_exceeded"
                return
            small.append({str(s["id"]) for s in held["seats"]})

    streams = [asyncio.create_task(stream(b)) for b in buyers]
    await asyncio.sleep(0)  # every stream waits at the gate
    started = loop.time()
    go.set()  # the group and the small holds start together
    group = await _booked(hub, user, _group(event["id"], 40))
    ended = loop.time()
    stop.set()
    await asyncio.gather(*streams)
    grouped = {str(s["id"]) for s in group["seats"]}
    held_seats = [seat for hold in small for seat in hold]
    assert len(grouped) == 40
    # Small holds were being tried while the group was assigned and held.
    assert any(started <= t <= ended for t in tried_at)
    assert len(held_seats) == len(set(held_seats))  # no two small holds share a seat
    assert not grouped & set(held_seats)
    shown = statuses(await seat_map(client, event["id"]))
    assert {shown[s] for s in grouped} == {"sold"}
    assert {shown[s] for s in held_seats} <= {"held"}


async def test_a_declined_group_leaves_every_seat_free(
    client: httpx.AsyncClient, hub: Hub, admin: Account, user: Account, declining: Declining
) -> None:
    event = await make_event(client, admin, rows=5, seats_per_row=10)
    with pytest.raises(PaymentFailed):
        await bulk.book_group(hub, uuid.UUID(user.id), _group(event["id"], 30))
    shown = statuses(await seat_map(client, event["id"]))
    assert set(shown.values()) == {"free"}
    assert await _active_tickets(hub, event["id"]) == []
    assert await hub.inventory.hold_ids(uuid.UUID(event["id"])) == []


async def test_group_discount_arithmetic_in_cents(
    client: httpx.AsyncClient, hub: Hub, admin: Account, user: Account
) -> None:
    event = await make_event(
        client, admin, rows=5, seats_per_row=10, prices={"Orchestra": "33.33", "Balcony": "33.33"}
    )
    code = f"G{uuid.uuid4().hex[:8].upper()}"
    await hub.db.execute(
        "INSERT INTO discount_codes (code, percent, max_uses) VALUES ($1, 5, 10)", code
    )
    booking = await _booked(hub, user, _group(event["id"], 25, discount_code=code.lower()))
    # 25 x 33.33 = 833.25; 10 % group + 5 % code = 15 % = 124.9875 -> 124.99 (half up);
    # the group's 10 % alone is 83.325 -> 83.33, the code gets the rest: 41.66.
    assert booking["subtotal"] == Decimal("833.25")
    assert booking["discount_rate"] == Decimal("0.15")
    assert booking["discount"] == Decimal("124.99")
    assert booking["total"] == Decimal("708.26")
    assert booking["group_name"] == "Choir" and booking["discount_code"] == code
    receipt = booking["receipt"]
    assert [(d["kind"], d["name"], d["rate"], d["amount"]) for d in receipt["discounts"]] == [
        ("group", "Group of 25 (10%)", Decimal("0.10"), Decimal("83.33")),
        ("code", code, Decimal("0.05"), Decimal("41.66")),
    ]
    assert receipt["subtotal"] - sum(d["amount"] for d in receipt["discounts"]) == receipt["total"]
    assert sum(line["price"] for line in receipt["lines"]) == receipt["subtotal"]


async def test_group_size_limits(client: httpx.AsyncClient, hub: Hub, user: Account) -> None:
    anywhere = str(uuid.uuid4())  # checked before the event is even read
    with pytest.raises(HubError) as over:
        await bulk.book_group(hub, uuid.UUID(user.id), _group(anywhere, 501))
    assert over.value.code == "limit_exceeded" and over.value.extra["limit"] == 500
    with pytest.raises(HubError) as under:
        await bulk.book_group(hub, uuid.UUID(user.id), _group(anywhere, 1))
    assert under.value.code == "validation_error"
