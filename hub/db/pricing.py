"""SQL for dynamic pricing: the state of every on-sale section in one query per batch (a
record per event, its sections as arrays), the applied prices written in one statement per
batch, and the price history.

A batch is a run of on-sale events (scheduled, not started) in id order, taken by keyset:
the next batch starts after the last id of the previous one, so no batch rereads a row.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from hub.db import Connection, Record

# One row per on-sale event, up to $3 of them with ids above $1 (only the events of $2 when
# given), in event id order, with its sections' figures as arrays in venue section order (a
# row per section would cost a record, an id and a timestamp per section to decode). Seats
# booked are counted per ticket (a booking of 4 seats is 4), the unit of the capacity they
# are compared with: recent ones in ($4 or until - window, until], baseline ones in
# (until - window - baseline, until - window], with until = $5 or now().
_STATE = """
WITH clock AS (
    SELECT coalesce($5::timestamptz, now()) AS until
), span AS (
    SELECT until,
           coalesce($4::timestamptz, until - make_interval(secs => $6)) AS since,
           until - make_interval(secs => $6) AS window_start,
           until - make_interval(secs => $6 + $7) AS baseline_start
      FROM clock
), batch AS (
    SELECT e.id, e.venue_id, e.starts_at
      FROM events e, span
     WHERE e.status = 'scheduled' AND e.starts_at > span.until AND e.id > $1
       AND ($2::uuid[] IS NULL OR e.id = ANY($2::uuid[]))
     ORDER BY e.id
     LIMIT $3
), capacity AS (
    SELECT s.venue_id, s.section, count(*) AS seats
      FROM seats s
     WHERE s.venue_id IN (SELECT venue_id FROM batch)
     GROUP BY s.venue_id, s.section
), sold AS (
    SELECT t.event_id, s.section, count(*) AS seats
      FROM tickets t
      JOIN seats s ON s.id = t.seat_id
     WHERE t.active AND t.event_id IN (SELECT id FROM batch)
     GROUP BY t.event_id, s.section
), booked AS (
    SELECT b.event_id,
           count(*) FILTER (WHERE b.created_at > span.since AND b.created_at <= span.until)
               AS recent,
           count(*) FILTER (WHERE b.created_at > span.baseline_start
                              AND b.created_at <= span.window_start) AS baseline
      FROM bookings b
      JOIN tickets t ON t.booking_id = b.id, span
     WHERE b.event_id IN (SELECT id FROM batch)
       AND b.created_at > least(span.since, span.baseline_start)
     GROUP BY b.event_id
), waiting AS (
    SELECT w.event_id, sum(w.quantity) AS seats
      FROM waitlist w
     WHERE w.status = 'waiting' AND w.event_id IN (SELECT id FROM batch)
     GROUP BY w.event_id
), priced AS (
    SELECT p.event_id,
           array_agg(p.section ORDER BY vs.position) AS sections,
           array_agg(p.base_price_cents ORDER BY vs.position) AS base_cents,
           array_agg(p.current_price_cents ORDER BY vs.position) AS current_cents,
           array_agg(coalesce(c.seats, 0)::int8 ORDER BY vs.position) AS capacity,
           array_agg(coalesce(s.seats, 0)::int8 ORDER BY vs.position) AS sold
      FROM batch b
      JOIN event_prices p ON p.event_id = b.id
      JOIN venue_sections vs ON vs.venue_id = b.venue_id AND vs.name = p.section
      LEFT JOIN capacity c ON c.venue_id = b.venue_id AND c.section = p.section
      LEFT JOIN sold s ON s.event_id = b.id AND s.section = p.section
     GROUP BY p.event_id
)
SELECT b.id AS event_id,
       b.venue_id,
       extract(epoch FROM b.starts_at - span.until)::float8 AS seconds_to_start,
       p.sections,
       p.base_cents,
       p.current_cents,
       p.capacity,
       p.sold,
       coalesce(k.recent, 0)::int8 AS recent,
       coalesce(k.baseline, 0)::int8 AS baseline,
       coalesce(w.seats, 0)::int8 AS waitlisted,
       span.until
  FROM batch b
  CROSS JOIN span
  JOIN priced p ON p.event_id = b.id
  LEFT JOIN booked k ON k.event_id = b.id
  LEFT JOIN waiting w ON w.event_id = b.id
 ORDER BY b.id
