"""The idempotency claim commits without waiting for its WAL flush, and only itself: the
connection goes back to the pool committing synchronously, as the bookings on it must."""

from __future__ import annotations

import uuid

from hub.context import Hub
from hub.db import idempotency
from tests.conftest import Account


async def test_a_claim_leaves_its_connection_committing_synchronously(
    hub: Hub, user: Account
) -> None:
    async with hub.db.connection() as con:
        assert await con.fetchval("SHOW synchronous_commit") == "on"
        key = f"k-{uuid.uuid4().hex}"
        claimed, _ = await idempotency.claim(con, uuid.UUID(user.id), key, "h", 60)
        assert claimed
        again, found = await idempotency.claim(con, uuid.UUID(user.id), key, "h", 60)
        assert not again and found is not None and found["state"] == "in_flight"
        assert await con.fetchval("SHOW synchronous_commit") == "on"
        async with con.transaction():
            assert await con.fetchval("SHOW synchronous_commit") == "on"
