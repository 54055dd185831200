"""Every way seats come free goes through ``releases``, and the freed seats reach the head
of the waitlist — or, for a cancelled event, no one.

Each test fills a two-seat event, puts a user on the waitlist (nothing free: they wait),
frees seats by one path, and checks the waiting user is offered exactly those seats as a
hold in their name.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from engines.seats import SeatCode
from hub.context import Hub
from hub.errors import PaymentFailed
from hub.payments import PaymentDeclined
from hub.services import bulk
from tests.conftest import Account, register
from tests.factories import make_event
from tests.hub.api.booking_helpers import API, book, hold_ok, seat_map, statuses
from tests.waiting import eventually


class Declining:
    """A payment provider that declines every charge once ``gate`` opens."""

    name = "declining"

    def __init__(self) -> None:
        self.gate = asyncio.Event()

    async def charge(self, amount_cents: int, user_id: uuid.UUID, reference: str) -> str:
        await self.gate.wait()
        raise PaymentDeclined("declined for the test")

    async def refund(
        self, amount_cents: int, user_id: uuid.UUID, reference: str, charge_ref: str
    ) -> str:
        return "re_never"


@pytest.fixture
def declining(hub: Hub) -> Iterator[Declining]:
    previous = hub.payments
    provider = Declining()
    hub.payments = provider
    yield provider
    hub.payments = previous


async def _two_seat_event(client: httpx.AsyncClient, admin: Account) -> tuple[str, list[str]]:
    event = await make_event(client, admin, rows=1, seats_per_row=1)  # Orchestra 1 + Balcony 1
    return event["id"], [s["id"] for s in await seat_map(client, event["id"])]


async def _wait_in_line(
    client: httpx.AsyncClient, who: Account, event_id: str, quantity: int = 1
) -> None:
    joined = await client.post(
        f"{API}/events/{event_id}/waitlist", json={"quantity": quantity}, headers=who.headers
    )
    assert joined.status_code == 201, joined.text
    assert joined.json()["status"] == "waiting"


async def _entry(client: httpx.AsyncClient, who: Account, event_id: str) -> dict[str, Any]:
    response = await client.get(f"{API}/events/{event_id}/waitlist", headers=who.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _offered(
    client: httpx.AsyncClient, who: Account, event_id: str, within: float = 5.0
) -> set[str]:
    """The seat ids offered to ``who`` (waiting for the offer to be made)."""

    async def made() -> bool:
        return (await _entry(client, who, event_id))["offer"] is not None

    assert await eventually(made, within), await _entry(client, who, event_id)
    entry = await _entry(client, who, event_id)
    assert entry["status"] == "offered"
    seats = {s["id"] for s in entry["offer"]["seats"]}
    shown = statuses(await seat_map(client, event_id))
    assert {shown[s] for s in seats} == {"held"}  # held for them, free for no one else
    return seats


async def test_a_deleted_hold_is_offered(
    client: httpx.AsyncClient, admin: Account, user: Account, other_user: Account
) -> None:
    event_id, seats = await _two_seat_event(client, admin)
    held = await hold_ok(client, user, event_id, seat_ids=seats)
    await _wait_in_line(client, other_user, event_id)
    gone = await client.delete(f"{API}/holds/{held['hold_id']}", headers=user.headers)
    assert gone.status_code == 204
    assert len(await _offered(client, other_user, event_id)) == 1


async def test_an_expired_hold_is_offered(
    client: httpx.AsyncClient, quick: httpx.AsyncClient, admin: Account, user: Account
) -> None:
    event_id, seats = await _two_seat_event(client, admin)
    await hold_ok(quick, user, event_id, seat_ids=seats)  # lasts one second
    waiting = await register(client)
    await _wait_in_line(client, waiting, event_id, quantity=2)
    assert await _offered(client, waiting, event_id) == set(seats)


async def test_a_failed_one_call_booking_is_offered(
    client: httpx.AsyncClient,
    hub: Hub,
    admin: Account,
    user: Account,
    other_user: Account,
    declining: Declining,
) -> None:
    event_id, seats = await _two_seat_event(client, admin)
    first = await hold_ok(client, user, event_id, seat_ids=seats[:1])
    buyer = await register(client)
    booking = asyncio.create_task(book(client, buyer, event_id=event_id, seat_ids=seats[1:]))

    async def both_held() -> bool:
        return set(statuses(await seat_map(client, event_id)).values()) == {"held"}

    assert await eventually(both_held)  # the one-call booking holds its seat, then pays
    await _wait_in_line(client, other_user, event_id)
    declining.gate.set()
    failed = await booking
    assert failed.status_code == 402, failed.text
    assert await _offered(client, other_user, event_id) == set(seats[1:])
    assert statuses(await seat_map(client, event_id))[seats[0]] == "held"
    assert first["seats"][0]["id"] == seats[0]


async def test_a_failed_group_booking_is_offered(
    client: httpx.AsyncClient,
    hub: Hub,
    admin: Account,
    user: Account,
    other_user: Account,
    declining: Declining,
) -> None:
    event_id, seats = await _two_seat_event(client, admin)
    request = bulk.GroupRequest(event_id=uuid.UUID(event_id), quantity=2, group_name="Duo")
    booking = asyncio.create_task(bulk.book_group(hub, uuid.UUID(user.id), request))

    async def both_held() -> bool:
        return set(statuses(await seat_map(client, event_id)).values()) == {"held"}

    assert await eventually(both_held)  # the group holds its seats, then pays
    await _wait_in_line(client, other_user, event_id, quantity=2)
    declining.gate.set()
    with pytest.raises(PaymentFailed):
        await booking
    # All or nothing: the group keeps no seat, and both go down the line.
    assert await _offered(client, other_user, event_id) == set(seats)


async def test_a_forced_release_after_postgresql_refused_is_offered(
    client: httpx.AsyncClient, hub: Hub, admin: Account, user: Account, other_user: Account
) -> None:
    event_id, seats = await _two_seat_event(client, admin)
    sold = await book(client, user, event_id=event_id, seat_ids=seats[:1])
    assert sold.status_code == 201, sold.text
    # Redis is wrong about the sold seat: it says free. PostgreSQL will refuse it.
    await hub.inventory.set_seats(uuid.UUID(event_id), [0], SeatCode.FREE)
    buyer = await register(client)
    held = await hold_ok(client, buyer, event_id, seat_ids=seats)
    await _wait_in_line(client, other_user, event_id)
    refused = await book(client, buyer, hold_id=held["hold_id"])
    assert refused.status_code == 409 and refused.json()["code"] == "seat_unavailable"
    # The sold seat shows sold again; the other seat of the hold goes down the line.
    assert await _offered(client, other_user, event_id) == set(seats[1:])
    assert statuses(await seat_map(client, event_id))[seats[0]] == "sold"


async def test_a_cancelled_booking_is_offered(
    client: httpx.AsyncClient, admin: Account, user: Account, other_user: Account
) -> None:
    event_id, seats = await _two_seat_event(client, admin)
    booked = await book(client, user, event_id=event_id, seat_ids=seats)
    assert booked.status_code == 201, booked.text
    await _wait_in_line(client, other_user, event_id, quantity=2)
    cancelled = await client.post(
        f"{API}/bookings/{booked.json()['id']}/cancel", headers=user.headers
    )
    assert cancelled.status_code == 200
    assert await _offered(client, other_user, event_id) == set(seats)


async def test_a_lapsed_offer_passes_to_the_next_in_line(
    client: httpx.AsyncClient, quick: httpx.AsyncClient, admin: Account, user: Account
) -> None:
    event_id, seats = await _two_seat_event(client, admin)
    booked = await book(client, user, event_id=event_id, seat_ids=seats)
    assert booked.status_code == 201, booked.text
    first, second = await register(client), await register(client)
    await _wait_in_line(quick, first, event_id, quantity=2)
    await _wait_in_line(quick, second, event_id, quantity=2)
    cancelled = await quick.post(
        f"{API}/bookings/{booked.json()['id']}/cancel", headers=user.headers
    )
    assert cancelled.status_code == 200
    assert await _offered(quick, first, event_id) == set(seats)  # lasts one second
    assert await _offered(quick, second, event_id) == set(seats)
    assert (await _entry(quick, first, event_id))["status"] == "lapsed"


async def test_a_cancelled_event_offers_nothing(
    client: httpx.AsyncClient, hub: Hub, admin: Account, user: Account, other_user: Account
) -> None:
    event_id, seats = await _two_seat_event(client, admin)
    await hold_ok(client, user, event_id, seat_ids=seats[:1])
    booked = await book(client, user, event_id=event_id, seat_ids=seats[1:])
    assert booked.status_code == 201, booked.text
    await _wait_in_line(client, other_user, event_id)
    done = await client.post(f"{API}/events/{event_id}/cancel", headers=admin.headers)
    assert done.status_code == 200, done.text
    entry = await _entry(client, other_user, event_id)
    assert entry["status"] == "closed" and entry["offer"] is None
    assert await hub.inventory.hold_ids(uuid.UUID(event_id)) == []
    assert set(statuses(await seat_map(client, event_id)).values()) == {"free"}


async def test_a_cancelled_booking_is_refunded_after_commit(
    client: httpx.AsyncClient, hub: Hub, admin: Account, user: Account
) -> None:
    from hub.services import refunds

    event_id, seats = await _two_seat_event(client, admin)
    booked = await book(client, user, event_id=event_id, seat_ids=seats)
    assert booked.status_code == 201, booked.text
    assert booked.json()["refund"] is None
    cancelled = await client.post(
        f"{API}/bookings/{booked.json()['id']}/cancel", headers=user.headers
    )
    refund = cancelled.json()["refund"]
    assert refund["amount"] == booked.json()["total"]
    assert refund["status"] in ("due", "paid")  # the leader may have paid it already
    await refunds.pay_due_refunds(hub)
    again = await client.get(f"{API}/bookings/{booked.json()['id']}", headers=user.headers)
    assert again.json()["refund"]["status"] == "paid"
    assert again.json()["refund"]["paid_at"] is not None
    async with hub.db.connection() as con:
        paid = await con.fetchval(
            "SELECT count(*) FROM payments WHERE booking_id = $1 AND kind = 'refund'",
            uuid.UUID(booked.json()["id"]),
        )
    assert paid == 1  # paid once, however many passes ran
