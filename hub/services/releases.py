"""Freeing seats: the one place where held or sold seats become free again, and what follows.

Every path that frees seats comes here — a hold deleted by its owner, expired by the
sweeper or on the way to a new hold, dropped after a one-call or bulk booking failed,
forced after PostgreSQL refused seats Redis thought free, a booking cancelled, an event
cancelled, a waitlist offer that lapsed — and gets the same epilogue, in this order:

1. the inventory script frees the seats (it publishes the change itself);
2. the hold's index entry goes, in the same round trip (not for an expiry: an expired hold
   answers 410);
3. the hold log records how the hold ended (batched by the process's writer);
4. a lapsed waitlist offer marks its entry lapsed;
5. the freed seats are offered down the waitlist (``offer_free_seats``), unless the caller
   is placing a hold for those very seats (an expiry on the way) or the event is over.
   The release script also reads the event's waitlist mark (set when someone joins,
   dropped by an offer round that finds nobody waiting), so a release on an event without
   a waitlist costs no PostgreSQL round trip.

Nothing here runs inside a PostgreSQL transaction that is still open: callers commit first
(a cancellation makes its tickets inactive and commits, then frees the seats), so a seat
is never free in Redis while PostgreSQL still sells it, and no Redis call waits inside a
transaction.

Offers: the first waiting entry whose quantity the free seats can cover is claimed in one
statement (``waiting`` → ``offered`` with no hold yet; SKIP LOCKED, so two processes never
claim one entry), then a hold is placed in that user's name (kind ``offer``, its own TTL,
preferring the seats just freed), then the claim is completed with the hold and the
notification in one short transaction. A claim whose hold could not be placed goes back
to ``waiting``; one left behind by a crash is put back by the leader
(``reopen_stalled_offers``).
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Sequence

import structlog

from engines.seats import SeatCode
from hub.context import Hub
from hub.db import lifecycle
from hub.db import seat_frees as seat_frees_db
from hub.db import waitlist as waitlist_db
from hub.inventory import HoldKind, HoldPlaced, Refusal, Released, ReleaseMode
from hub.metrics import EXPIRED_HOLDS
from hub.services import charges, events, live_seats, notifications, placing

log = structlog.get_logger(__name__)

# An entry claimed for an offer but never completed (its process died between the claim and
# the hold) is given back to the line after this long.
STALLED_OFFER_SECONDS = 30
# Pending seat frees (cancellations whose Redis step failed): rows per leader round, and
# snapshot-and-free attempts per row on an event whose seq keeps moving.
PENDING_FREES_BATCH = 100
PENDING_FREE_TRIES = 3


class Outcome(enum.StrEnum):
    """How a hold ended, as the hold log records it."""

    RELEASED = "released"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


async def release_hold(
    hub: Hub,
    event_id: uuid.UUID,
    hold_id: uuid.UUID,
    *,
    user_id: uuid.UUID | None = None,
    mode: ReleaseMode = ReleaseMode.RELEASE,
    offer: bool = True,
) -> Released | Refusal:
    """Free a hold's seats and run the epilogue.

    Args:
        user_id: the owner, checked by the script when given (a buyer's own release).
        mode: ``RELEASE`` refuses a hold being confirmed; ``EXPIRE`` frees only a hold past
            its expiry; ``FORCE`` frees it whatever its state (PostgreSQL decided).
        offer: hand the freed seats to the waitlist (false while placing a hold that wants
            those very seats; the leader's offer check picks up any left over).

    Returns:
        What was released, or the script's refusal (missing, confirming, not due).
    """
    # An expired hold keeps its index entry, so that it answers 410 rather than 404.
    forget = None if mode is ReleaseMode.EXPIRE else placing.index_ttl_seconds(hub)
    released = await hub.inventory.release(
        event_id, hold_id, user_id=user_id, mode=mode, forget=forget
    )
    if not isinstance(released, Released):
        return released
    outcome = Outcome.EXPIRED if mode is ReleaseMode.EXPIRE else Outcome.RELEASED
    await _after_release(hub, event_id, released, outcome)
    if offer and released.waitlist:  # someone may be waiting (the release read the mark)
        await offer_free_seats(hub, event_id, prefer=released.seats, mark=released.waitlist)
    return released


async def expire_due_holders(hub: Hub, event_id: uuid.UUID, seats: Sequence[int]) -> bool:
    """Expire the holds past their expiry that hold any of ``seats``, for a hold being
    placed on them; True if any was. Their seats are not offered (they are wanted now)."""
    freed = False
    for hold_id in await hub.inventory.due_holders(event_id, seats):
        released = await release_hold(hub, event_id, hold_id, mode=ReleaseMode.EXPIRE, offer=False)
        freed |= isinstance(released, Released)
    return freed


async def settle_confirming(
    hub: Hub, event_id: uuid.UUID, hold_id: uuid.UUID
) -> tuple[bool, charges.Charge | None]:
    """Settle a hold left confirming by a crashed process from PostgreSQL's record: its
    seats become sold if the booking was written (``(True, None)``), else the hold is
    freed and the charge noted with it taken, for the caller to refund (``(False, the
    charge or None)``).

    The decision and the Redis change happen under the hold's advisory lock, the one its
    confirmation writes under, so a slow confirmation cannot commit between the check and
    the release; the epilogue runs after the commit.
    """
    async with hub.db.transaction() as con:
        await lifecycle.lock_hold(con, hold_id)
        seats = await lifecycle.booked_seat_indexes(con, hold_id)
        if seats is not None:
            await hub.inventory.finish_confirm(event_id, hold_id, seats, forget=True)
            return True, None
        # Taken before the release, which deletes the hold's record, note and all; put back
        # if the release fails, so the next settle still finds it.
        charge = await charges.take(hub, event_id, hold_id)
        try:
            released = await hub.inventory.release(
                event_id, hold_id, mode=ReleaseMode.FORCE, forget=placing.index_ttl_seconds(hub)
            )
        except BaseException:
            if charge is not None:
                await charges.note(hub, event_id, hold_id, charge)
            raise
    if isinstance(released, Released):
        await _after_release(hub, event_id, released, Outcome.RELEASED)
        await offer_free_seats(hub, event_id, prefer=released.seats)
    return False, charge


async def release_all_holds(hub: Hub, event_id: uuid.UUID) -> int:
    """Free every hold of a cancelled event (offered to no one); return how many."""
    released = 0
    for hold_id in await hub.inventory.hold_ids(event_id):
        outcome = await hub.inventory.release(
            event_id, hold_id, mode=ReleaseMode.FORCE, forget=placing.index_ttl_seconds(hub)
        )
        if isinstance(outcome, Released):
            released += 1
            await _after_release(hub, event_id, outcome, Outcome.CANCELLED)
    return released


async def free_sold_seats(
    hub: Hub,
    event_id: uuid.UUID,
    seats: Sequence[int],
    *,
    owner: uuid.UUID | None,
) -> bool:
    """Seats of a booking cancelled (and committed) turn free and go to the waitlist.

    Args:
        owner: the booking's user when its tickets counted against the per-user cap
            (None for a group booking, which never counted).

    Returns:
        Whether Redis is done with them (freed, or not loaded: the next load reads
        PostgreSQL, where the tickets are inactive already). False: they stay shown sold
        (safe: never free while sold) until `finish_pending_frees` frees them.
    """
    try:
        if not await hub.inventory.is_loaded(event_id):
            return True
        await hub.inventory.set_seats(
            event_id,
            seats,
            SeatCode.FREE,
            user_id=owner,
            count_delta=-len(seats) if owner is not None else 0,
        )
    except Exception as exc:
        log.error("cancel_free_failed", event_id=str(event_id), error=repr(exc))
        return False
    await offer_free_seats(hub, event_id, prefer=tuple(seats))
    return True


async def finish_pending_frees(hub: Hub, limit: int = PENDING_FREES_BATCH) -> int:
    """Leader: free the seats of cancellations whose own Redis step never happened
    (``pending_seat_frees`` rows past due); returns how many seats were freed.

    Per row: read the event's seats and seq (one atomic snapshot), ask PostgreSQL which of
    the row's seats have an active ticket now (resold since), then free the rest that are
    still shown sold — only if the seq has not moved since the snapshot (else read again,
    up to `PENDING_FREE_TRIES` times, and leave the row for the next round). A seat sold
    in Redis had its ticket committed before, so a resold seat is always seen as ticketed;
    the seq guard covers every change after the snapshot. The row goes once done.
    """
    async with hub.db.connection() as con:
        rows = await seat_frees_db.due(con, limit)
    freed = 0
    for row in rows:
        event_id, seats, owner = row["event_id"], list(row["seats"]), row["owner_id"]
        for _ in range(PENDING_FREE_TRIES):
            snapshot = await hub.inventory.snapshot(event_id)
            if snapshot is None:  # not loaded: a load reads PostgreSQL's tickets
                done: int | None = 0
                break
            seq, codes = snapshot
            shown_sold = [i for i in seats if i < len(codes) and codes[i] == SeatCode.SOLD]
            async with hub.db.connection() as con:
                resold = await seat_frees_db.ticketed(con, event_id, shown_sold)
            unsold = [i for i in shown_sold if i not in resold]
            done = await hub.inventory.free_unsold(event_id, seq, unsold, user_id=owner)
            if done is not None:
                break
        else:
            continue  # busy event: next round
        async with hub.db.connection() as con:
            await seat_frees_db.done(con, row["id"])
        if done:
            freed += done
            log.warning("pending_seats_freed", event_id=str(event_id), seats=done)
            await offer_free_seats(hub, event_id, prefer=tuple(seats))
    return freed


async def _after_release(
    hub: Hub, event_id: uuid.UUID, released: Released, outcome: Outcome
) -> None:
    hub.hold_log.ended(
        released.hold_id, event_id, released.user_id, len(released.seats), outcome.value
    )
    if outcome is Outcome.EXPIRED:
        EXPIRED_HOLDS.inc()
    if released.kind is HoldKind.OFFER:
        async with hub.db.transaction() as con:
            if await waitlist_db.lapse_offer(con, released.hold_id):
                log.info("waitlist_offer_lapsed", event_id=str(event_id))
    log.info(f"hold_{outcome}", hold_id=str(released.hold_id), event_id=str(event_id))


async def offer_free_seats(
    hub: Hub, event_id: uuid.UUID, prefer: Sequence[int] = (), *, mark: int | None = None
) -> int:
    """Offer free seats to waiting entries, in order, while they fit; return offers made.

    Args:
        mark: the event's waitlist mark as a release read it; when nobody waits after all
            the mark is dropped (unless a join has changed it since), so later releases skip
            this check.
    """
    async with hub.db.connection() as con:
        if not await waitlist_db.has_waiting(con, event_id):
            if mark is not None:
                await hub.inventory.clear_waitlist(event_id, mark)
            return 0
    event = await events.load_event(hub, event_id)
    if event.status != "scheduled":
        return 0
    layout = await live_seats.layout_of(hub, event.venue_id)
    made = 0
    while True:
        _, states = await events.seat_states(hub, event)
        free = states.count(SeatCode.FREE)
        if free == 0:
            return made
        async with hub.db.connection() as con:
            entry = await waitlist_db.claim_next(con, event.id, free)
        if entry is None:
            return made
        candidates = tuple(i for i in prefer if states[i] == SeatCode.FREE)
        if not await _offer(hub, event, layout, entry, candidates):
            return made
        made += 1


async def _offer(
    hub: Hub,
    event: events.Event,
    layout: live_seats.Layout,
    entry: waitlist_db.Entry,
    prefer: tuple[int, ...],
) -> bool:
    """Place the offer hold for a claimed entry and complete the claim; False when the
    seats went elsewhere meanwhile (the entry waits again)."""
    want = placing.Want(
        user_id=entry.user_id,
        kind=HoldKind.OFFER,
        ttl_ms=hub.settings.offer_ttl_seconds * 1000,
        named=prefer[: entry.quantity] if len(prefer) >= entry.quantity else None,
        quantity=entry.quantity,
        limit=event.max_tickets_per_user,
    )
    try:
        hold_id, result = await placing.try_place(hub, event, layout, want)
    except (placing.NoneFree, placing.StaleEvent):  # the next round (or the leader) retries
        result = None
    if not isinstance(result, HoldPlaced):
        reason = result.reason if result is not None else Refusal.TAKEN
        async with hub.db.connection() as con:
            if reason is Refusal.LIMIT:  # this user cannot take them: on to the next
                await waitlist_db.set_status(con, entry.id, "lapsed")
            else:  # taken meanwhile: next release, again
                await waitlist_db.unclaim(con, entry.id)
        log.info("waitlist_offer_not_made", event_id=str(event.id), reason=str(reason))
        return reason is Refusal.LIMIT
    placing.log_placed(hub, hold_id, event.id, entry.user_id, len(result.seats))
    expires = dt.datetime.fromtimestamp(result.expires_ms / 1000, dt.UTC)
    prices = placing.prices_of(event, layout, result.seats)
    offer = {
        "hold_id": str(hold_id),
        "seats": [
            {**line, "id": str(line["id"]), "price": float(line["price"])}
            for line in placing.seat_lines(layout, result.seats, prices)
        ],
        "expires_at": placing.expires_at(result.expires_ms),
    }
    async with hub.db.transaction() as con:
        completed = await waitlist_db.complete_offer(con, entry.id, hold_id, expires)
        if completed:
            await notifications.notify(
                con,
                notifications.Kind.OFFER_MADE,
                entry.user_id,
                {"event_id": str(event.id), "event": event.name, **offer},
            )
    if not completed:  # the user left the line meanwhile: the seats go on down the line
        await release_hold(hub, event.id, hold_id, mode=ReleaseMode.FORCE, offer=False)
        return True
    await hub.inventory.publish(event.id, {"t": "offer", "user_id": str(entry.user_id), **offer})
    log.info("waitlist_offer_made", event_id=str(event.id), seats=len(result.seats))
    return True


async def reopen_stalled_offers(hub: Hub) -> int:
    """Leader check: give claims left without a hold (a crash mid-offer) back to the line."""
    async with hub.db.connection() as con:
        return await waitlist_db.reopen_stalled(con, STALLED_OFFER_SECONDS)
