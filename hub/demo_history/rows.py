"""Steps 5-6 of the package docstring: seats for the tickets, then every table's rows as
columns (``History``): bookings, tickets, holds, payments, users and the new events."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hub.demo_history.catalogue import (
    CATALOGUE,
    CATEGORIES,
    DAY,
    EMAIL_DOMAIN,
    FIRST_NAMES,
    HOUR,
    LAST_NAMES,
    UNUSABLE_PASSWORD,
)
from hub.demo_history.model import History, Plan, Table, uuids
from hub.demo_history.sales import (
    PERIOD,
    Bookings,
    Customers,
    Events,
    draw_customers,
    quantities,
    sale_times,
)


def seat_tickets(ev: Events, bk: Bookings) -> tuple[np.ndarray, np.ndarray]:
    """Each ticket's seat (a position in the venues' seats laid end to end) and booking.

    Bookings come sorted by event and time, so an event's tickets take the next seats of
    its venue's sale order: distinct within the event by construction.
    """
    base = np.concatenate([[0], np.cumsum([v.capacity for v in ev.venues])])
    order = np.concatenate([b + v.sale_order() for b, v in zip(base, ev.venues, strict=False)])
    ticket_booking = np.repeat(np.arange(bk.event.size), bk.quantity)
    ticket_event = bk.event[ticket_booking]
    per_event = np.bincount(ticket_event, minlength=ev.starts.size)
    first = np.concatenate([[0], np.cumsum(per_event)])[:-1]
    rank = np.arange(ticket_booking.size) - first[ticket_event]
    if np.any(rank >= ev.capacity[ticket_event]):
        raise AssertionError("an event sold more tickets than it has seats")
    return order[base[ev.venue[ticket_event]] + rank], ticket_booking


def _text(values: Sequence[str]) -> np.ndarray:
    return np.array([v.encode() for v in values], dtype=bytes)


def _objects(values: Sequence[object]) -> np.ndarray:
    """An object array of the values as they are (lists stay lists)."""
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        out[i] = value
    return out


def _hex(rng: np.random.Generator, n: int, digits: int) -> np.ndarray:
    """``n`` random lower-case hex strings of ``digits`` characters, as (n, digits) uint8."""
    nibbles = rng.integers(0, 16, size=(n, digits), dtype=np.uint8)
    return np.frombuffer(b"0123456789abcdef", np.uint8)[nibbles]


def _joined(prefix: bytes, chars: np.ndarray) -> np.ndarray:
    """``prefix`` + each row of ``chars`` (uint8), as an ``S`` array."""
    n, width = chars.shape
    out = np.empty((n, len(prefix) + width), dtype=np.uint8)
    out[:, : len(prefix)] = np.frombuffer(prefix, np.uint8)
    out[:, len(prefix) :] = chars
    return out.view(f"S{len(prefix) + width}").ravel()


_REFERENCE_ALPHABET = np.frombuffer(b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ", np.uint8)


def references(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` distinct booking references shaped as the hub's (``EVT-`` + 8 of 32 symbols):
    ordinals scrambled by an odd multiplier and a random offset modulo 2**40, a bijection,
    so no two are equal."""
    offset = int(rng.integers(0, 2**40))
    code = (np.arange(n, dtype=np.uint64) * np.uint64(0x9E3779B97) + np.uint64(offset)) % (
        np.uint64(2**40)
    )
    shifts = np.arange(35, -1, -5, dtype=np.uint64)
    digits = ((code[:, None] >> shifts) & np.uint64(31)).astype(np.intp)
    return _joined(b"EVT-", _REFERENCE_ALPHABET[digits])


def _datetimes(seconds: np.ndarray) -> np.ndarray:
    return seconds.astype("datetime64[s]")


