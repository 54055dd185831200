"""The leader's hold housekeeping: release expired holds, settle confirmations left behind.

Expiry never relies on keyspace notifications: every event's ``expiry`` sorted set is read
each tick (one pipelined round trip for all live events), and due holds are released by
the same script users call, in "expire" mode, which refuses holds that are confirming or
no longer due. A hold left "confirming" longer than ``STUCK_AFTER_MS`` belonged to a
process that died mid-booking: PostgreSQL decides its fate (tickets there → sold; none →
released), under the advisory lock the confirmation itself holds.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import cast

import structlog

from hub import metrics
from hub.context import Hub
from hub.db import lifecycle
from hub.inventory import HoldStatus, Released

log = structlog.get_logger(__name__)

SWEEP_INTERVAL_S = 0.25
RECONCILE_INTERVAL_S = 5.0
STUCK_AFTER_MS = 60_000
EVENTS_REFRESH_S = 5.0

# Called with (hub, event_id, released) after seats come free, e.g. to offer them to the
# waitlist. Registered by the waitlist service.
FreedHook = Callable[[Hub, uuid.UUID, Released], Awaitable[None]]


class _LiveEvents:
    """The ids of live events, re-read from PostgreSQL every few seconds."""

    def __init__(self) -> None:
        self.ids: list[uuid.UUID] = []
        self.read_at = 0.0

    async def get(self, hub: Hub) -> list[uuid.UUID]:
        if time.monotonic() - self.read_at > EVENTS_REFRESH_S:
            async with hub.db.connection() as con:
                self.ids = await lifecycle.live_event_ids(con)
            self.read_at = time.monotonic()
        return self.ids


async def sweep_expired(hub: Hub, event_ids: list[uuid.UUID]) -> int:
    """Release every due hold of these events; return how many were released."""
    if not event_ids:
        return 0
    now_ms = await hub.inventory.server_time_ms()
    async with hub.store.client.pipeline(transaction=False) as pipe:
        for event_id in event_ids:
            pipe.zrangebyscore(hub.store.keys.event(event_id, "expiry"), "-inf", now_ms, 0, 500)
        due_lists = await pipe.execute()
    released_ids: list[uuid.UUID] = []
    for event_id, due in zip(event_ids, due_lists, strict=True):
        for raw in due:
            hold_id = uuid.UUID(raw.decode())
            outcome = await hub.inventory.release(event_id, hold_id, mode="expire")
            if isinstance(outcome, Released):
                released_ids.append(hold_id)
                metrics.EXPIRED_HOLDS.inc()
                log.info(
                    "hold_expired",
                    event_id=str(event_id),
                    hold_id=str(hold_id),
                    seats=len(outcome.seats),
                )
                for hook in freed_hooks(hub):
                    await hook(hub, event_id, outcome)
    if released_ids:
        async with hub.db.connection() as con:
            await lifecycle.end_holds(con, released_ids, "expired")
    return len(released_ids)


async def reconcile_stuck(
    hub: Hub, event_ids: list[uuid.UUID], stuck_after_ms: int = STUCK_AFTER_MS
) -> int:
    """Settle holds left confirming by a crashed process; return how many were settled."""
    now_ms = await hub.inventory.server_time_ms()
    settled = 0
    for event_id in event_ids:
        hold_ids = cast(
            list[bytes],
            await hub.store.client.zrange(hub.store.keys.event(event_id, "expiry"), 0, -1),
        )
        for raw in hold_ids:
            hold_id = uuid.UUID(raw.decode())
            hold = await hub.inventory.get_hold(event_id, hold_id)
            if hold is None or hold.status is not HoldStatus.CONFIRMING:
                continue
            if (hold.confirming_since_ms or now_ms) > now_ms - stuck_after_ms:
                continue
            await settle(hub, event_id, hold_id)
            settled += 1
    return settled


async def settle(hub: Hub, event_id: uuid.UUID, hold_id: uuid.UUID) -> str:
    """Decide a confirming hold by PostgreSQL's record: "sold" or "released"."""
    async with hub.db.transaction() as con:
        await lifecycle.lock_hold(con, hold_id)
        seats = await lifecycle.booked_seat_indexes(con, hold_id)
        if seats is not None:
            await hub.inventory.finish_confirm(event_id, hold_id, seats)
            outcome = "sold"
        else:
            released = await hub.inventory.release(event_id, hold_id, mode="force")
            await lifecycle.end_holds(con, [hold_id], "released")
            if isinstance(released, Released):
                for hook in freed_hooks(hub):
                    await hook(hub, event_id, released)
            outcome = "released"
    metrics.STUCK_BOOKINGS.labels(outcome).inc()
    log.warning(
        "stuck_booking_settled", event_id=str(event_id), hold_id=str(hold_id), outcome=outcome
    )
    return outcome


def freed_hooks(hub: Hub) -> list[FreedHook]:
    hooks: list[FreedHook] = hub.parts.setdefault("freed_hooks", [])
    return hooks


async def expiry_loop(hub: Hub) -> None:
    """Leader loop: sweep four times a second, reconcile every few seconds."""
    live = _LiveEvents()
    last_reconcile = 0.0
    while True:
        try:
            event_ids = await live.get(hub)
            await sweep_expired(hub, event_ids)
            if time.monotonic() - last_reconcile > RECONCILE_INTERVAL_S:
                last_reconcile = time.monotonic()
                await reconcile_stuck(hub, event_ids)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("expiry_sweep_failed")
        await asyncio.sleep(SWEEP_INTERVAL_S)
