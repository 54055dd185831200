"""SQL for the analytics reports: sums over the rollup tables, as numpy columns.

The rollups (``analytics_hourly`` per event and UTC hour, ``analytics_user_months``,
``analytics_lead_days``; ``hub.db.rollups`` keeps them) are summed here, in PostgreSQL, to
the grain each report needs; the modelling is ``engines.analytics`` and
``engines.forecast``'s. Every function answers numpy columns ready for those engines (an
`engines.analytics.HourlyRollup` where one fits), never a row object per item:

- sums per hour come back as one row of arrays (``array_agg``), hours as epoch seconds;
- the user months, one row per user and month (hundreds of thousands of them), come back
  through a binary ``COPY`` read straight into a numpy record array: no Python object per
  row (a ``fetch`` would build a UUID object per row and take seconds).

Reports over all history read the tables derived from the rollups (migration 006, kept in
the same transactions): the hours over every event (``analytics_hourly_totals``, one row an
hour), each event's UTC days (``analytics_daily``), the lead days over every event
(``analytics_lead_totals``), the users (``analytics_users``) and the cohort cells
(``analytics_cohorts``): thousands of rows where the rollups hold hundreds of thousands.
A range of an event or a category, bucketed by day or longer, reads its whole UTC days from
``analytics_daily`` and only the hours at its two ends from ``analytics_hourly``
(`hours_and_days`); the dashboard's top events and the trending windows likewise.

Queries are chosen per filter (a fixed text each, never one text with ``$n IS NULL OR``
branches), so each gets its own plan: an event's hours come from the primary key
``(event_id, hour)``, a range over every event from ``analytics_hourly_totals``, a
category's events from ``events_category_idx`` and then their primary-key ranges.

Two small live reads for the dashboard read the source tables instead: holds active now and
tickets sold today (the rollups lag by a step).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import numpy as np

from engines.analytics import HourlyRollup
from hub.db import Connection, Record

_EPOCH_2000 = 10_957  # epoch day of 2000-01-01: PostgreSQL's binary dates count from it
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_COPY_HEADER = len(_COPY_SIGNATURE) + 8  # signature, flags (int32), extension length (int32)
_COPY_TRAILER = 2  # int16 -1

# --- sums per hour --------------------------------------------------------------------------

# The hourly sums as one row of arrays, oldest hour first. Each variant's inner query sums
# the rollup rows of [$1, $2) per hour; sum(int) is int8 and sum(int8) numeric, cast back
# (exact: a numeric sum of bigints).
_HOURLY = """
SELECT coalesce(array_agg(extract(epoch FROM s.hour)::int8 ORDER BY s.hour), '{{}}') AS hour,
       coalesce(array_agg(s.bookings ORDER BY s.hour), '{{}}') AS bookings,
       coalesce(array_agg(s.tickets ORDER BY s.hour), '{{}}') AS tickets,
       coalesce(array_agg(s.revenue_cents ORDER BY s.hour), '{{}}') AS revenue_cents,
       coalesce(array_agg(s.cancellations ORDER BY s.hour), '{{}}') AS cancellations,
       coalesce(array_agg(s.holds ORDER BY s.hour), '{{}}') AS holds
  FROM (SELECT h.hour,
               sum(h.bookings)::int8 AS bookings,
               sum(h.tickets)::int8 AS tickets,
               sum(h.revenue_cents)::int8 AS revenue_cents,
               sum(h.cancellations)::int8 AS cancellations,
               sum(h.holds)::int8 AS holds
          FROM {source}
         {where}
         GROUP BY h.hour) s