def history_rows(
    rng: np.random.Generator,
    plan: Plan,
    ev: Events,
    bk: Bookings,
    bk_user: np.ndarray,
    cust: Customers,
    seats: np.ndarray,
    ticket_booking: np.ndarray,
) -> History:
    n_b = bk.event.size
    starts = ev.starts[bk.event]
    # Cancellations: before the event and before now; fewer on hits.
    p_cancel = plan.cancel_rate * np.where(ev.hit[bk.event], 0.4, 1.0)
    cancel_at = bk.created + (rng.uniform(0.05, 0.95, n_b) * (starts - bk.created)).astype(np.int64)
    cancelled = (rng.random(n_b) < p_cancel) & (
        cancel_at < np.minimum(starts - HOUR, plan.now - 60)
    )
    cancelled &= cancel_at > bk.created
    # Money: each ticket at its event's price for the seat's section.
    all_sections = np.concatenate([v.sections for v in ev.venues])
    price_base = np.concatenate([[0], np.cumsum([p.size for p in ev.prices])])
    flat_prices = np.concatenate(ev.prices)
    ticket_event = bk.event[ticket_booking]
    ticket_price = flat_prices[price_base[ticket_event] + all_sections[seats]]
    total = np.bincount(ticket_booking, weights=ticket_price, minlength=n_b).astype(np.int64)
    paid_at = cancel_at + rng.integers(1, 30, n_b)
    booking_ids, hold_ids = uuids(rng, n_b), uuids(rng, n_b)
    user_ids = cust.ids[bk_user]
    status = np.where(cancelled, b"cancelled", b"confirmed")
    bookings: Table = {
        "id": booking_ids,
        "reference": references(rng, n_b),
        "event_id": ev.ids[bk.event],
        "user_id": user_ids,
        "hold_id": hold_ids,
        "status": status,
        "subtotal_cents": total,
        "total_cents": total,
        "created_at": _datetimes(bk.created),
        "cancelled_at": np.ma.masked_array(_datetimes(cancel_at), mask=~cancelled),
        "refund_cents": np.ma.masked_array(total, mask=~cancelled),
        "refund_status": np.ma.masked_array(np.full(n_b, b"paid"), mask=~cancelled),
        "refund_paid_at": np.ma.masked_array(_datetimes(paid_at), mask=~cancelled),
        "refund_next_at": np.ma.masked_array(_datetimes(cancel_at), mask=~cancelled),
    }
    all_seat_ids = np.concatenate([v.seat_ids for v in ev.venues])
    tickets: Table = {
        "id": uuids(rng, seats.size),
        "booking_id": booking_ids[ticket_booking],
        "event_id": ev.ids[ticket_event],
        "seat_id": all_seat_ids[seats],
        "price_cents": ticket_price.astype(np.int64),
        "active": ~cancelled[ticket_booking],
        "created_at": _datetimes(bk.created[ticket_booking]),
    }
    hold_log = _holds(rng, plan, ev, bk, bk_user, cust, hold_ids)
    payments = _payments(rng, bookings, cancelled, user_ids, total, bk.created, paid_at)
    users = _users(rng, cust, bk_user, bk.created)
    events, event_prices = _event_rows(rng, ev, plan.now)
    known = ~ev.new
    on_sale: Table = {"id": ev.ids[known], "created_at": _datetimes(ev.on_sale[known] - 7 * DAY)}
    return History(users, events, event_prices, bookings, tickets, hold_log, payments, on_sale)


def _holds(
    rng: np.random.Generator,
    plan: Plan,
    ev: Events,
    bk: Bookings,
    bk_user: np.ndarray,
    cust: Customers,
    hold_ids: np.ndarray,
) -> Table:
    """The hold behind each booking (placed minutes before it) and the holds that came to
    nothing (let go, or left to expire), so that bookings / holds ~ the conversion."""
    n_b = bk.event.size
    placed = np.maximum(bk.created - rng.integers(25, 480, n_b), ev.on_sale[bk.event])
    conversion = np.clip(
        np.where(ev.hit, 0.65, 1.0) * plan.conversion * rng.uniform(0.9, 1.1, ev.starts.size),
        0.05,
        1.0,
    )
    per_event = np.bincount(bk.event, minlength=ev.starts.size)
    lost = rng.poisson(per_event * (1 / conversion - 1))
    e_lost = np.repeat(np.arange(ev.starts.size), lost)
    burst = rng.random(e_lost.size) < np.where(ev.hit[e_lost], 0.6, 0.15)
    t_lost = sale_times(rng, ev.on_sale[e_lost], ev.starts[e_lost], burst)
    keep = t_lost < plan.now - 1200  # every lost hold ended before now
    e_lost, t_lost = e_lost[keep], t_lost[keep]
    u_lost = np.empty(e_lost.size, dtype=np.int64)
    draw_customers(rng, cust, ev.category[e_lost], t_lost, np.arange(e_lost.size), u_lost)
    expired = rng.random(e_lost.size) < 0.5
    ended = t_lost + np.where(expired, 600, rng.integers(20, 500, e_lost.size))
    outcome = np.concatenate(
        [np.full(n_b, b"booked"), np.where(expired, b"expired", b"released")]
    ).astype(bytes)
    return {
        "hold_id": np.concatenate([hold_ids, uuids(rng, e_lost.size)]),
        "event_id": ev.ids[np.concatenate([bk.event, e_lost])],
        "user_id": cust.ids[np.concatenate([bk_user, u_lost])],
        "seats": np.concatenate([bk.quantity, quantities(rng, ev.category[e_lost])]).astype(
            np.int32
        ),
        "outcome": outcome,
        "created_at": _datetimes(np.concatenate([placed, t_lost])),
        "ended_at": _datetimes(np.concatenate([bk.created, ended])),
    }


