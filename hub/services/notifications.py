"""Notifications: written to the outbox in the transaction of what they report, then sent.

The leader drains the outbox. Sending goes through the hub's ``Sender`` (``hub.senders``;
until the monitoring work brings email, the default writes each notification to the log).
A sender that fails leaves the batch unsent, with its attempt counted, to be retried on
the next pass.
"""

from __future__ import annotations

import asyncio
import enum
import uuid
from typing import Any

import structlog

from hub.context import Hub
from hub.db import Connection, outbox
from hub.senders import Sender

log = structlog.get_logger(__name__)

BATCH = 100
INTERVAL_S = 1.0


class Kind(enum.StrEnum):
    BOOKING_CONFIRMED = "booking_confirmed"
    BOOKING_CANCELLED = "booking_cancelled"
    OFFER_MADE = "waitlist_offer"
    EVENT_CANCELLED = "event_cancelled"


async def notify(con: Connection, kind: Kind, user_id: uuid.UUID, payload: dict[str, Any]) -> None:
    """Queue a notification inside the caller's transaction."""
    await outbox.add(con, kind.value, user_id, _plain(payload))


async def notify_many(
    con: Connection, kind: Kind, rows: list[tuple[uuid.UUID, dict[str, Any]]]
) -> None:
    await outbox.add_many(con, kind.value, [(user, _plain(payload)) for user, payload in rows])


async def drain(hub: Hub, sender: Sender) -> int:
    """Send one batch; return how many were sent."""
    async with hub.db.transaction() as con:
        batch = await outbox.claim_pending(con, BATCH)
        if not batch:
            return 0
        sent: list[int] = []
        failed: list[int] = []
        for row in batch:
            try:
                await sender.send(row["email"], row["kind"], dict(row["payload"]))
                sent.append(row["id"])
            except Exception:
                log.exception("notification_failed", outbox_id=row["id"], kind=row["kind"])
                failed.append(row["id"])
        if sent:
            await outbox.mark_sent(con, sent)
        if failed:
            await outbox.mark_failed(con, failed)
        return len(sent)


async def outbox_loop(hub: Hub) -> None:
    """Leader loop: drain the outbox continuously."""
    while True:
        try:
            while await drain(hub, hub.sender) == BATCH:
                pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("outbox_drain_failed")
        await asyncio.sleep(INTERVAL_S)


def _plain(payload: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe copy: UUIDs, decimals and datetimes become strings."""
    return {
        key: value
        if isinstance(value, (int, float, str, bool, type(None), list, dict))
        else str(value)
        for key, value in payload.items()
    }
