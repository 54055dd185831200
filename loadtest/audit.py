"""The oversell audit run after a surge: does every view of the seats tell the same story?

What is compared, once every buyer request has finished:

- the API's final seat map (``GET /events/{id}/seats``: ``free | held | sold`` per seat);
- PostgreSQL, read directly with asyncpg: the active tickets of the event and the bookings
  the buyers were told about;
- what the buyers saw: every ``201`` from ``POST /bookings`` (booking id and seats) and every
  ``200`` from ``POST /bookings/{id}/cancel``.

Rules (any broken one fails the audit, with a reason naming the seats or bookings):

1. no seat has more than one active ticket (a double sale);
2. a seat is ``sold`` in the API exactly when it has an active ticket in PostgreSQL;
3. every booking a buyer saw confirmed is in PostgreSQL with exactly the seats of its 201,
   ``confirmed`` with active tickets — or ``cancelled`` with none active if the buyer
   cancelled it;
4. every active ticket belongs to a booking that is ``confirmed``.

``check`` is pure (plain data in, an ``Audit`` out) so it can be tested on made-up
inconsistent states; ``load_pg`` and ``load_api`` do the I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_LISTED = 10  # seats or bookings named per reason


@dataclass(frozen=True, slots=True)
class SeenBooking:
    """A booking as a buyer saw it: the 201's id and seats, and whether it cancelled it.

    ``cancelled`` is None when a cancel was sent but its outcome is unknown (no answer, or a
    5xx): then either state passes, as long as it is a whole one (confirmed with every
    ticket active, or cancelled with none).
    """

    booking_id: str
    seat_ids: tuple[str, ...]
    cancelled: bool | None = False


@dataclass(frozen=True, slots=True)
class PgState:
    """What PostgreSQL holds for the event."""

    # (seat_id, booking_id) for every active ticket; a seat sold twice appears twice.
    active_tickets: list[tuple[str, str]]
    # booking_id -> (status, every ticket's seat_id, active tickets' seat_ids)
    bookings: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]]


@dataclass(slots=True)
class Audit:
    """The verdict. ``skipped``: nothing could be checked (no database given), which is
    neither a pass nor a failure: ``ok`` is then true (the run does not fail) and every
    line says it was skipped."""

    ok: bool
    reasons: list[str] = field(default_factory=list)
    figures: dict[str, int] = field(default_factory=dict)
    skipped: str | None = None

    @classmethod
    def skip(cls, why: str, figures: dict[str, int] | None = None) -> Audit:
        return cls(True, [], figures or {}, skipped=why)

    def line(self) -> str:
        if self.skipped:
            return f"audit: skipped ({self.skipped})"
        if self.ok:
            return "audit: ok"
        return "audit: FAILED\n" + "\n".join(f"  - {reason}" for reason in self.reasons)

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "skipped": self.skipped,
            "reasons": list(self.reasons),
            "figures": dict(self.figures),
        }


def api_figures(api_status: Mapping[str, str]) -> dict[str, int]:
    """What the API's seat map says: seats, sold, held, free."""
    counts = Counter(api_status.values())
    return {
        "seats": len(api_status),
        "sold_api": counts["sold"],
        "held_api": counts["held"],
        "free_api": counts["free"],
    }


def _some(items: Iterable[str]) -> str:
    listed = sorted(items)
    more = f" (+{len(listed) - MAX_LISTED} more)" if len(listed) > MAX_LISTED else ""
    return ", ".join(listed[:MAX_LISTED]) + more