def _payments(
    rng: np.random.Generator,
    bookings: Table,
    cancelled: np.ndarray,
    user_ids: np.ndarray,
    total: np.ndarray,
    created: np.ndarray,
    paid_at: np.ndarray,
) -> Table:
    """A charge per booking and a refund per cancelled one, as the simulator records them."""
    n_b, n_r = total.size, int(cancelled.sum())
    return {
        "id": uuids(rng, n_b + n_r),
        "booking_id": np.concatenate([bookings["id"], bookings["id"][cancelled]]),
        "user_id": np.concatenate([user_ids, user_ids[cancelled]]),
        "kind": np.concatenate([np.full(n_b, b"charge"), np.full(n_r, b"refund")]),
        "amount_cents": np.concatenate([total, total[cancelled]]),
        "provider": np.full(n_b + n_r, b"simulated"),
        "provider_ref": np.concatenate(
            [_joined(b"sim_ch_", _hex(rng, n_b, 16)), _joined(b"sim_re_", _hex(rng, n_r, 16))]
        ),
        "created_at": _datetimes(np.concatenate([created, paid_at[cancelled]])),
    }


def _users(
    rng: np.random.Generator, cust: Customers, bk_user: np.ndarray, created: np.ndarray
) -> Table:
    """The generated customers' rows: signed up before their first booking."""
    n = cust.new
    first_booking = np.full(cust.ids.shape[0], np.iinfo(np.int64).max)
    np.minimum.at(first_booking, bk_user, created)
    joined = cust.start + cust.joined[:n] * PERIOD + rng.integers(0, PERIOD, n)
    signed_up = np.minimum(joined, first_booking[:n] - rng.integers(HOUR, 10 * DAY, n))
    first = rng.integers(len(FIRST_NAMES), size=n)
    last = rng.integers(len(LAST_NAMES), size=n)
    names = [
        f"{FIRST_NAMES[f]} {LAST_NAMES[s]}"
        for f, s in zip(first.tolist(), last.tolist(), strict=True)
    ]
    emails = [
        f"{FIRST_NAMES[f].lower()}.{LAST_NAMES[s].lower()}.{i}@{EMAIL_DOMAIN}"
        for i, (f, s) in enumerate(zip(first.tolist(), last.tolist(), strict=True))
    ]
    return {
        "id": cust.ids[:n],
        "email": _text(emails),
        "name": _text(names),
        "password_hash": np.full(n, UNUSABLE_PASSWORD.encode()),
        "role": np.full(n, b"user"),
        "created_at": _datetimes(signed_up),
    }


def _event_rows(rng: np.random.Generator, ev: Events, now: int) -> tuple[Table, Table]:
    """The generated events and their section prices."""
    new = np.flatnonzero(ev.new)
    names, descriptions, keywords = [], [], []
    for e in new.tolist():
        category = CATEGORIES[ev.category[e]]
        stems, stem_keywords, shared = CATALOGUE[category]
        stem = stems[ev.stem[e]]
        year = int(ev.starts[e].astype("datetime64[s]").astype("datetime64[Y]").astype(int)) + 1970
        names.append(f"{stem} {year}" if category in ("concert", "conference") else stem)
        picked = rng.choice(len(shared), size=2, replace=False)
        keywords.append(list(stem_keywords[ev.stem[e]]) + [shared[i] for i in sorted(picked)])
        descriptions.append(f"{stem}: a {category} night{' (sold out)' if ev.hit[e] else ''}.")
    # A week before its sales open, or now for a sale that opens later: a creation time in
    # the future reads as "an event created since" to every later check (the
    # event-recommendation model was rebuilt every few seconds on a demo hub).
    created = np.minimum(ev.on_sale[new] - 7 * DAY, now)
    events: Table = {
        "id": ev.ids[new],
        "venue_id": np.array(
            [list(ev.venues[v].id) for v in ev.venue[new].tolist()], np.uint8
        ).reshape(new.size, 16),
        "name": _text(names),
        "description": _text(descriptions),
        "category": _text([CATEGORIES[c] for c in ev.category[new].tolist()]),
        "keywords": _objects(keywords),
        "starts_at": _datetimes(ev.starts[new]),
        "created_at": _datetimes(created),
        "updated_at": _datetimes(created),
    }
    sections = [ev.venues[v].section_names for v in ev.venue[new].tolist()]
    counts = np.array([len(s) for s in sections], dtype=np.int64)
    cents = (
        np.concatenate([ev.prices[e] for e in new.tolist()]) if new.size else np.zeros(0, np.int64)
    )
    event_prices: Table = {
        "event_id": np.repeat(ev.ids[new], counts, axis=0),
        "section": _text([name for names_ in sections for name in names_]),
        "base_price_cents": cents,
        "current_price_cents": cents,
        "updated_at": _datetimes(np.repeat(created, counts)),
    }
    return events, event_prices
