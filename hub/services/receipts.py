"""Receipts: a booking's lines, subtotal, each discount by name, and total.

Built from the booking row alone (its combined rate, its group's own rate, its code), so
the receipt a bulk booking answers with and the one ``GET /bookings/{id}/receipt`` gives
later are the same. ``engines.receipts`` splits the discount, group first, so that
``subtotal - sum(discounts) == total`` to the cent.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from engines.money import bp_to_fraction, cents_to_decimal
from engines.receipts import split_discount
from hub.context import Hub
from hub.db import Record
from hub.services import booking_views


def receipt_view(row: Record, seats: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``{reference, group_name, lines[{seat_id, section, row, number, price}], subtotal,
    discounts[{name, kind, rate, amount}], total}`` for a booking row and its seat lines
    (as ``booking_views`` makes them)."""
    shares = split_discount(
        subtotal_cents=row["subtotal_cents"],
        discount_cents_total=row["discount_cents"],
        rate_bp=row["discount_bp"],
        group_bp=row["group_bp"],
        group_size=len(seats),
        code=row["discount_code"],
    )
    return {
        "reference": row["reference"],
        "group_name": row["group_name"],
        "lines": [
            {
                "seat_id": seat["id"],
                "section": seat["section"],
                "row": seat["row"],
                "number": seat["number"],
                "price": seat["price"],
            }
            for seat in seats
        ],
        "subtotal": cents_to_decimal(row["subtotal_cents"]),
        "discounts": [
            {
                "name": share.name,
                "kind": share.kind.value,
                "rate": bp_to_fraction(share.rate_bp),
                "amount": cents_to_decimal(share.cents),
            }
            for share in shares
        ],
        "total": cents_to_decimal(row["total_cents"]),
    }


async def get_receipt(
    hub: Hub, user_id: uuid.UUID, is_admin: bool, booking_id: uuid.UUID
) -> dict[str, Any]:
    """The receipt of a booking, for its owner or an admin.

    Raises:
        NotFound: no such booking, or someone else's (a non-admin cannot tell them apart).
    """
    row, seats = await booking_views.visible_booking(hub, user_id, is_admin, booking_id)
    return receipt_view(row, seats)
