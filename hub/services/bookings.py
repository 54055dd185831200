"""Confirming bookings: a hold becomes a booking (DESIGN.md §3, "Confirm").

Order, and why: mark the hold confirming (the sweeper leaves it alone, nobody else can
confirm it) → charge the card → one PostgreSQL transaction writes the booking, its
tickets, the payment, the discount-code use, the hold log and the idempotency record →
the seats become sold in Redis and the hold disappears. Until the commit any failure puts
the hold back (and refunds a charge). The partial unique index on active tickets is the
last guard: if it fires, Redis was wrong, so the seats are corrected from PostgreSQL and
the caller gets 409 ``seat_unavailable`` — never a double sale.

Round trips to PostgreSQL: the idempotency claim (when a key is given; it does not wait
for its WAL flush, ``hub.db.idempotency.claim``), then ``BEGIN``, the booking's statement
(which first takes the hold's advisory lock and the event's key-share lock, and writes
nothing for an event cancelled or started meanwhile), the idempotency record, ``COMMIT``.
A discount code adds the locks and the code's use before the booking's statement. Each
round trip waits for a turn of the event loop, which under a surge is most of its cost.
In Redis, beside those: the charge is noted in the confirming hold's record once taken
(``hub.services.charges``; the booking's finish deletes it with the hold), so a charge
whose process dies before the confirmation settles is refunded by the leader.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from engines.discounts import PriceBreakdown, price_group
from engines.seats import SeatCode
from hub import payments
from hub.context import Hub
from hub.db import CommitWatch, UniqueViolation, lifecycle
from hub.db import bookings as bookings_db
from hub.db import waitlist as waitlist_db
from hub.errors import (
    Conflict,
    HoldExpired,
    NotFound,
    PaymentFailed,
    SeatUnavailable,
    ServiceUnavailable,
)
from hub.inventory import ConfirmStarted, HoldKind, Refusal, ReleaseMode
from hub.metrics import BOOKINGS, CONFIRM_LATENCY, TICKETS_SOLD
from hub.payments import PaymentDeclined
from hub.services import (
    booking_views,
    charges,
    discounts,
    event_recommendations,
    events,
    holds,
    idempotency,
    live_seats,
    notifications,
    placing,
    receipts,
    releases,
    waiting_room,
)
from hub.services.idempotency import Claim, Replay
from hub.services.live_seats import Layout

log = structlog.get_logger(__name__)

# How long a confirmation cut off during its COMMIT keeps asking an unreachable PostgreSQL
# whether the booking was written (behind the request's answer); past it the charge is
# kept and logged (``booking_commit_unknown``).
ASK_WRITTEN_FOR_SECONDS = 300.0

_REFERENCE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read out loud


@dataclass(frozen=True, slots=True)
class BookingRequest:
    """``{hold_id}`` or ``{event_id, seat_ids}`` / ``{event_id, quantity, section?}``."""

    hold_id: uuid.UUID | None = None
    event_id: uuid.UUID | None = None
    seat_ids: tuple[uuid.UUID, ...] | None = None
    quantity: int | None = None
    section: str | None = None
    discount_code: str | None = None
    # ``X-Admission-Token``: a one-call booking needs it while the event's waiting room is
    # on; confirming a hold never does (the hold is the proof).
    admission_token: str | None = None


def new_reference() -> str:
    """A short human booking code, e.g. ``EVT-7K3Q9PXA`` (40 random bits)."""
    return "EVT-" + "".join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(8))


async def create_booking(
    hub: Hub,
    user_id: uuid.UUID,
    request: BookingRequest,
    *,
    idempotency_key: str | None = None,
    request_hash: str = "",
) -> dict[str, Any] | Replay:
    """Book: confirm a hold, or hold and confirm in one call; honours an idempotency key.

    Args:
        idempotency_key: the ``Idempotency-Key`` header, if sent.
        request_hash: digest of the request body (see ``idempotency.request_hash``).

    Returns:
        The booking view, or the ``Replay`` of the first response to the same key.

    Raises:
        NotAdmitted: a one-call booking while the event's waiting room is on, without the
            user's admission token for it.
        NotFound: no such hold or event, or a hold of someone else.
        HoldExpired: the hold expired before it was confirmed.
        Conflict: the event is cancelled or started, the hold is being confirmed, or the
            same key is still in flight.
        SeatUnavailable, SoldOut, LimitExceeded, Busy: as for holds.
        PaymentFailed: the card was declined; the hold is as it was.
        ServiceUnavailable: the payment breaker is open, or the provider failed or timed
            out; a confirmed hold is as it was, a one-call booking's seats are freed.
        ValidationError: an invalid discount code (naming ``discount_code``).
        IdempotencyConflict: the key was used with another body.
    """

    async def work(claim: Claim | None) -> dict[str, Any]:
        # An open payment breaker answers at once, before any seat is touched.
        payments.ensure_available(hub.breakers.payments)
        if request.hold_id is not None:
            return await confirm_hold(
                hub, user_id, request.hold_id, discount_code=request.discount_code, claim=claim
            )
        assert request.event_id is not None
        return await book_now(hub, user_id, request, claim=claim)

    return await idempotency.once(hub, user_id, idempotency_key, request_hash, work)


async def confirm_hold(
    hub: Hub,
    user_id: uuid.UUID,
    hold_id: uuid.UUID,
    *,
    discount_code: str | None = None,
    claim: Claim | None = None,
) -> dict[str, Any]:
    """Turn the caller's hold into a confirmed booking (see ``create_booking`` for errors)."""
    # The hold's own state (owner, expiry, not confirming already) is checked atomically by
    # the begin-confirm script; here only its event is needed.
    ref = await hub.inventory.hold_ref(hold_id)
    if ref is None or ref[1] != user_id:
        raise NotFound(f"No such hold: {hold_id}")
    event = await events.load_event(hub, ref[0])
    placing.check_bookable(event)
    layout = await live_seats.layout_of(hub, event.venue_id)
    return await confirm(hub, user_id, event, layout, hold_id, discount_code, claim)


