"""Notifications: written to the outbox in the transaction of what they report, then sent.

The leader drains the outbox through the hub's ``Sender`` (``hub.senders``: email over
SMTP when ``EVENTLY_SMTP_URL`` is set, else the log) behind the email circuit breaker
(``hub.breakers``). Each kind is queued once by what it reports: a confirmation (by the
booking's own statement, ``hub.db.bookings``; its email carries the receipt, read when it
is sent), a cancellation, a waitlist offer, and an event's cancellation (one per user
told).

Delivery is at least once, and once in practice:
- each row is marked sent in its own commit right after the server accepted it, so a crash
  can repeat at most the one message in flight, which carries the same Message-ID as
  before (derived from the row id) for the receiver to drop;
- an outage (the server down or slow: any failure but ``Undeliverable``) counts against
  the breaker, never against the row: the row waits, however long the outage lasts; once
  the breaker is open a pass sends nothing and touches nothing, and when it half-opens the
  oldest waiting row is the trial;
- a message refused as ``Undeliverable`` counts an attempt on its row; after
  ``outbox.MAX_ATTEMPTS`` it is given up (left unsent, logged).
"""

from __future__ import annotations

import asyncio
import enum
import functools
import json
import uuid
from typing import Any

import structlog

from hub.breakers import BreakerOpen
from hub.context import Hub
from hub.db import Connection, outbox
from hub.senders import Sender, Undeliverable
from hub.services import receipts

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
    """Send one batch of the oldest unsent notifications; return how many were sent.

    Sends nothing while the email breaker is open, or while another process drains."""
    breaker = hub.breakers.email
    if breaker.state == "open":
        return 0
    limit_s = hub.settings.smtp_timeout_seconds
    sent = 0
    async with hub.db.connection() as con:
        if not await outbox.try_lock(con):
            return 0
        try:
            for row in await outbox.pending(con, BATCH):
                outbox_id, kind = row["id"], row["kind"]
                try:
                    payload = await _with_content(hub, kind, dict(row["payload"]))
                except Exception:
                    log.exception("notification_unreadable", outbox_id=outbox_id, kind=kind)
                    await outbox.mark_failed(con, [outbox_id])
                    continue
                try:
                    await breaker.call(
                        functools.partial(
                            sender.send, row["email"], kind, payload, outbox_id=outbox_id
                        ),
                        limit_s=limit_s,
                        answers=(Undeliverable,),
                    )
                except BreakerOpen:
                    break  # the rest wait for the breaker's next trial
                except Undeliverable as exc:
                    log.warning(
                        "notification_undeliverable",
                        outbox_id=outbox_id,
                        kind=kind,
                        attempts=row["attempts"] + 1,
                        error=str(exc),
                    )
                    await outbox.mark_failed(con, [outbox_id])
                    continue
                except Exception as exc:  # an outage: counted by the breaker, row kept
                    log.warning(
                        "notification_deferred", outbox_id=outbox_id, kind=kind, error=repr(exc)
                    )
                    continue
                await outbox.mark_sent(con, [outbox_id])
                sent += 1
        finally:
            await outbox.unlock(con)
    return sent


async def _with_content(hub: Hub, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    """What the message says beyond its row: a confirmation's receipt, read now."""
    if kind == Kind.BOOKING_CONFIRMED and "booking_id" in payload:
        receipt = await receipts.get_receipt(
            hub, uuid.UUID(int=0), True, uuid.UUID(str(payload["booking_id"]))
        )
        payload["receipt"] = json.loads(json.dumps(receipt, default=str))
    return payload


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
