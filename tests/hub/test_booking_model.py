"""A stateful property test: random holds, releases, confirms and cancels by several users,
over HTTP, against a simple model of who holds and owns which seat.

After every step: each seat's status in the seat map is the model's; PostgreSQL's active
tickets are exactly the model's sold seats (never one seat twice); Redis's per-user counts
are what each user holds plus owns. Hypothesis drives the machine in a worker thread; each
HTTP call runs on the test's event loop.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from hub.context import Hub
from tests.conftest import Account, register
from tests.factories import make_event
from tests.hub.api.booking_helpers import API, book, hold, seat_map

T = TypeVar("T")
LIMIT = 3


@dataclass
class Context:
    loop: asyncio.AbstractEventLoop
    client: httpx.AsyncClient
    hub: Hub
    admin: Account
    users: list[Account]

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)


class BookingMachine(RuleBasedStateMachine):
    ctx: ClassVar[Context]

    def __init__(self) -> None:
        super().__init__()
        self.holds: dict[str, tuple[int, frozenset[str]]] = {}  # hold id -> (user, seats)
        self.bookings: dict[
            str, tuple[int, frozenset[str], bool]
        ] = {}  # id -> (user, seats, active)

    @initialize()
    def new_event(self) -> None:
        ctx = self.ctx
        event = ctx.run(
            make_event(ctx.client, ctx.admin, rows=1, seats_per_row=3, max_tickets_per_user=LIMIT)
        )
        self.event_id = event["id"]
        self.seat_ids = [s["id"] for s in ctx.run(seat_map(ctx.client, self.event_id))]

    # -- the model ------------------------------------------------------------------------
    def _held(self) -> set[str]:
        return {s for _, seats in self.holds.values() for s in seats}

    def _sold(self) -> set[str]:
        return {s for _, seats, active in self.bookings.values() if active for s in seats}

    def _count(self, user: int) -> int:
        held = sum(len(seats) for u, seats in self.holds.values() if u == user)
        owned = sum(len(s) for u, s, active in self.bookings.values() if u == user and active)
        return held + owned

    # -- the rules ------------------------------------------------------------------------
    @rule(user=st.integers(0, 2), picks=st.sets(st.integers(0, 5), min_size=1, max_size=3))
    def place_hold(self, user: int, picks: set[int]) -> None:
        wanted = [self.seat_ids[i] for i in sorted(picks)]
        response = self.ctx.run(
            hold(self.ctx.client, self.ctx.users[user], self.event_id, seat_ids=wanted)
        )
        taken = sorted(set(wanted) & (self._held() | self._sold()))
        if taken:
            assert response.status_code == 409, response.text
            assert sorted(response.json()["seats"]) == taken
        elif self._count(user) + len(wanted) > LIMIT:
            assert response.status_code == 422, response.text
            assert response.json()["code"] == "limit_exceeded"
        else:
            assert response.status_code == 201, response.text
            self.holds[response.json()["hold_id"]] = (user, frozenset(wanted))

    @precondition(lambda self: bool(self.holds))
    @rule(pick=st.integers(0, 100), by_owner=st.booleans())
    def release(self, pick: int, by_owner: bool) -> None:
        hold_id = sorted(self.holds)[pick % len(self.holds)]
        owner = self.holds[hold_id][0]
        who = owner if by_owner else (owner + 1) % 3
        response = self.ctx.run(
            self.ctx.client.delete(f"{API}/holds/{hold_id}", headers=self.ctx.users[who].headers)
        )
        if by_owner:
            assert response.status_code == 204, response.text
            del self.holds[hold_id]
        else:
            assert response.status_code == 404

    @precondition(lambda self: bool(self.holds))
    @rule(pick=st.integers(0, 100), by_owner=st.booleans())
    def confirm(self, pick: int, by_owner: bool) -> None:
        hold_id = sorted(self.holds)[pick % len(self.holds)]
        owner, seats = self.holds[hold_id]
        who = owner if by_owner else (owner + 2) % 3
        response = self.ctx.run(book(self.ctx.client, self.ctx.users[who], hold_id=hold_id))
        if by_owner:
            assert response.status_code == 201, response.text
            assert {s["id"] for s in response.json()["seats"]} == seats
            del self.holds[hold_id]
            self.bookings[response.json()["id"]] = (owner, seats, True)
        else:
            assert response.status_code == 404

    @precondition(lambda self: bool(self.bookings))
    @rule(pick=st.integers(0, 100), by_owner=st.booleans())
    def cancel(self, pick: int, by_owner: bool) -> None:
        booking_id = sorted(self.bookings)[pick % len(self.bookings)]
        owner, seats, active = self.bookings[booking_id]
        who = owner if by_owner else (owner + 1) % 3
        response = self.ctx.run(
            self.ctx.client.post(
                f"{API}/bookings/{booking_id}/cancel", headers=self.ctx.users[who].headers
            )
        )
        if not by_owner:
            assert response.status_code == 404
        elif active:
            assert response.status_code == 200, response.text
            self.bookings[booking_id] = (owner, seats, False)
        else:
            assert response.status_code == 409

    # -- the invariants -------------------------------------------------------------------
    @invariant()
    def seat_map_is_the_model(self) -> None:
        if not hasattr(self, "event_id"):
            return
        held, sold = self._held(), self._sold()
        assert not held & sold
        expected = {
            s: "sold" if s in sold else "held" if s in held else "free" for s in self.seat_ids
        }
        seats = self.ctx.run(seat_map(self.ctx.client, self.event_id))
        assert {s["id"]: s["status"] for s in seats} == expected

    @invariant()
    def postgres_and_redis_agree(self) -> None:
        if not hasattr(self, "event_id"):
            return
        ctx, event_id = self.ctx, uuid.UUID(self.event_id)
        rows = ctx.run(
            ctx.hub.db.fetch(
                "SELECT seat_id::text AS seat FROM tickets WHERE event_id = $1 AND active",
                event_id,
            )
        )
        active = [r["seat"] for r in rows]
        assert len(active) == len(set(active))  # never a seat sold twice
        assert set(active) == self._sold()
        for user in range(3):
            counted = ctx.run(
                ctx.hub.inventory.owned_count(event_id, uuid.UUID(ctx.users[user].id))
            )
            assert counted == self._count(user)


async def test_holds_and_bookings_follow_the_model(
    client: httpx.AsyncClient, hub: Hub, admin: Account
) -> None:
    users = [await register(client, f"Model {i}") for i in range(3)]
    BookingMachine.ctx = Context(asyncio.get_running_loop(), client, hub, admin, users)
    config = settings(
        max_examples=12,
        stateful_step_count=14,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    await asyncio.to_thread(run_state_machine_as_test, BookingMachine, settings=config)