async def book_now(
    hub: Hub, user_id: uuid.UUID, request: BookingRequest, *, claim: Claim | None = None
) -> dict[str, Any]:
    """Hold and confirm in one call; the hold is released again when confirming fails."""
    assert request.event_id is not None
    await waiting_room.require_admission(hub, user_id, request.event_id, request.admission_token)
    if request.discount_code is not None:
        event = await events.load_event(hub, request.event_id)
        await discounts.code_rate_bp(hub, request.discount_code, event.id)
    placed = await holds.hold_seats(
        hub,
        user_id,
        request.event_id,
        seat_ids=request.seat_ids,
        quantity=request.quantity,
        section=request.section,
    )
    try:
        return await confirm(
            hub, user_id, placed.event, placed.layout, placed.hold_id, request.discount_code, claim
        )
    except BaseException:
        # The seats go back on sale (and down the waitlist) unless PostgreSQL sold them.
        await hub.cleanups.settle(
            releases.release_hold(hub, placed.event.id, placed.hold_id, user_id=user_id),
            "release_failed_booking",
        )
        raise


@dataclass(frozen=True, slots=True)
class _Confirmation:
    """One confirmation under way: what its transaction writes and its undo restores."""

    user_id: uuid.UUID
    event: events.Event
    layout: Layout
    hold_id: uuid.UUID
    begun: ConfirmStarted
    price: PriceBreakdown
    discount_code: str | None
    reference: str
    claim: Claim | None
    group_name: str | None
    group_bp: int
    with_receipt: bool


