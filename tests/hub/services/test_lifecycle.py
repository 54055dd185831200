"""The hold lifecycle over real servers: expiry by the leader, extension, reconciliation of
confirmations left behind, the waitlist, event cancellation, and leader failover."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from hub.context import Hub
from hub.db import bookings as bookings_db
from hub.services import expiry
from hub.settings import Settings
from loadtest.client import WatchClient
from tests.conftest import Account, register
from tests.factories import make_event
from tests.hub.api.booking_helpers import API, book, hold_ok, ids_in, seat_map, statuses
from tests.live import WsServer, hub_process, serve
from tests.waiting import eventually


@pytest.fixture(scope="module")
async def short(settings: Settings) -> AsyncIterator[WsServer]:
    """A second hub on the same servers, served on a socket, whose holds last one second
    (three at most, with the one extension) and whose waitlist offers last one second."""
    quick = settings.replace(
        hold_ttl_seconds=1, hold_max_lifetime_seconds=3, offer_ttl_seconds=1, ws_tick_ms=20
    )
    async with serve(quick) as server:
        yield server


@pytest.fixture
async def quick(short: WsServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=short.base) as client:
        yield client


def _ms(iso: str) -> float:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000


async def _waitlist(client: httpx.AsyncClient, who: Account, event_id: str) -> dict[str, Any]:
    response = await client.get(f"{API}/events/{event_id}/waitlist", headers=who.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _join(client: httpx.AsyncClient, who: Account, event_id: str, n: int) -> dict[str, Any]:
    response = await client.post(
        f"{API}/events/{event_id}/waitlist", json={"quantity": n}, headers=who.headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_expired_hold_is_released_within_a_second_and_watchers_see_it(
    client: httpx.AsyncClient,
    quick: httpx.AsyncClient,
    short: WsServer,
    admin: Account,
    user: Account,
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=4)
    seats = await seat_map(client, event["id"])
    seat = ids_in(seats, "Orchestra")[1]
    index = [s["id"] for s in seats].index(seat)
    watcher = await WatchClient.open(short.event_url(event["id"]))
    try:
        await watcher.next_seat_message()
        assert watcher.mirror.seats[index] == 0  # watched before: free
        held = await hold_ok(quick, user, event["id"], seat_ids=[seat])
        expires_ms = _ms(held["expires_at"])

        async def until(code: int) -> float:
            while watcher.mirror.seats[index] != code:
                await watcher.next_seat_message()
            return time.time() * 1000

        await asyncio.wait_for(until(1), 3)
        seen_free_ms = await asyncio.wait_for(until(0), 5)
        # Swept within a second of the expiry (the leader sweeps four times a second).
        assert seen_free_ms - expires_ms < 1000, seen_free_ms - expires_ms
        assert watcher.mirror.gaps == 0
    finally:
        await watcher.close()
    assert statuses(await seat_map(client, event["id"]))[seat] == "free"
    gone = await quick.get(f"{API}/holds/{held['hold_id']}", headers=user.headers)
    assert gone.status_code == 410


async def test_extension_is_honoured_once(
    client: httpx.AsyncClient, quick: httpx.AsyncClient, admin: Account, user: Account
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=2)
    held = await hold_ok(quick, user, event["id"], quantity=1)
    url = f"{API}/holds/{held['hold_id']}/extend"
    extended = await quick.post(url, headers=user.headers)
    assert extended.status_code == 200, extended.text
    assert _ms(extended.json()["expires_at"]) - _ms(held["expires_at"]) == pytest.approx(
        1000, abs=5
    )
    again = await quick.post(url, headers=user.headers)
    assert again.status_code == 409 and again.json()["code"] == "conflict"
    await asyncio.sleep(1.2)  # past the original expiry, inside the extended one
    assert (
        await quick.get(f"{API}/holds/{held['hold_id']}", headers=user.headers)
    ).status_code == 200
    await asyncio.sleep(1.2)
    expired = await quick.get(f"{API}/holds/{held['hold_id']}", headers=user.headers)
    assert expired.status_code == 410
    other = await register(quick)
    foreign = await quick.post(url, headers=other.headers)
    assert foreign.status_code == 404


async def test_confirmations_left_behind_are_settled_from_postgresql(
    client: httpx.AsyncClient, hub: Hub, admin: Account, user: Account
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=4)
    event_id = uuid.UUID(event["id"])
    seats = await seat_map(client, event["id"])
    ids = ids_in(seats, "Orchestra")
    index = {s["id"]: i for i, s in enumerate(seats)}
    owner = uuid.UUID(user.id)

    # A process marks two holds confirming and dies: one before its transaction committed,
    # one after (the booking is in PostgreSQL, Redis never heard).
    lost = await hold_ok(client, user, event["id"], seat_ids=ids[:2])
    committed = await hold_ok(client, user, event["id"], seat_ids=ids[2:])
    for held in (lost, committed):
        started = await hub.inventory.begin_confirm(event_id, uuid.UUID(held["hold_id"]), owner)
        assert not isinstance(started, str)
    async with hub.db.transaction() as con:
        row = await bookings_db.insert_booking(
            con,
            reference=f"EVT-T{uuid.uuid4().hex[:7].upper()}",
            event_id=event_id,
            user_id=owner,
            hold_id=uuid.UUID(committed["hold_id"]),
            subtotal_cents=24000,
            discount_cents=0,
            discount_bp=0,
            discount_code=None,
            total_cents=24000,
            group_name=None,
        )
        await bookings_db.insert_tickets(
            con, row["id"], event_id, [uuid.UUID(s) for s in ids[2:]], [12000, 12000]
        )
    # Not stuck yet: left alone.
    assert await expiry.reconcile_stuck(hub, [event_id]) == 0
    assert await expiry.reconcile_stuck(hub, [event_id], stuck_after_ms=0) == 2
    after = await seat_map(client, event["id"])
    assert [after[index[s]]["status"] for s in ids] == ["free", "free", "sold", "sold"]
    assert await hub.inventory.hold_ids(event_id) == []
    listed = await client.get(f"{API}/bookings", headers=user.headers)
    assert [b["id"] for b in listed.json()["items"]] == [str(row["id"])]


async def test_waitlist_offer_on_cancellation_then_booked(
    client: httpx.AsyncClient, admin: Account, user: Account, other_user: Account
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=1)  # 2 seats
    booked = await book(client, user, event_id=event["id"], quantity=2)
    assert booked.status_code == 201, booked.text
    joined = await _join(client, other_user, event["id"], 2)
    assert joined == {"position": 1, "quantity": 2, "status": "waiting"}
    assert (await _waitlist(client, other_user, event["id"]))["offer"] is None

    cancel = await client.post(f"{API}/bookings/{booked.json()['id']}/cancel", headers=user.headers)
    assert cancel.status_code == 200
    state = await _waitlist(client, other_user, event["id"])
    assert state["status"] == "offered" and state["offer"] is not None
    offered = {s["id"] for s in state["offer"]["seats"]}
    assert offered == {s["id"] for s in booked.json()["seats"]}
    # The offered seats are held for the offered user, not free for anyone.
    assert {statuses(await seat_map(client, event["id"]))[s] for s in offered} == {"held"}
    taken = await book(client, other_user, hold_id=state["offer"]["hold_id"])
    assert taken.status_code == 201, taken.text
    assert (await _waitlist(client, other_user, event["id"]))["status"] == "booked"


async def test_waitlist_offer_on_expiry(
    client: httpx.AsyncClient,
    quick: httpx.AsyncClient,
    admin: Account,
    user: Account,
    other_user: Account,
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=1)
    await hold_ok(quick, user, event["id"], quantity=2)  # lasts one second
    await _join(client, other_user, event["id"], 1)

    async def offered() -> bool:
        return (await _waitlist(client, other_user, event["id"]))["status"] == "offered"

    assert await eventually(offered, within=3)


async def test_lapsed_offer_passes_on_and_the_user_may_rejoin(
    client: httpx.AsyncClient, quick: httpx.AsyncClient, admin: Account, user: Account
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=1)
    first, second = await register(client), await register(client)
    booked = await book(client, user, event_id=event["id"], quantity=2)
    assert booked.status_code == 201
    assert (await _join(client, first, event["id"], 2))["position"] == 1
    assert (await _join(client, second, event["id"], 2))["position"] == 2
    # Cancelled through the one-second-offer hub: the offer to `first` lapses at once.
    cancel = await quick.post(f"{API}/bookings/{booked.json()['id']}/cancel", headers=user.headers)
    assert cancel.status_code == 200
    assert (await _waitlist(client, first, event["id"]))["status"] == "offered"

    async def passed_on() -> bool:
        return (await _waitlist(client, second, event["id"]))["status"] == "offered"

    assert await eventually(passed_on, within=4)
    assert (await _waitlist(client, first, event["id"]))["status"] == "lapsed"
    rejoined = await _join(client, first, event["id"], 1)
    assert rejoined["status"] == "waiting" and rejoined["position"] == 2  # behind `second`


async def test_leave_and_rejoin(client: httpx.AsyncClient, admin: Account, user: Account) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=1)
    await book(client, await register(client), event_id=event["id"], quantity=2)
    await _join(client, user, event["id"], 1)
    twice = await client.post(
        f"{API}/events/{event['id']}/waitlist", json={"quantity": 1}, headers=user.headers
    )
    assert twice.status_code == 409
    left = await client.delete(f"{API}/events/{event['id']}/waitlist", headers=user.headers)
    assert left.status_code == 204
    gone = await client.get(f"{API}/events/{event['id']}/waitlist", headers=user.headers)
    assert gone.status_code == 404
    assert (await _join(client, user, event["id"], 1))["status"] == "waiting"
    too_many = await client.post(
        f"{API}/events/{event['id']}/waitlist", json={"quantity": 0}, headers=user.headers
    )
    assert too_many.status_code == 422


async def test_fifty_concurrent_joins_get_distinct_gap_free_positions(
    client: httpx.AsyncClient, hub: Hub, admin: Account
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=1)
    await book(client, await register(client), event_id=event["id"], quantity=2)
    users = [await register(client) for _ in range(50)]
    joined = await asyncio.gather(*(_join(client, u, event["id"], 1) for u in users))
    assert sorted(j["position"] for j in joined) == list(range(1, 51))
    stored = await hub.db.fetch(
        "SELECT position FROM waitlist WHERE event_id = $1 ORDER BY position",
        uuid.UUID(event["id"]),
    )
    assert [r["position"] for r in stored] == list(range(1, 51))


async def test_event_cancellation_refunds_everything_and_frees_every_seat(
    client: httpx.AsyncClient, hub: Hub, admin: Account, user: Account, other_user: Account
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=3)  # 6 seats
    holder, waiter = await register(client), await register(client)
    first = await book(client, user, event_id=event["id"], quantity=2)
    second = await book(client, other_user, event_id=event["id"], quantity=1)
    assert first.status_code == second.status_code == 201
    held = await hold_ok(client, holder, event["id"], quantity=3)
    await _join(client, waiter, event["id"], 1)

    url = f"{API}/events/{event['id']}/cancel"
    assert (await client.post(url, headers=user.headers)).status_code == 403
    cancelled = await client.post(url, headers=admin.headers)
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["status"] == "cancelled"
    assert body["availability"]["sold"] == 0 and body["availability"]["held"] == 0
    assert {s["status"] for s in await seat_map(client, event["id"])} == {"free"}

    for who, booking in ((user, first), (other_user, second)):
        got = (
            await client.get(f"{API}/bookings/{booking.json()['id']}", headers=who.headers)
        ).json()
        assert got["status"] == "cancelled"
    refunds = await hub.db.fetch(
        """SELECT p.amount_cents, b.total_cents
             FROM payments p JOIN bookings b ON b.id = p.booking_id
            WHERE b.event_id = $1 AND p.kind = 'refund'""",
        uuid.UUID(event["id"]),
    )
    assert len(refunds) == 2 and all(r["amount_cents"] == r["total_cents"] for r in refunds)
    lost = await client.get(f"{API}/holds/{held['hold_id']}", headers=holder.headers)
    assert lost.status_code in (404, 410)
    assert (await _waitlist(client, waiter, event["id"]))["status"] == "closed"
    told = await hub.db.fetch(
        "SELECT user_id FROM outbox WHERE kind = 'event_cancelled' AND payload->>'event_id' = $1",
        event["id"],
    )
    assert {str(r["user_id"]) for r in told} == {user.id, other_user.id, holder.id, waiter.id}
    assert (await client.post(url, headers=admin.headers)).status_code == 409
    after = await client.post(
        f"{API}/events/{event['id']}/holds", json={"quantity": 1}, headers=user.headers
    )
    assert after.status_code == 409


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


async def test_offer_reaches_the_offered_user_live_and_no_one_else(
    client: httpx.AsyncClient,
    short: WsServer,
    admin: Account,
    user: Account,
    other_user: Account,
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=1)
    booked = await book(client, user, event_id=event["id"], quantity=2)
    assert booked.status_code == 201
    await _join(client, other_user, event["id"], 2)
    mine = await WatchClient.open(short.event_url(event["id"]))
    anyone = await WatchClient.open(short.event_url(event["id"]))
    try:
        await mine.send({"t": "hello", "token": other_user.token})
        await mine.next_seat_message()
        await anyone.next_seat_message()
        await asyncio.sleep(0.2)  # the hello is processed before the offer is made
        cancel = await client.post(
            f"{API}/bookings/{booked.json()['id']}/cancel", headers=user.headers
        )
        assert cancel.status_code == 200

        async def offer_for(watcher: WatchClient) -> dict[str, Any]:
            while True:
                message = await watcher.recv()
                if message.get("t") == "offer":
                    return message

        offer = await asyncio.wait_for(offer_for(mine), 3)
        state = await _waitlist(client, other_user, event["id"])
        assert offer["hold_id"] == state["offer"]["hold_id"]
        assert {s["id"] for s in offer["seats"]} == {s["id"] for s in booked.json()["seats"]}
        assert "user_id" not in offer
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(offer_for(anyone), 0.5)
    finally:
        await mine.close()
        await anyone.close()
