"""TEST-ONLY: the hub with both guards against a double sale switched off.

The race test's control run serves this app (``uvicorn --factory
tests.hub.unguarded_app:create``) to prove the race test can see a double sale when there
is one. It is the real hub, except that a one-call booking of named seats
(``POST /api/v1/bookings`` with ``event_id`` and ``seat_ids``) is answered here: tickets
are written without asking Redis whether the seats are free (no all-or-nothing hold) and
after dropping the partial unique index on active tickets (no last guard). Nothing in
``hub/`` knows this exists.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import jwt
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engines.seats import SeatCode
from hub.asgi import create as create_hub
from hub.inventory import Inventory
from hub.settings import Settings
from hub.store import Store


class Unguarded:
    def __init__(self, inner: ASGIApp, settings: Settings) -> None:
        self.inner = inner
        self.settings = settings
        self.pool: asyncpg.Pool | None = None
        self.inventory: Inventory | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == "/api/v1/bookings"
        ):
            await self.inner(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        data = json.loads(body or b"{}")
        if "event_id" in data and "seat_ids" in data:
            await self._sell(scope, data, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.inner(scope, replay, send)

    async def _sell(self, scope: Scope, data: dict[str, Any], send: Send) -> None:
        headers = dict(scope["headers"])
        token = headers.get(b"authorization", b"").decode().removeprefix("Bearer ")
        assert self.settings.secret_key is not None
        user_id = uuid.UUID(
            jwt.decode(token, self.settings.secret_key, algorithms=["HS256"])["sub"]
        )
        event_id = uuid.UUID(data["event_id"])
        seat_ids = [uuid.UUID(s) for s in data["seat_ids"]]
        pool, inventory = await self._resources()
        async with pool.acquire() as con, con.transaction():
            await con.execute("DROP INDEX IF EXISTS tickets_one_active_per_seat")
            booking_id = await con.fetchval(
                "INSERT INTO bookings (reference, event_id, user_id, subtotal_cents, total_cents) "
                "VALUES ($1, $2, $3, 0, 0) RETURNING id",
                "UNG-" + uuid.uuid4().hex[:12].upper(),
                event_id,
                user_id,
            )
            await con.execute(
                "INSERT INTO tickets (booking_id, event_id, seat_id, price_cents) "
                "SELECT $1, $2, seat, 0 FROM unnest($3::uuid[]) AS seat",
                booking_id,
                event_id,
                seat_ids,
            )
            idxs = [
                r["idx"]
                for r in await con.fetch(
                    "SELECT idx FROM seats WHERE id = ANY($1::uuid[])", seat_ids
                )
            ]
        if await inventory.is_loaded(event_id):
            await inventory.set_seats(event_id, idxs, SeatCode.SOLD)
        payload = json.dumps({"id": str(booking_id)}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 201,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _resources(self) -> tuple[asyncpg.Pool, Inventory]:
        if self.pool is None or self.inventory is None:
            assert self.settings.database_url and self.settings.redis_url
            self.pool = await asyncpg.create_pool(self.settings.database_url, max_size=4)
            store = Store.connect(
                self.settings.redis_url, prefix=self.settings.redis_prefix, max_connections=8
            )
            self.inventory = Inventory(store.client, store.keys)
        return self.pool, self.inventory


def create() -> ASGIApp:
    return Unguarded(create_hub(), Settings.from_environ())