async def confirm(
    hub: Hub,
    user_id: uuid.UUID,
    event: events.Event,
    layout: Layout,
    hold_id: uuid.UUID,
    discount_code: str | None,
    claim: Claim | None,
    *,
    group_name: str | None = None,
    group_bp: int = 0,
    with_receipt: bool = False,
) -> dict[str, Any]:
    """Confirm one of the user's holds on ``event`` (see ``create_booking`` for errors).

    A bulk booking passes its ``group_name`` and ``group_bp`` and asks ``with_receipt``: the
    view then carries the receipt, recorded with it for an idempotent replay."""
    started = time.perf_counter()
    code_bp = await discounts.code_rate_bp(hub, discount_code, event.id) if discount_code else 0
    begun = await hub.inventory.begin_confirm(event.id, hold_id, user_id)
    if begun is Refusal.EXPIRED:
        await holds.find_hold(hub, user_id, hold_id)  # releases it and raises HoldExpired
        raise HoldExpired("The hold has expired; hold the seats again")
    if begun is Refusal.CONFIRMING:
        raise Conflict("This hold is being confirmed already")
    if not isinstance(begun, ConfirmStarted):  # swept at its expiry, or gone meanwhile
        raise await holds.gone(hub, hold_id)
    price = price_group(
        begun.prices,
        group_bp=group_bp,
        code_bp=code_bp,
        cap_bp=hub.settings.max_discount_percent * 100,
    )
    job = _Confirmation(
        user_id,
        event,
        layout,
        hold_id,
        begun,
        price,
        discount_code,
        new_reference(),
        claim,
        group_name,
        group_bp,
        with_receipt,
    )
    provider = hub.payments
    charge_ref: str | None = None
    noted: asyncio.Future[bool] | None = None  # the charge kept outside this process
    commit = CommitWatch()  # what became of _write's COMMIT
    try:
        try:
            # Behind the payment breaker: an open one (or a provider error or timeout)
            # raises ServiceUnavailable at once, and _undo puts the hold back.
            charge_ref = await payments.charge(
                provider,
                hub.breakers.payments,
                hub.settings.payment_timeout_seconds,
                price.total_cents,
                user_id,
                job.reference,
            )
        except PaymentDeclined as exc:
            BOOKINGS.labels(outcome="payment_failed").inc()
            raise PaymentFailed("The payment was declined; your seats are still held") from exc
        # Noted beside the transaction (the booking does not wait for it): if this process
        # dies before the confirmation settles, the leader refunds it (hub.services.charges).
        noted = asyncio.ensure_future(
            charges.note(
                hub,
                event.id,
                hold_id,
                charges.Charge(str(user_id), job.reference, price.total_cents, charge_ref),
            )
        )
        view = await _write(hub, job, provider.name, charge_ref, commit)
    except BaseException as exc:
        if commit.committed:
            # Cancelled (the request's deadline, a client gone) after the commit, while the
            # connection went back to the pool: the booking stands, so its seats are sold.
            await hub.cleanups.settle(
                _finish(hub, event.id, hold_id, begun.seats), "finish_booking"
            )
        else:
            await hub.cleanups.settle(
                _undo(hub, job, charge_ref, noted, exc, unknown=commit.unknown), "undo_booking"
            )
        raise
    # The user's cached event recommendations are retired beside the seats' round trip, on
    # its own connection, so the booking waits for one round trip, not two; their next
    # answer then sees this booking (it never raises).
    forgetting = asyncio.ensure_future(event_recommendations.forget_answers(hub, user_id))
    await _finish(hub, event.id, hold_id, begun.seats)  # the charge's note goes with the hold
    await forgetting
    BOOKINGS.labels(outcome="confirmed").inc()
    TICKETS_SOLD.inc(len(begun.seats))
    CONFIRM_LATENCY.observe(time.perf_counter() - started)
    log.info(
        "booking_confirmed",
        booking_id=str(view["id"]),
        event_id=str(event.id),
        seats=len(begun.seats),
        total_cents=price.total_cents,
    )
    return view


