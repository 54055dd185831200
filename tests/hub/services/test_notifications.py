"""The outbox: notifications written in a transaction are sent once; an outage opens the
email breaker and keeps them; a message refused as undeliverable counts attempts."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from hub.context import Hub
from hub.senders import Undeliverable
from hub.services import notifications
from hub.services.notifications import Kind
from tests.conftest import Account
from tests.hub.breaker_helpers import quick_breakers
from tests.waiting import eventually


class Recorder:
    def __init__(self, fail: BaseException | None = None) -> None:
        self.sent: list[tuple[str | None, str, dict[str, Any]]] = []
        self.ids: list[int] = []
        self.fail = fail

    async def send(
        self, email: str | None, kind: str, payload: dict[str, Any], *, outbox_id: int
    ) -> None:
        if self.fail is not None:
            raise self.fail
        self.sent.append((email, kind, payload))
        self.ids.append(outbox_id)


async def row_of(hub: Hub, marker: str) -> Any:
    return await hub.db.fetchrow(
        "SELECT id, attempts, sent_at FROM outbox WHERE payload->>'marker' = $1", marker
    )


async def test_sent_once_and_kept_through_an_outage(hub: Hub, user: Account) -> None:
    marker = uuid.uuid4().hex
    # The leader's outbox loop (running in this app) does the sending, through our senders.
    # The outage starts before the row is queued: a pass between the commit and the swap
    # would otherwise send it through the hub's own sender, and the breaker would see nothing.
    original = hub.sender
    async with quick_breakers(hub) as breakers:
        try:
            hub.sender = Recorder(fail=ConnectionError("mail server down"))
            async with hub.db.transaction() as con:
                await notifications.notify(
                    con, Kind.BOOKING_CANCELLED, uuid.UUID(user.id), {"marker": marker}
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

            # An outage: the breaker counts it and opens; the row waits, no attempt counted.
            assert await eventually(lambda: breakers.email.state == "open", within=10)
            row = await row_of(hub, marker)
            assert row["sent_at"] is None and row["attempts"] == 0
            recorder = Recorder()
            hub.sender = recorder

            def mine() -> list[tuple[str | None, str, dict[str, Any]]]:
                return [s for s in recorder.sent if s[2].get("marker") == marker]

            assert await eventually(lambda: bool(mine()), within=10)
            assert breakers.email.state == "closed"
            await asyncio.sleep(1.5)  # another pass must not send it again
            assert mine() == [(user.email, "booking_cancelled", {"marker": marker})]
            row = await row_of(hub, marker)
            assert row["sent_at"] is not None and row["id"] in recorder.ids
        finally:
            hub.sender = original


async def test_an_undeliverable_message_counts_attempts_not_failures(
    hub: Hub, user: Account
) -> None:
    marker = uuid.uuid4().hex
    original = hub.sender
    async with quick_breakers(hub) as breakers:
        try:
            hub.sender = Recorder(fail=Undeliverable("550 no such mailbox"))
            async with hub.db.transaction() as con:
                await notifications.notify(
                    con, Kind.EVENT_CANCELLED, uuid.UUID(user.id), {"marker": marker}
                )

            async def attempted() -> bool:
                return bool((await row_of(hub, marker))["attempts"] >= 2)

            assert await eventually(attempted, within=10)
            assert breakers.email.state == "closed"
            assert breakers.email.view()["failures"] == 0
            assert (await row_of(hub, marker))["sent_at"] is None
        finally:
            hub.sender = original