"""
_RANGE = "WHERE h.hour >= $1 AND h.hour < $2"
_EVERY_EVENT = _HOURLY.format(source="analytics_hourly_totals h", where=_RANGE)
_ONE_EVENT = _HOURLY.format(source="analytics_hourly h", where=f"{_RANGE} AND h.event_id = $3")
_ONE_CATEGORY = _HOURLY.format(
    source="events e JOIN analytics_hourly h ON h.event_id = e.id",
    where=f"{_RANGE} AND lower(e.category) = lower($3)",
)
_ONE_EVENT_IN_CATEGORY = _HOURLY.format(
    source="events e JOIN analytics_hourly h ON h.event_id = e.id",
    where=f"{_RANGE} AND h.event_id = $3 AND lower(e.category) = lower($4)",
)

# Before any booking, hold or cancellation ever stamped: what "all history" starts at.
_BEGINNING = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_FAR_FUTURE = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)


async def hourly(
    con: Connection,
    date_from: dt.datetime | None,
    date_to: dt.datetime | None,
    *,
    event_id: uuid.UUID | None = None,
    category: str | None = None,
) -> HourlyRollup:
    """Bookings, tickets, revenue, cancellations and holds per UTC hour in
    ``[date_from, date_to)``, over every event, one event, one category (case-insensitive)
    or one event if it is in that category; hours with nothing are left out.

    Args:
        date_from: the first hour counted (None: from the beginning).
        date_to: the end, exclusive (None: everything counted so far).
    """
    start = date_from or _BEGINNING
    end = date_to or _FAR_FUTURE
    if event_id is not None and category is not None:
        row = await con.fetchrow(_ONE_EVENT_IN_CATEGORY, start, end, event_id, category)
    elif event_id is not None:
        row = await con.fetchrow(_ONE_EVENT, start, end, event_id)
    elif category is not None:
        row = await con.fetchrow(_ONE_CATEGORY, start, end, category)
    else:
        row = await con.fetchrow(_EVERY_EVENT, start, end)
    assert row is not None
    return _rollup(row)


def _rollup(row: Record) -> HourlyRollup:
    def column(name: str) -> np.ndarray:
        return np.array(row[name], dtype=np.int64)

    return HourlyRollup(
        hour=column("hour"),
        bookings=column("bookings"),
        tickets=column("tickets"),
        revenue_cents=column("revenue_cents"),
        cancellations=column("cancellations"),
        holds=column("holds"),
    )


async def first_hour(con: Connection) -> dt.datetime | None:
    """The earliest hour in the rollups (None when they are empty)."""
    value: dt.datetime | None = await con.fetchval("SELECT min(hour) FROM analytics_hourly_totals")
    return value


# Per event: the hours of [$1, $2) and [$3, $4) from the hourly rows and the whole UTC days
# of [$5, $6) from the daily ones (each day as the instant of its midnight), for an event
# ($7) or a category ($7). The days of a category's events are found by their primary keys.
_SPAN = """
    SELECT event_id, hour, bookings, tickets, revenue_cents, cancellations, holds
      FROM analytics_hourly
     WHERE ((hour >= $1 AND hour < $2) OR (hour >= $3 AND hour < $4)){event}
    UNION ALL
    SELECT event_id, (day::timestamp AT TIME ZONE 'UTC'), bookings, tickets, revenue_cents,
           cancellations, holds
      FROM analytics_daily
     WHERE day >= $5 AND day < $6{event}