async def _write(
    hub: Hub, job: _Confirmation, provider: str, charge_ref: str, commit: CommitWatch
) -> dict[str, Any]:
    """The one transaction of a confirmation; returns the booking view it recorded and
    tells ``commit`` what became of its COMMIT."""
    seat_ids = [job.layout.seats[i].id for i in job.begun.seats]
    reference = job.reference
    for _ in range(3):
        try:
            async with hub.db.transaction(watch=commit) as con:
                code = None
                if job.discount_code:
                    # The locks first, as without a code (the write takes them): a code's
                    # row is never locked before the event's.
                    refusal = await bookings_db.lock_for_confirmation(
                        con, job.hold_id, job.event.id
                    )
                    if refusal is not None:
                        raise Conflict(f"The event has {refusal}")
                    code = await discounts.use_code(con, job.discount_code, job.event.id)
                row = await bookings_db.write_confirmation(
                    con,
                    bookings_db.NewBooking(
                        reference=reference,
                        event_id=job.event.id,
                        user_id=job.user_id,
                        hold_id=job.hold_id,
                        price=job.price,
                        discount_code=code,
                        group_name=job.group_name,
                        group_bp=job.group_bp,
                        seat_ids=seat_ids,
                        prices=job.begun.prices,
                        provider=provider,
                        provider_ref=charge_ref,
                        notification_kind=notifications.Kind.BOOKING_CONFIRMED.value,
                    ),
                )
                if isinstance(row, str):  # nothing written
                    raise Conflict(f"The event has {row}")
                if job.begun.kind is HoldKind.OFFER:
                    await waitlist_db.mark_booked(con, job.hold_id)
                lines = placing.seat_lines(job.layout, job.begun.seats, job.begun.prices)
                view = booking_views.booking_view(row, lines)
                if job.with_receipt:
                    view["receipt"] = receipts.receipt_view(row, lines)
                if job.claim is not None:
                    await job.claim.record(con, 201, view)
                return view
        except UniqueViolation as exc:
            if exc.constraint_name == "bookings_reference_key":
                reference = new_reference()
                continue
            if exc.constraint_name == bookings_db.ACTIVE_TICKET_GUARD:
                raise await _guard_fired(hub, job.event, job.layout, seat_ids) from exc
            if exc.constraint_name == "bookings_hold_key":
                raise Conflict("This hold was booked already") from exc
            raise
    raise Conflict("Could not allocate a booking reference; try again")


async def _guard_fired(
    hub: Hub, event: events.Event, layout: Layout, seat_ids: Sequence[uuid.UUID]
) -> SeatUnavailable:
    """PostgreSQL refused a seat Redis called held by us: find which, say so."""
    async with hub.db.connection() as con:
        sold = await bookings_db.active_seat_ids(con, event.id, seat_ids)
    BOOKINGS.labels(outcome="guard_refused").inc()
    log.warning("booking_guard_fired", event_id=str(event.id), seats=len(sold))
    return SeatUnavailable(
        f"{len(sold)} of the seats were sold already",
        seats=sorted(sold, key=lambda s: layout.idx_of[s]),
    )


async def _undo(
    hub: Hub,
    job: _Confirmation,
    charge_ref: str | None,
    noted: asyncio.Future[bool] | None,
    exc: BaseException,
    *,
    unknown: bool,
) -> None:
    """Nothing was committed: refund any charge, put the hold back (or correct Redis).

    Unless the COMMIT's outcome is ``unknown`` (the connection lost, or the request's
    deadline cancelling it, while the COMMIT was on its way): the booking may stand.
    PostgreSQL is asked, again and again while it cannot say (this runs behind the
    request's answer, ``hub.cleanups``); if it wrote the booking, the seats become sold
    and the charge is kept; if not, the charge is refunded and the hold put back. If it
    cannot be asked within ``ASK_WRITTEN_FOR_SECONDS``, the charge is kept and the hold
    stays confirming — the leader settles it by PostgreSQL's record once it answers
    (tickets there → sold; none → released, and the charge noted with the hold
    refunded). Putting it back blindly would show seats free that PostgreSQL
    sold, and refund a booking that stands."""
    if unknown:
        try:
            written = await _ask_written(hub, job.hold_id)
        except Exception as unknown:
            BOOKINGS.labels(outcome="failed").inc()
            log.error(
                "booking_commit_unknown",
                hold_id=str(job.hold_id),
                reference=job.reference,
                charge_ref=charge_ref,
                error=repr(unknown),
            )
            return
        if written:
            log.warning("booking_commit_found", hold_id=str(job.hold_id))
            await _finish(hub, job.event.id, job.hold_id, job.begun.seats)
            return
    try:
        if charge_ref is not None:
            await _refund(hub, job, charge_ref, noted)
        if isinstance(exc, SeatUnavailable):
            # Redis was wrong about these seats: PostgreSQL sold them. Mark them sold first
            # (so they are never shown free), then free the rest of the hold.
            sold = [job.layout.idx_of[uuid.UUID(str(s))] for s in exc.extra.get("seats", [])]
            await hub.inventory.set_seats(job.event.id, sold, SeatCode.SOLD)
            await releases.release_hold(hub, job.event.id, job.hold_id, mode=ReleaseMode.FORCE)
        else:
            await hub.inventory.abort_confirm(job.event.id, job.hold_id)
    except Exception as cleanup:  # the leader reconciles a stuck confirming hold
        log.error("booking_undo_failed", hold_id=str(job.hold_id), error=repr(cleanup))
    if not isinstance(exc, PaymentFailed | SeatUnavailable):
        BOOKINGS.labels(outcome="failed").inc()


