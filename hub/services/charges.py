"""Charges of confirmations not yet settled, kept beside the hold, not only in the process.

A confirmation charges the card before its transaction. If its process dies in between
(or its COMMIT is cut off and PostgreSQL cannot say for minutes whether it stood), the
charge was known only to that process: the leader freed the seats from PostgreSQL's
record, and nobody refunded. So once taken, the charge is noted in the confirming hold's
own Redis record (``Inventory.note_charge``, sent beside the transaction), and:

- the booking stands → the finish that marks its seats sold deletes the record, note and
  all (nothing more to send);
- the confirmation is undone → the process takes the note (``Inventory.take_charge``:
  only one caller gets it) and refunds;
- the process died or gave up asking → the hold stays confirming, and the leader, settling
  it from PostgreSQL's record (``releases.settle_confirming``), takes the note of a hold
  whose booking was never written and refunds it (``refund_left``).

A note that cannot be written (Redis down) leaves the confirmation as it was before this
module: the process still refunds what it undoes itself.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass

import msgspec
import structlog

from hub.context import Hub
from hub.metrics import LEFT_CHARGES

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Charge:
    """One charge taken for a confirmation: what refunding it takes."""

    user_id: str
    reference: str
    amount_cents: int
    charge_ref: str

    def encode(self) -> bytes:
        return msgspec.json.encode(asdict(self))

    @classmethod
    def decode(cls, raw: bytes) -> Charge:
        return cls(**msgspec.json.decode(raw))


async def note(hub: Hub, event_id: uuid.UUID, hold_id: uuid.UUID, charge: Charge) -> bool:
    """Keep the charge with the confirming hold; False when it could not be kept (logged;
    the caller then refunds what it undoes, as it always did)."""
    try:
        return await hub.inventory.note_charge(event_id, hold_id, charge.encode())
    except Exception as exc:
        log.warning("charge_note_failed", hold_id=str(hold_id), error=repr(exc))
        return False


async def take(hub: Hub, event_id: uuid.UUID, hold_id: uuid.UUID) -> Charge | None:
    """The hold's note if this caller removed it (it then owns the refund), else None."""
    raw = await hub.inventory.take_charge(event_id, hold_id)
    return None if raw is None else Charge.decode(raw)


async def refund_left(hub: Hub, hold_id: uuid.UUID, charge: Charge) -> bool:
    """Leader: refund the charge of a confirmation left behind whose booking was never
    written; False (logged with what a person needs to refund it by hand) when the
    provider refused."""
    try:
        await hub.payments.refund(
            charge.amount_cents, uuid.UUID(charge.user_id), charge.reference, charge.charge_ref
        )
    except Exception as exc:
        LEFT_CHARGES.labels(outcome="refund_failed").inc()
        log.error(
            "left_charge_refund_failed",
            hold_id=str(hold_id),
            reference=charge.reference,
            charge_ref=charge.charge_ref,
            amount_cents=charge.amount_cents,
            error=repr(exc),
        )
        return False
    LEFT_CHARGES.labels(outcome="refunded").inc()
    log.warning(
        "left_charge_refunded",
        hold_id=str(hold_id),
        reference=charge.reference,
        amount_cents=charge.amount_cents,
    )
    return True