"""


def _span(event: str) -> str:
    """`_SPAN` for one filter, summed per hour (or day) as `hourly` sums."""
    return _HOURLY.format(source=f"({_SPAN.format(event=event)}) h", where="")


_SPAN_ONE_EVENT = _span(" AND event_id = $7")
_SPAN_ONE_CATEGORY = _span(
    " AND event_id IN (SELECT id FROM events WHERE lower(category) = lower($7))"
)
_SPAN_ONE_EVENT_IN_CATEGORY = _span(
    " AND event_id = $7 AND event_id IN (SELECT id FROM events WHERE lower(category) = lower($8))"
)


def _span_args(start: dt.datetime, end: dt.datetime) -> tuple[object, ...]:
    """The bounds `_SPAN` takes for the hours starting in ``[start, end)``: the UTC days
    wholly inside come from the daily rows, the hours before the first and after the last
    from the hourly ones. With no whole day inside, every hour comes from the hourly rows."""
    first_day = _midnight(start + dt.timedelta(days=1) - dt.timedelta(microseconds=1))
    end_day = _midnight(end)
    if end_day <= first_day:
        return start, end, end, end, first_day.date(), first_day.date()
    return start, first_day, end_day, end, first_day.date(), end_day.date()


def _midnight(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


async def hours_and_days(
    con: Connection,
    date_from: dt.datetime,
    date_to: dt.datetime,
    *,
    event_id: uuid.UUID | None = None,
    category: str | None = None,
) -> HourlyRollup:
    """What `hourly` answers for an event, a category (case-insensitive) or both, over
    ``[date_from, date_to)`` (whole hours), with each whole UTC day inside summed into one
    row at its midnight: only for bucketing by day or longer (every such bucket edge is a
    midnight, so the buckets hold the same sums). Hours and days come summed over the
    events, oldest first; hours with nothing are left out.

    Raises:
        ValueError: neither an event nor a category (every event: `hourly` reads the
            hours over every event, which is cheaper).
    """
    bounds = _span_args(date_from, date_to)
    if event_id is not None and category is not None:
        query, args = _SPAN_ONE_EVENT_IN_CATEGORY, (*bounds, event_id, category)
    elif event_id is not None:
        query, args = _SPAN_ONE_EVENT, (*bounds, event_id)
    elif category is not None:
        query, args = _SPAN_ONE_CATEGORY, (*bounds, category)
    else:
        raise ValueError("hours_and_days is for an event or a category")
    row = await con.fetchrow(query, *args)
    assert row is not None
    return _rollup(row)


# --- the booking clock ------------------------------------------------------------------------

# Bookings and cancellations per hour of the week over all history: slot 0 is Monday
# 00:00-01:00 UTC. Hour 96 after the epoch is Monday 1970-01-05 00:00; the hours are whole,
# so the float epoch (cheaper than extract's numeric) converts exactly.
_CLOCK = """
SELECT coalesce(array_agg(c.slot ORDER BY c.slot), '{}') AS slot,
       coalesce(array_agg(c.bookings ORDER BY c.slot), '{}') AS bookings,
       coalesce(array_agg(c.cancellations ORDER BY c.slot), '{}') AS cancellations
  FROM (SELECT ((date_part('epoch', hour)::int8 / 3600 - 96) % 168 + 168) % 168 AS slot,
               sum(bookings)::int8 AS bookings,
               sum(cancellations)::int8 AS cancellations
          FROM analytics_hourly_totals
         GROUP BY 1) c