async def _refund(
    hub: Hub, job: _Confirmation, charge_ref: str, noted: asyncio.Future[bool] | None
) -> None:
    """Refund the charge of an undone confirmation, unless the leader took its note first
    (and refunded it). A refund that fails is noted again and raised: the hold then stays
    confirming, and the leader settles it and refunds.

    Raises:
        Exception: the provider's, or Redis's while taking the note (the note then stays,
            and the leader refunds it).
    """
    kept = await noted if noted is not None else False
    charge = await charges.take(hub, job.event.id, job.hold_id) if kept else None
    if kept and charge is None:
        return
    try:
        await hub.payments.refund(job.price.total_cents, job.user_id, job.reference, charge_ref)
    except Exception:
        if charge is not None:  # the hold stays confirming: the leader refunds it
            await charges.note(hub, job.event.id, job.hold_id, charge)
        raise


async def _ask_written(hub: Hub, hold_id: uuid.UUID) -> bool:
    """Whether a confirmation whose commit was cut off wrote its booking, asked until
    PostgreSQL can say.

    While the confirmation's transaction still holds the hold's lock (its COMMIT on its
    way), PostgreSQL answers "not yet" and is asked again. A try it does not answer within
    the request timeout (a silent server, an outage) is tried again too, for up to
    ``ASK_WRITTEN_FOR_SECONDS``; then the last failure is raised. (Meanwhile the leader may
    settle the hold's seats from PostgreSQL's record: the answer here agrees with it, and
    only this check can refund a charge whose booking was not written.)"""
    settings = hub.settings
    give_up = time.monotonic() + ASK_WRITTEN_FOR_SECONDS
    delay = 0.2
    while True:
        try:
            async with asyncio.timeout(settings.request_timeout_seconds):
                written = await _was_written(hub, hold_id)
            if written is not None:
                return written
        except (ServiceUnavailable, TimeoutError):
            if time.monotonic() + delay >= give_up:
                raise
        await asyncio.sleep(delay)
        delay = min(2 * delay, 2.0)


async def _was_written(hub: Hub, hold_id: uuid.UUID) -> bool | None:
    """Whether a confirmation whose commit was cut off wrote its booking, or None while its
    transaction is still on its way: asked under the hold's advisory lock, which that
    transaction holds until it ends, so the answer is final."""
    async with hub.db.transaction() as con:
        if not await lifecycle.try_lock_hold(con, hold_id):
            return None
        return await lifecycle.booked_seat_indexes(con, hold_id) is not None


async def _finish(hub: Hub, event_id: uuid.UUID, hold_id: uuid.UUID, seats: Sequence[int]) -> None:
    """Committed: the seats become sold in Redis (given explicitly, so they end sold even if
    the hold was reconciled away meanwhile). A failure here leaves the hold confirming,
    which the leader settles from PostgreSQL; the booking stands either way."""
    try:
        await hub.inventory.finish_confirm(event_id, hold_id, seats, forget=True)
    except Exception as exc:
        log.error("booking_finish_failed", hold_id=str(hold_id), error=repr(exc))
