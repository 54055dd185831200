"""The outbox: notifications written in a transaction are sent once; failures are retried."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from hub.context import Hub
from hub.services import notifications
from hub.services.notifications import Kind
from tests.conftest import Account
from tests.waiting import eventually


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str | None, str, dict[str, Any]]] = []
        self.fail = fail

    async def send(self, email: str | None, kind: str, payload: dict[str, Any]) -> None:
        if self.fail:
            raise ConnectionError("mail server down")
        self.sent.append((email, kind, payload))


async def test_sent_once_and_failures_retried(hub: Hub, user: Account) -> None:
    marker = uuid.uuid4().hex
    async with hub.db.transaction() as con:
        await notifications.notify(
            con, Kind.BOOKING_CONFIRMED, uuid.UUID(user.id), {"marker": marker}
        )
    # A rolled-back transaction queues nothing.
    try:
        async with hub.db.transaction() as con:
            await notifications.notify(
                con, Kind.BOOKING_CANCELLED, uuid.UUID(user.id), {"marker": marker}
            )
            raise RuntimeError("rollback")
    except RuntimeError:
        pass

    # The leader's outbox loop (running in this app) does the sending, through our senders.
    original = hub.sender
    try:
        hub.sender = Recorder(fail=True)

        async def attempted() -> bool:
            attempts = await hub.db.fetchval(
                "SELECT attempts FROM outbox WHERE payload->>'marker' = $1", marker
            )
            return bool(attempts)

        assert await eventually(attempted, within=5)
        recorder = Recorder()
        hub.sender = recorder

        def mine() -> list[tuple[str | None, str, dict[str, Any]]]:
            return [s for s in recorder.sent if s[2].get("marker") == marker]

        assert await eventually(lambda: bool(mine()), within=5)
        await asyncio.sleep(1.5)  # another pass must not send it again
        assert mine() == [(user.email, "booking_confirmed", {"marker": marker})]
    finally:
        hub.sender = original