"""
_MONDAY_HOUR = 96


@dataclass(frozen=True, slots=True, eq=False)
class Clock:
    """Bookings and cancellations per hour of the week over all history."""

    week_hour: np.ndarray  # epoch seconds of that hour in the week of Monday 1970-01-05
    bookings: np.ndarray
    cancellations: np.ndarray


async def clock(con: Connection) -> Clock:
    """Bookings and cancellations of all history per hour of the week, each hour of the
    week stamped with that hour in the first week after the epoch (what
    ``engines.analytics.booking_clock`` folds by hour of day and weekday)."""
    row = await con.fetchrow(_CLOCK)
    assert row is not None
    slot = np.array(row["slot"], dtype=np.int64)
    return Clock(
        week_hour=(slot + _MONDAY_HOUR) * 3600,
        bookings=np.array(row["bookings"], dtype=np.int64),
        cancellations=np.array(row["cancellations"], dtype=np.int64),
    )


# --- users and lead times -------------------------------------------------------------------

# Ordered by the primary key, so the plan is a scan of its index and each user's months
# come together: a user's rows are told apart by a change of user_id.
_USER_MONTHS = "SELECT user_id, month, bookings FROM analytics_user_months ORDER BY user_id, month"
_USER_MONTH_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("user_length", ">i4"),
        ("user_high", ">u8"),
        ("user_low", ">u8"),
        ("month_length", ">i4"),
        ("month", ">i4"),  # days since 2000-01-01
        ("bookings_length", ">i4"),
        ("bookings", ">i4"),
    ]
)


@dataclass(frozen=True, slots=True, eq=False)
class UserMonths:
    """One entry per user and calendar month with a booking made in it."""

    user: np.ndarray  # int64 codes 0..users-1, one per distinct user
    month: np.ndarray  # epoch seconds of the month's first day (UTC)
    bookings: np.ndarray  # bookings the user made that month

    @property
    def users(self) -> int:
        return int(self.user[-1]) + 1 if self.user.size else 0


async def user_months(con: Connection) -> UserMonths:
    """Every (user, month) of ``analytics_user_months``, users as compact integer codes
    (the reports read `cohort_cells` and `user_counts` instead: the same figures, summed)."""
    rows = await _copy_rows(con, _USER_MONTHS, _USER_MONTH_ROW, fields=3)
    high, low = rows["user_high"], rows["user_low"]
    new_user = np.ones(rows.size, dtype=np.bool_)
    new_user[1:] = (high[1:] != high[:-1]) | (low[1:] != low[:-1])
    days = rows["month"].astype(np.int64) + _EPOCH_2000
    return UserMonths(
        user=np.cumsum(new_user, dtype=np.int64) - 1,
        month=days * 86_400,
        bookings=rows["bookings"].astype(np.int64),
    )


async def _copy_rows(con: Connection, query: str, dtype: np.dtype, *, fields: int) -> np.ndarray:
    """A query's rows through binary COPY, read as a record array of ``dtype`` (every
    column fixed-width and NOT NULL, each preceded by its int32 length).

    Raises:
        ValueError: the stream is not what ``dtype`` describes.
    """
    chunks: list[bytes] = []

    async def keep(chunk: bytes) -> None:
        chunks.append(chunk)

    await con.copy_from_query(query, output=keep, format="binary")
    data = b"".join(chunks)
    if not data.startswith(_COPY_SIGNATURE) or data[-_COPY_TRAILER:] != b"\xff\xff":
        raise ValueError("not a binary COPY stream")
    if int.from_bytes(data[_COPY_HEADER - 4 : _COPY_HEADER], "big") != 0:
        raise ValueError("binary COPY header extensions are not read")
    body = memoryview(data)[_COPY_HEADER : len(data) - _COPY_TRAILER]
    if len(body) % dtype.itemsize:
        raise ValueError("binary COPY rows of an unexpected width")
    rows = np.frombuffer(body, dtype=dtype)
    if np.any(rows["fields"] != fields):
        raise ValueError("binary COPY rows with an unexpected number of columns")
    for name, width in _column_widths(dtype).items():
        if np.any(rows[name] != width):  # also catches a NULL (length -1)
            raise ValueError(f"binary COPY column {name} is not of the expected width")
    return rows


def _column_widths(dtype: np.dtype) -> dict[str, int]:
    """The byte width of the column each ``*_length`` field precedes: the fields up to the
    next length field."""
    names = list(dtype.names or ())
    widths: dict[str, int] = {}
    for i, name in enumerate(names):
        if not name.endswith("_length"):
            continue
        width = 0
        for following in names[i + 1 :]:
            if following.endswith("_length"):
                break
            width += dtype[following].itemsize
        widths[name] = width
    return widths


_COHORT_CELLS = """
SELECT coalesce(array_agg((first_month - DATE '1970-01-01')::int8 * 86400
                          ORDER BY first_month, month), '{}') AS first_month,
       coalesce(array_agg((month - DATE '1970-01-01')::int8 * 86400
                          ORDER BY first_month, month), '{}') AS month,
       coalesce(array_agg(users::int8 ORDER BY first_month, month), '{}') AS users
  FROM analytics_cohorts
"""


@dataclass(frozen=True, slots=True, eq=False)
class CohortCells:
    """Per cohort (first month) and month: the cohort's users with a booking in it."""

    first_month: np.ndarray  # epoch seconds of the cohort month's first day (UTC)
    month: np.ndarray  # epoch seconds of the month's first day
    users: np.ndarray


