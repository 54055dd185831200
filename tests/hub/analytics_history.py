"""Constructed booking history for the analytics tests.

The analytics reports cover the whole database (user behaviour, predictions, the dashboard),
so their tests run an app of their own on a database of their own (`isolated_app`), and
each test starts from no bookings, holds or rollups (`History.clear`). History is written
straight into PostgreSQL with the stamps a test chooses (bookings made, cancelled, holds
placed at known instants), then the rollups are counted from scratch by the leader's own
code (``hub.services.rollups.rebuild``), exactly as after a history seeding.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from hub.app import create_app
from hub.context import Hub
from hub.services import accounts, rollups
from hub.settings import Settings
from tests.conftest import Account
from tests.servers import TestServers, run_token, scratch_database

SEATS = 400
ADMIN_PASSWORD = "admin password 1"

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    """An aware instant from ISO text (``Z`` or an offset required)."""
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert moment.tzinfo is not None
    return moment


@contextlib.asynccontextmanager
async def isolated_app(servers: TestServers, settings: Settings) -> AsyncIterator[Any]:
    """An app (no leader loops: nothing rolls up behind a test's back) on a fresh database
    and a key prefix of its own, under the run's prefix."""
    async with scratch_database(servers, prefix="evently_analytics") as url:
        app = create_app(
            settings.replace(
                database_url=url, redis_prefix=f"{settings.redis_prefix}an{run_token()}:"
            ),
            leader_loops=(),
        )
        async with app.router.lifespan_context(app):
            yield app


async def admin_of(client: httpx.AsyncClient, hub: Hub) -> Account:
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    await accounts.ensure_admin(hub, email, ADMIN_PASSWORD)
    response = await client.post(
        "/api/v1/auth/login", json={"email": email, "password": ADMIN_PASSWORD}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    return Account(body["user"]["id"], email, ADMIN_PASSWORD, body["access_token"])


@dataclass
class History:
    """Writes history rows with chosen stamps into the isolated database."""

    hub: Hub
    venue_id: uuid.UUID | None = None
    seat_ids: list[uuid.UUID] = field(default_factory=list)
    next_seat: dict[uuid.UUID, int] = field(default_factory=dict)

    async def clear(self) -> None:
        """No bookings, tickets, holds or rollups (users, venues and events stay), and no
        cached analytics answer."""
        await self.hub.db.execute("TRUNCATE tickets, payments, bookings, hold_log CASCADE")
        # Empty rollups, and a watermark from which incremental steps go on.
        await rollups.rebuild(self.hub.db)
        pattern = self.hub.store.keys.global_("analytics:*")
        async for key in self.hub.store.client.scan_iter(match=pattern, count=1000):
            await self.hub.store.client.delete(key)
        self.next_seat.clear()

    async def _venue(self) -> uuid.UUID:
        if self.venue_id is None:
            async with self.hub.db.transaction() as con:
                self.venue_id = await con.fetchval(
                    "INSERT INTO venues (name, city, capacity) VALUES ($1, 'Lisbon', $2) "
                    "RETURNING id",
                    f"Analytics venue {uuid.uuid4().hex[:8]}",
                    SEATS,
                )
                await con.execute(
                    "INSERT INTO venue_sections (venue_id, name, position) VALUES ($1, 'Floor', 0)",
                    self.venue_id,
                )
                rows = await con.fetch(
                    """INSERT INTO seats (venue_id, idx, section, row_label, number, x, y,
                                          distance)
                       SELECT $1, g, 'Floor', 'R' || (g / 20), g % 20 + 1, g % 20, g / 20, g
                         FROM generate_series(0, $2 - 1) g
                       RETURNING id, idx""",
                    self.venue_id,
                    SEATS,
                )
                self.seat_ids = [r["id"] for r in sorted(rows, key=lambda r: r["idx"])]
        return self.venue_id

    async def user(self, name: str = "Buyer") -> uuid.UUID:
        user_id: uuid.UUID = await self.hub.db.fetchval(
            "INSERT INTO users (email, name, password_hash) VALUES ($1, $2, 'not a hash') "
            "RETURNING id",
            f"u-{uuid.uuid4().hex[:12]}@example.com",
            name,
        )
        return user_id

    async def users(self, n: int) -> list[uuid.UUID]:
        return [await self.user(f"Buyer {i}") for i in range(n)]

    async def event(
        self,
        *,
        category: str = "concert",
        starts_at: dt.datetime | None = None,
        name: str | None = None,
    ) -> uuid.UUID:
        venue_id = await self._venue()
        event_id: uuid.UUID = await self.hub.db.fetchval(
            "INSERT INTO events (venue_id, name, category, starts_at) VALUES ($1, $2, $3, $4) "
            "RETURNING id",
            venue_id,
            name or f"Event {uuid.uuid4().hex[:8]}",
            category,
            starts_at or dt.datetime.now(UTC) + dt.timedelta(days=60),
        )
        return event_id

    async def booking(
        self,
        event_id: uuid.UUID,
        user_id: uuid.UUID,
        made: dt.datetime,
        *,
        tickets: int = 1,
        total_cents: int = 1000,
        cancelled: dt.datetime | None = None,
        refund_cents: int | None = None,
    ) -> uuid.UUID:
        """A booking made at ``made`` with ``tickets`` seats, optionally cancelled."""
        first = self.next_seat.get(event_id, 0)
        self.next_seat[event_id] = first + tickets
        assert first + tickets <= SEATS, "the test venue has too few seats"
        async with self.hub.db.transaction() as con:
            booking_id: uuid.UUID = await con.fetchval(
                """INSERT INTO bookings (reference, event_id, user_id, status, subtotal_cents,
                                         total_cents, refund_cents, created_at, cancelled_at)
                   VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8) RETURNING id""",
                f"T-{uuid.uuid4().hex[:12]}",
                event_id,
                user_id,
                "confirmed" if cancelled is None else "cancelled",
                total_cents,
                refund_cents,
                made,
                cancelled,
            )
            await con.executemany(
                "INSERT INTO tickets (booking_id, event_id, seat_id, price_cents, active, "
                "created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                [
                    (booking_id, event_id, seat, total_cents // tickets, cancelled is None, made)
                    for seat in self.seat_ids[first : first + tickets]
                ],
            )
        return booking_id

    async def bookings(
        self,
        event_id: uuid.UUID,
        user_id: uuid.UUID,
        made: Sequence[dt.datetime],
        *,
        total_cents: int = 1000,
    ) -> None:
        """Many one-ticket-less bookings at once (for long histories: tickets are not
        written, so they count 0 tickets)."""
        await self.hub.db.execute(
            """INSERT INTO bookings (reference, event_id, user_id, subtotal_cents,
                                     total_cents, created_at)
               SELECT 'T-' || md5(random()::text || m::text), $1, $2, $3, $3, m
                 FROM unnest($4::timestamptz[]) AS m""",
            event_id,
            user_id,
            total_cents,
            list(made),
        )

    async def hold(
        self,
        event_id: uuid.UUID,
        user_id: uuid.UUID,
        placed: dt.datetime,
        *,
        outcome: str = "held",
        ended: dt.datetime | None = None,
    ) -> None:
        await self.hub.db.execute(
            "INSERT INTO hold_log (hold_id, event_id, user_id, seats, outcome, created_at, "
            "ended_at) VALUES ($1, $2, $3, 1, $4, $5, $6)",
            uuid.uuid4(),
            event_id,
            user_id,
            outcome,
            placed,
            ended,
        )

    async def rebuild(self) -> None:
        """Count the rollups from scratch, as after any history written with stamps of its
        own."""
        await rollups.rebuild(self.hub.db)
