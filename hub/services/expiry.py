"""The leader's hold housekeeping: release expired holds, settle confirmations left behind.

Expiry never relies on keyspace notifications: every live event's ``expiry`` sorted set is
read each tick (one pipelined round trip for all of them), and due holds are released
through ``releases`` — the script's "expire" mode refuses holds that are being confirmed
or are no longer due — which also hands the freed seats to the waitlist. A hold left
"confirming" longer than ``confirming_limit_ms`` (three request timeouts: a live
confirmation is cancelled at its request's timeout and undoes itself) belonged to a process
that died mid-booking: PostgreSQL decides its fate (tickets there → sold; none → released),
under the advisory lock the confirmation itself holds while it writes. It is tied to the
request timeout, not a fixed minute, so a crashed booking's seats are right again within a
hold's lifetime (issue 18), as a cancellation's pending free is. Every few seconds the
leader also offers free seats of events with someone waiting (seats freed on the way to a
hold, or by a process that died before its offer round) and reopens offer claims a crash
left behind.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import structlog

from hub import metrics
from hub.context import Hub
from hub.db import lifecycle
from hub.db import waitlist as waitlist_db
from hub.inventory import HoldStatus, Released, ReleaseMode
from hub.services import charges, releases
from hub.settings import Settings

log = structlog.get_logger(__name__)

SWEEP_INTERVAL_S = 0.25
RECONCILE_INTERVAL_S = 5.0
EVENTS_REFRESH_S = 2.0


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
    due_lists = await hub.inventory.due_holds(event_ids, now_ms)
    released = 0
    for event_id, due in zip(event_ids, due_lists, strict=True):
        for hold_id in due:
            outcome = await releases.release_hold(hub, event_id, hold_id, mode=ReleaseMode.EXPIRE)
            released += isinstance(outcome, Released)
    return released


def confirming_limit_ms(settings: Settings) -> int:
    """How long a hold may be confirming before the leader takes it for a crashed one's."""
    return int(settings.abandoned_after_seconds * 1000)


async def reconcile_stuck(
    hub: Hub, event_ids: list[uuid.UUID], stuck_after_ms: int | None = None
) -> int:
    """Settle holds left confirming by a crashed process (confirming longer than
    ``stuck_after_ms``, by default ``confirming_limit_ms``); return how many were settled."""
    if stuck_after_ms is None:
        stuck_after_ms = confirming_limit_ms(hub.settings)
    now_ms = await hub.inventory.server_time_ms()
    settled = 0
    for event_id in event_ids:
        for hold_id in await hub.inventory.hold_ids(event_id):
            hold = await hub.inventory.get_hold(event_id, hold_id)
            if hold is None or hold.status is not HoldStatus.CONFIRMING:
                continue
            if (hold.confirming_since_ms or now_ms) > now_ms - stuck_after_ms:
                continue
            await settle(hub, event_id, hold_id)
            settled += 1
    return settled


async def settle(hub: Hub, event_id: uuid.UUID, hold_id: uuid.UUID) -> str:
    """Decide a confirming hold by PostgreSQL's record: "sold" or "released" (and then its
    charge, noted with it, refunded)."""
    sold, charge = await releases.settle_confirming(hub, event_id, hold_id)
    outcome = "sold" if sold else "released"
    metrics.STUCK_BOOKINGS.labels(outcome).inc()
    log.warning(
        "stuck_booking_settled", event_id=str(event_id), hold_id=str(hold_id), outcome=outcome
    )
    if charge is not None:
        await charges.refund_left(hub, hold_id, charge)
    return outcome


async def offer_waiting(hub: Hub, event_ids: list[uuid.UUID]) -> int:
    """Offer free seats of these events to anyone waiting; return offers made."""
    await releases.reopen_stalled_offers(hub)
    async with hub.db.connection() as con:
        waiting = await waitlist_db.events_with_waiting(con, event_ids)
    made = 0
    for event_id in waiting:
        await hub.inventory.mark_waitlist(event_id)  # e.g. lost with a Redis restart
        made += await releases.offer_free_seats(hub, event_id)
    return made


async def expiry_loop(hub: Hub) -> None:
    """Leader loop: sweep four times a second, on a fixed beat.

    Only the sweep runs here: the slower housekeeping (``housekeeping_loop``) has its own
    loop, so a reconciliation over many events never delays a due hold's release."""
    live = _LiveEvents()
    while True:
        started = time.monotonic()
        try:
            await sweep_expired(hub, await live.get(hub))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("expiry_sweep_failed")
        await asyncio.sleep(max(0.0, SWEEP_INTERVAL_S - (time.monotonic() - started)))


async def housekeeping_loop(hub: Hub) -> None:
    """Leader loop: every few seconds, settle confirmations left behind (and refund their
    charges where no booking was written), finish pending frees and offer free seats to
    anyone waiting."""
    live = _LiveEvents()
    while True:
        try:
            event_ids = await live.get(hub)
            await reconcile_stuck(hub, event_ids)
            await releases.finish_pending_frees(hub)
            await offer_waiting(hub, event_ids)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("housekeeping_failed")
        await asyncio.sleep(RECONCILE_INTERVAL_S)