async def cohort_cells(con: Connection) -> CohortCells:
    """Every cell of ``analytics_cohorts`` (what `engines.analytics.cohorts_from_counts`
    takes), oldest cohort first."""
    row = await con.fetchrow(_COHORT_CELLS)
    assert row is not None
    return CohortCells(
        first_month=np.array(row["first_month"], dtype=np.int64),
        month=np.array(row["month"], dtype=np.int64),
        users=np.array(row["users"], dtype=np.int64),
    )


_USER_COUNTS = """
SELECT count(*) AS users, count(*) FILTER (WHERE bookings >= 2) AS repeat_users
  FROM analytics_users
"""


async def user_counts(con: Connection) -> tuple[int, int]:
    """Users with a booking made, and those with two or more: ``(users, repeat_users)``."""
    row = await con.fetchrow(_USER_COUNTS)
    assert row is not None
    return int(row["users"]), int(row["repeat_users"])


_LEAD_DAYS = """
SELECT coalesce(array_agg(lead_days::int8 ORDER BY lead_days), '{}') AS lead_days,
       coalesce(array_agg(bookings::int8 ORDER BY lead_days), '{}') AS bookings
  FROM analytics_lead_totals
"""


async def lead_days(con: Connection) -> tuple[np.ndarray, np.ndarray]:
    """The lead-time histogram over every event: ``(whole days, bookings)``, shortest first."""
    row = await con.fetchrow(_LEAD_DAYS)
    assert row is not None
    return np.array(row["lead_days"], dtype=np.int64), np.array(row["bookings"], dtype=np.int64)


# --- forecasts and trending -----------------------------------------------------------------

# Bookings and revenue per category and UTC day in [$1, $2) (dates), as one row per category
# with its days as arrays, from the category days (each event's days under its category as
# of the leader's last step). Categories that differ by case only are one (as the events
# list filters them), named by their smallest spelling.
_DAILY_BY_CATEGORY = """
SELECT min(c.name) AS category,
       array_agg(c.day * 86400 ORDER BY c.day) AS day,
       array_agg(c.bookings ORDER BY c.day) AS bookings,
       array_agg(c.revenue_cents ORDER BY c.day) AS revenue_cents
  FROM (SELECT lower(category) AS key,
               min(category) AS name,
               (day - DATE '1970-01-01')::int8 AS day,
               sum(bookings)::int8 AS bookings,
               sum(revenue_cents)::int8 AS revenue_cents
          FROM analytics_category_daily
         WHERE day >= $1 AND day < $2
         GROUP BY 1, 3) c
 GROUP BY c.key
 ORDER BY c.key
"""


async def daily_by_category(
    con: Connection, date_from: dt.datetime, date_to: dt.datetime
) -> dict[str, HourlyRollup]:
    """Bookings and revenue per category and UTC day in ``[date_from, date_to)`` (both
    midnights; days with nothing left out), as rollups whose rows are whole days; the other
    columns are zero.

    Raises:
        ValueError: a bound that is not a UTC midnight.
    """
    if _midnight(date_from) != date_from or _midnight(date_to) != date_to:
        raise ValueError("daily_by_category takes UTC midnights")
    out: dict[str, HourlyRollup] = {}
    days = _midnight(date_from).date(), _midnight(date_to).date()
    for row in await con.fetch(_DAILY_BY_CATEGORY, *days):
        day = np.array(row["day"], dtype=np.int64)
        zeros = np.zeros(day.size, dtype=np.int64)
        out[row["category"]] = HourlyRollup(
            hour=day,
            bookings=np.array(row["bookings"], dtype=np.int64),
            tickets=zeros,
            revenue_cents=np.array(row["revenue_cents"], dtype=np.int64),
            cancellations=zeros,
            holds=zeros,
        )
    return out


