"""Bookings as clients see them: one booking, and the caller's bookings page by page."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from engines.money import bp_to_fraction, cents_to_decimal
from hub import jsonenc
from hub.context import Hub
from hub.db import Record
from hub.db import bookings as bookings_db
from hub.errors import NotFound


def booking_view(row: Record, seats: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The contract's booking: money as two-place decimals, the rate as a fraction."""
    return {
        "id": row["id"],
        "reference": row["reference"],
        "event_id": row["event_id"],
        "user_id": row["user_id"],
        "status": row["status"],
        "seats": list(seats),
        "subtotal": cents_to_decimal(row["subtotal_cents"]),
        "discount": cents_to_decimal(row["discount_cents"]),
        "discount_rate": bp_to_fraction(row["discount_bp"]),
        "discount_code": row["discount_code"],
        "total": cents_to_decimal(row["total_cents"]),
        "group_name": row["group_name"],
        "created_at": jsonenc.isoformat(row["created_at"]),
        "refund": _refund(row),
    }


def _refund(row: Record) -> dict[str, Any] | None:
    """``{amount, status: due|paid|failed, paid_at}`` once the booking owes a refund."""
    if row["refund_cents"] is None:
        return None
    paid_at = row["refund_paid_at"]
    return {
        "amount": cents_to_decimal(row["refund_cents"]),
        "status": row["refund_status"],
        "paid_at": jsonenc.isoformat(paid_at) if paid_at is not None else None,
    }


def seat_line(row: Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "section": row["section"],
        "row": row["row_label"],
        "number": row["number"],
        "price": cents_to_decimal(row["price_cents"]),
    }


async def get_booking(
    hub: Hub, user_id: uuid.UUID, is_admin: bool, booking_id: uuid.UUID
) -> dict[str, Any]:
    """One booking, for its owner or an admin.

    Raises:
        NotFound: no such booking, or someone else's (a non-admin cannot tell them apart).
    """
    row, seats = await visible_booking(hub, user_id, is_admin, booking_id)
    return booking_view(row, seats)


async def visible_booking(
    hub: Hub, user_id: uuid.UUID, is_admin: bool, booking_id: uuid.UUID
) -> tuple[Record, list[dict[str, Any]]]:
    """A booking's row and seat lines, if the caller may see it (its owner, or an admin).

    Raises:
        NotFound: no such booking, or someone else's (a non-admin cannot tell them apart).
    """
    async with hub.db.connection() as con:
        row = await bookings_db.by_id(con, booking_id)
        if row is None or (row["user_id"] != user_id and not is_admin):
            raise NotFound(f"No such booking: {booking_id}")
        seats = await bookings_db.seats_of(con, [booking_id])
    return row, [seat_line(s) for s in seats]


async def list_bookings(
    hub: Hub,
    user_id: uuid.UUID,
    is_admin: bool,
    *,
    for_user: uuid.UUID | None,
    page: int,
    size: int,
) -> dict[str, Any]:
    """The caller's bookings, newest first: ``{items, page, size, total}``.

    Args:
        for_user: an admin's filter; an admin without it sees everyone's. A non-admin
            only ever sees their own (the route refuses anyone else's id with 403).
    """
    owner: uuid.UUID | None = user_id
    if is_admin:
        owner = for_user
    async with hub.db.connection() as con:
        rows, total = await bookings_db.page(con, owner, size, (page - 1) * size)
        seats = await bookings_db.seats_of(con, [r["id"] for r in rows])
    by_booking: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for seat in seats:
        by_booking.setdefault(seat["booking_id"], []).append(seat_line(seat))
    items = [booking_view(r, by_booking.get(r["id"], [])) for r in rows]
    return {"items": items, "page": page, "size": size, "total": total}