"""

# Applies new prices where the current price is still the one they were computed from (a
# price an admin set meanwhile wins), and records each applied change; returns the tags ($9)
# of those applied, as one array. The history rows come from the update's own RETURNING, not
# from a join back to the input; the data-modifying CTE runs whether or not it is read.
_APPLY = """
WITH changed AS (
    UPDATE event_prices p
       SET current_price_cents = i.new_cents, updated_at = now()
      FROM unnest($1::uuid[], $2::text[], $3::int8[], $4::int8[],
                  $5::float8[], $6::float8[], $7::float8[], $8::float8[], $9::int4[])
           AS i(event_id, section, old_cents, new_cents,
                f_demand, f_time, f_velocity, f_waitlist, tag)
     WHERE p.event_id = i.event_id AND p.section = i.section
       AND p.current_price_cents = i.old_cents
    RETURNING p.event_id, p.section, i.old_cents, i.new_cents,
              i.f_demand, i.f_time, i.f_velocity, i.f_waitlist, i.tag
), logged AS (
    INSERT INTO price_history (event_id, section, old_cents, new_cents, applied, factors)
    SELECT c.event_id, c.section, c.old_cents, c.new_cents, true,
           jsonb_build_object('demand', c.f_demand, 'time', c.f_time,
                              'velocity', c.f_velocity, 'waitlist', c.f_waitlist)
      FROM changed c
)
SELECT coalesce(array_agg(tag), '{}') FROM changed
"""


@dataclass(frozen=True, slots=True)
class Window:
    """Which bookings count as recent and which as the baseline (see ``_STATE``).

    ``since`` None means "the last ``window_seconds``"; ``until`` None means now().
    """

    window_seconds: float
    baseline_seconds: float
    since: dt.datetime | None = None
    until: dt.datetime | None = None


async def state_batch(
    con: Connection,
    *,
    after: uuid.UUID,
    limit: int,
    window: Window,
    only: Sequence[uuid.UUID] | None = None,
) -> list[Record]:
    """The pricing state of up to ``limit`` on-sale events with ids above ``after``.

    Returns:
        One record per event, in id order: event_id, venue_id, seconds_to_start, then one
        array entry per section in venue order: sections, base_cents, current_cents,
        capacity, sold; then recent, baseline, waitlisted, until.
    """
    return list(
        await con.fetch(
            _STATE,
            after,
            None if only is None else list(only),
            limit,
            window.since,
            window.until,
            window.window_seconds,
            window.baseline_seconds,
        )
    )


@dataclass(frozen=True, slots=True)
class NewPrices:
    """Column lists of the price changes to apply, one entry per (event, section); ``tags``
    are the caller's names for the entries (e.g. row numbers), returned for those applied."""

    event_ids: list[uuid.UUID]
    sections: list[str]
    old_cents: list[int]
    new_cents: list[int]
    demand: list[float]
    time: list[float]
    velocity: list[float]
    waitlist: list[float]
    tags: list[int]


async def apply_prices(con: Connection, prices: NewPrices) -> list[int]:
    """Write the new prices and their history rows in one statement.

    Returns:
        The tags of the changes applied: those whose current price was still
        ``old_cents``.
    """
    if not prices.event_ids:
        return []
    tags: list[int] = await con.fetchval(
        _APPLY,
        prices.event_ids,
        prices.sections,
        prices.old_cents,
        prices.new_cents,
        prices.demand,
        prices.time,
        prices.velocity,
        prices.waitlist,
        prices.tags,
    )
    return tags


@dataclass(frozen=True, slots=True)
class HistoryFilters:
    section: str | None = None
    date_from: dt.datetime | None = None
    date_to: dt.datetime | None = None


_HISTORY_WHERE = """
 WHERE event_id = $1 AND applied
   AND ($2::text IS NULL OR section = $2)
   AND ($3::timestamptz IS NULL OR created_at >= $3)
   AND ($4::timestamptz IS NULL OR created_at <= $4)
"""


async def history(
    con: Connection, event_id: uuid.UUID, filters: HistoryFilters, *, limit: int, offset: int
) -> tuple[list[Record], int]:
    """The event's applied price changes, oldest first, and how many match in all."""
    args = (event_id, filters.section, filters.date_from, filters.date_to)
    rows = list(
        await con.fetch(
            "SELECT section, old_cents, new_cents, factors, created_at, count(*) OVER () AS total"
            f" FROM price_history{_HISTORY_WHERE} ORDER BY created_at, id"
            f" LIMIT {int(limit)} OFFSET {int(offset)}",
            *args,
        )
    )
    if rows:
        return rows, int(rows[0]["total"])
    if offset == 0:
        return [], 0
    total: int = await con.fetchval(f"SELECT count(*) FROM price_history{_HISTORY_WHERE}", *args)
    return [], total