# Bookings per event made in hours starting in the recent window [$7, $4) and in the normal
# window before it; events with none in either are left out. The normal window's whole UTC
# days [$5, $6) come from the daily rows, its hours [$1, $2) before them and [$3, $7) after
# them, with the recent window's, from the hourly rows (`_span_args` of the normal window,
# its end $4 moved to the recent window's).
_WINDOWS = """
SELECT coalesce(array_agg(w.event_id ORDER BY w.event_id), '{}') AS event_id,
       coalesce(array_agg(w.recent ORDER BY w.event_id), '{}') AS recent,
       coalesce(array_agg(w.normal ORDER BY w.event_id), '{}') AS normal
  FROM (SELECT event_id,
               coalesce(sum(bookings) FILTER (WHERE recent), 0)::int8 AS recent,
               coalesce(sum(bookings) FILTER (WHERE NOT recent), 0)::int8 AS normal
          FROM (SELECT event_id, bookings, hour >= $7 AS recent
                  FROM analytics_hourly
                 WHERE ((hour >= $1 AND hour < $2) OR (hour >= $3 AND hour < $4))
                   AND bookings > 0
                UNION ALL
                SELECT event_id, bookings, false
                  FROM analytics_daily
                 WHERE day >= $5 AND day < $6 AND bookings > 0) h
         GROUP BY event_id) w
"""


@dataclass(frozen=True, slots=True, eq=False)
class EventWindows:
    event_ids: list[uuid.UUID]
    recent: np.ndarray  # bookings in the recent window, per event
    normal: np.ndarray  # bookings in the normal window before it, per event


async def event_windows(
    con: Connection, normal_from: dt.datetime, recent_from: dt.datetime, until: dt.datetime
) -> EventWindows:
    """Bookings per event in the hours starting in ``[recent_from, until)`` and in
    ``[normal_from, recent_from)``."""
    first, first_day, end_day, _, days_from, days_to = _span_args(normal_from, recent_from)
    row = await con.fetchrow(
        _WINDOWS, first, first_day, end_day, until, days_from, days_to, recent_from
    )
    assert row is not None
    return EventWindows(
        event_ids=list(row["event_id"]),
        recent=np.array(row["recent"], dtype=np.int64),
        normal=np.array(row["normal"], dtype=np.int64),
    )


# --- the dashboard --------------------------------------------------------------------------

# Summed per event over `_SPAN` of every event ($1-$6): whole days from the daily rows.
_TOP_EVENTS = f"""
SELECT t.event_id, e.name, e.category, t.bookings, t.revenue_cents
  FROM (SELECT event_id, sum(bookings)::int8 AS bookings, sum(revenue_cents)::int8 AS revenue_cents
          FROM ({_SPAN.format(event="")}) h
         GROUP BY event_id
        HAVING sum(bookings) > 0
         ORDER BY 2 DESC, 3 DESC, event_id
         LIMIT $7) t
  JOIN events e ON e.id = t.event_id
 ORDER BY t.bookings DESC, t.revenue_cents DESC, t.event_id
"""


async def top_events(
    con: Connection, date_from: dt.datetime, date_to: dt.datetime, limit: int
) -> list[Record]:
    """The ``limit`` events with the most bookings made in ``[date_from, date_to)`` (ties:
    more revenue, then the smaller id): ``event_id, name, category, bookings,
    revenue_cents``."""
    return list(await con.fetch(_TOP_EVENTS, *_span_args(date_from, date_to), limit))


# A hold is active while its log says held and it has not ended; one placed longer ago than
# a hold can live ($1) has ended whatever its row says (an outcome lost in a crash).
_HOLDS_ACTIVE = """
SELECT count(*) FROM hold_log
 WHERE created_at > now() - make_interval(secs => $1) AND outcome = 'held' AND ended_at IS NULL
"""
_SOLD_SINCE = """
SELECT coalesce(sum((SELECT count(*) FROM tickets t WHERE t.booking_id = b.id)), 0)::int8
  FROM bookings b
 WHERE b.created_at >= $1
"""


async def holds_active(con: Connection, max_lifetime_seconds: float) -> int:
    """Holds placed and not yet booked, released or expired, read from the hold log (its
    rows are written a fraction of a second after the hold)."""
    return int(await con.fetchval(_HOLDS_ACTIVE, float(max_lifetime_seconds)))


async def tickets_sold_since(con: Connection, since: dt.datetime) -> int:
    """Tickets of the bookings made at or after ``since`` (cancelled since or not)."""
    return int(await con.fetchval(_SOLD_SINCE, since))
