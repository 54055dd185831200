"""Paying refunds after the cancellation that owes them has committed.

A cancellation records its refund as due in the same transaction that cancels the
booking; nothing talks to the payment provider inside it. The leader's loop here pays due
refunds oldest first and records each payment in a short transaction of its own. A
provider error schedules another try with backoff (after ``FAILED_AFTER`` attempts the
booking shows the refund as ``failed``, and it is still retried until it is paid). A crash
between the provider's answer and the record leaves the refund due, and the next pass
asks again with the same idempotency reference (the booking's reference), which a real
provider answers with the first refund instead of a second one. Refunds go through the
payment circuit breaker: while it is open the pass stops without counting attempts.
"""

from __future__ import annotations

import asyncio

import structlog

from hub import payments
from hub.breakers import BreakerOpen
from hub.context import Hub
from hub.db import bookings as bookings_db
from hub.metrics import REFUNDS

log = structlog.get_logger(__name__)

BATCH = 50
INTERVAL_S = 1.0
FAILED_AFTER = 3
MAX_BACKOFF_S = 300.0


async def pay_due_refunds(hub: Hub) -> int:
    """Pay one batch of due refunds; return how many were paid."""
    async with hub.db.connection() as con:
        due = await bookings_db.refunds_pending(con, BATCH)
    paid = 0
    for row in due:
        try:
            refund_ref = await payments.refund(
                hub.payments,
                hub.breakers.payments,
                hub.settings.payment_timeout_seconds,
                row["refund_cents"],
                row["user_id"],
                row["reference"],
                row["provider_ref"],
            )
        except asyncio.CancelledError:
            raise
        except BreakerOpen:
            # The provider is down: not this refund's fault, so no attempt is counted;
            # the rest of the batch waits for the breaker's next trial.
            log.info("refunds_paused", breaker="payments")
            break
        except Exception as exc:
            backoff = min(MAX_BACKOFF_S, 2.0 ** row["refund_attempts"])
            async with hub.db.connection() as con:
                await bookings_db.refund_failed(con, row["id"], backoff, FAILED_AFTER)
            REFUNDS.labels(outcome="failed").inc()
            log.warning("refund_failed", booking_id=str(row["id"]), error=repr(exc))
            continue
        async with hub.db.transaction() as con:
            recorded = await bookings_db.record_refund(
                con, row["id"], hub.payments.name, refund_ref
            )
        if recorded:
            paid += 1
            REFUNDS.labels(outcome="paid").inc()
            log.info("refund_paid", booking_id=str(row["id"]), cents=row["refund_cents"])
    return paid


async def refund_loop(hub: Hub) -> None:
    """Leader loop: pay due refunds continuously."""
    while True:
        try:
            while await pay_due_refunds(hub) == BATCH:
                pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("refund_pass_failed")
        await asyncio.sleep(INTERVAL_S)