def check(api_status: Mapping[str, str], pg: PgState, seen: Iterable[SeenBooking]) -> Audit:
    """Apply the four rules.

    Args:
        api_status: seat id -> ``free|held|sold`` from the API's seat map.
        pg: the event's tickets and the seen bookings as PostgreSQL has them.
        seen: every booking the buyers got a 201 for.

    Returns:
        The audit: ok, or not ok with one reason per broken rule.
    """
    reasons: list[str] = []
    per_seat = Counter(seat for seat, _ in pg.active_tickets)
    doubles = {seat for seat, n in per_seat.items() if n > 1}
    if doubles:
        reasons.append(f"{len(doubles)} seats have two or more active tickets: {_some(doubles)}")
    pg_sold = set(per_seat)
    api_sold = {seat for seat, status in api_status.items() if status == "sold"}
    unknown = pg_sold - api_status.keys()
    if unknown:
        reasons.append(f"{len(unknown)} ticketed seats are not in the seat map: {_some(unknown)}")
    shown_unsold = pg_sold - api_sold - unknown
    if shown_unsold:
        states = Counter(api_status[s] for s in shown_unsold)
        reasons.append(
            f"{len(shown_unsold)} seats with an active ticket are not sold in the API "
            f"({dict(states)}): {_some(shown_unsold)}"
        )
    sold_unticketed = api_sold - pg_sold
    if sold_unticketed:
        reasons.append(
            f"{len(sold_unticketed)} seats sold in the API have no active ticket: "
            f"{_some(sold_unticketed)}"
        )
    seen_list = list(seen)
    missing, wrong_seats, wrong_status = [], [], []
    for booking in seen_list:
        found = pg.bookings.get(booking.booking_id)
        if found is None:
            missing.append(booking.booking_id)
            continue
        status, seats, active = found
        if sorted(seats) != sorted(booking.seat_ids):
            wrong_seats.append(booking.booking_id)
        whole = {("cancelled", ()), ("confirmed", tuple(sorted(booking.seat_ids)))}
        state = (status, tuple(sorted(active)))
        if booking.cancelled is None:
            if state not in whole:
                wrong_status.append(booking.booking_id)
            continue
        expected = "cancelled" if booking.cancelled else "confirmed"
        expected_active = () if booking.cancelled else booking.seat_ids
        if status != expected or sorted(active) != sorted(expected_active):
            wrong_status.append(booking.booking_id)
    if missing:
        reasons.append(f"{len(missing)} bookings confirmed to buyers are missing: {_some(missing)}")
    if wrong_seats:
        reasons.append(
            f"{len(wrong_seats)} bookings have other seats than their 201: {_some(wrong_seats)}"
        )
    if wrong_status:
        reasons.append(
            f"{len(wrong_status)} bookings are not in the state the buyers were told "
            f"(status or active tickets): {_some(wrong_status)}"
        )
    orphan = {b for _, b in pg.active_tickets if pg.bookings.get(b, ("?",))[0] != "confirmed"}
    if orphan:
        reasons.append(
            f"{len(orphan)} bookings with active tickets are not confirmed: {_some(orphan)}"
        )
    figures = {
        **api_figures(api_status),
        "active_tickets_pg": len(pg.active_tickets),
        "double_sold_seats": len(doubles),
        "bookings_seen": len(seen_list),
        "bookings_seen_cancelled": sum(1 for b in seen_list if b.cancelled),
        "bookings_cancel_in_doubt": sum(1 for b in seen_list if b.cancelled is None),
    }
    return Audit(not reasons, reasons, figures)


_TICKETS_SQL = """
SELECT seat_id::text, booking_id::text FROM tickets WHERE event_id = $1 AND active
"""
_BOOKINGS_SQL = """
SELECT b.id::text AS id, b.status,
       coalesce(array_agg(t.seat_id::text) FILTER (WHERE t.id IS NOT NULL), '{}') AS seats,
       coalesce(array_agg(t.seat_id::text) FILTER (WHERE t.active), '{}') AS active
FROM bookings b LEFT JOIN tickets t ON t.booking_id = b.id
WHERE b.event_id = $1
GROUP BY b.id, b.status
"""


async def load_pg(database_url: str, event_id: str) -> PgState:
    """The event's active tickets and all its bookings, straight from PostgreSQL."""
    import asyncpg

    con = await asyncpg.connect(database_url)
    try:
        tickets = await con.fetch(_TICKETS_SQL, event_id)
        rows = await con.fetch(_BOOKINGS_SQL, event_id)
    finally:
        await con.close()
    return PgState(
        active_tickets=[(r[0], r[1]) for r in tickets],
        bookings={r["id"]: (r["status"], tuple(r["seats"]), tuple(r["active"])) for r in rows},
    )


def api_statuses(seat_map: Mapping[str, Any]) -> dict[str, str]:
    """seat id -> status from a ``GET /events/{id}/seats`` body."""
    return {str(seat["id"]): str(seat["status"]) for seat in seat_map["seats"]}
