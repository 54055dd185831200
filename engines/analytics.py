"""Booking analytics over column arrays: trend buckets, seasonality, user behaviour, trending.

Time is UTC epoch seconds (int64) inside; callers may pass numpy ``datetime64`` arrays or
ints, and scalars as aware datetimes, dates (midnight UTC), ``datetime64`` or ints.
A missing time (a booking never cancelled) is ``NaT``, or ``NOT_CANCELLED`` as an int.

Everything is built on hours. Every bucket edge (UTC day, Monday-started week, calendar
month) is a whole hour, so counting rows into hourly totals first and hours into buckets
second gives the same answer as counting rows into buckets directly. That is what lets the
hub pass hourly rollups it keeps in PostgreSQL (`HourlyRollup`, rows in any order, repeated
hours adding up, e.g. one row per event and hour) while the tests pass raw rows through
`rollup_hours`: one bucketing path for both.

Definitions (the contract of DESIGN.md §4):
  - a booking counts in the bucket it was *made* in, with its tickets and revenue (the
    total paid, cents, also when later refunded); a cancellation counts in the bucket of
    the cancellation; a hold counts in the bucket it was placed in;
  - conversion = bookings ÷ holds of the bucket (None with no holds; not clipped, so a
    booking whose hold was placed in the previous bucket can lift it above 1);
  - growth = (bookings - previous) ÷ previous (None for the first bucket and after a
    bucket with no bookings);
  - money stays integer cents; totals are exact while below 2**53.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import NamedTuple

import numpy as np

HOUR = 3600
DAY = 86_400
_MONDAY_DAY = 4  # 1970-01-05, the first Monday after the epoch (1970-01-01 was a Thursday)
NOT_CANCELLED = np.iinfo(np.int64).min  # what NaT becomes as int64
_EXACT = 2**53  # float64 bincount sums of integers are exact below this

Instant = datetime | date | np.datetime64 | int


class Period(StrEnum):
    HOURLY = "hourly"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


# --- time --------------------------------------------------------------------------------


def to_seconds(value: Instant) -> int:
    """Convert one instant to UTC epoch seconds.

    Args:
        value: an aware datetime, a date (its midnight UTC), a ``datetime64`` or an int
            (already epoch seconds).

    Returns:
        Whole epoch seconds (sub-second parts are dropped toward the past).

    Raises:
        ValueError: for a naive datetime (its time zone would be a guess) or ``NaT``.
        TypeError: for anything else.
    """
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("a naive datetime is ambiguous; pass an aware UTC datetime")
        return int(value.timestamp() // 1)
    if isinstance(value, date):
        return (value - date(1970, 1, 1)).days * DAY
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            raise ValueError("NaT is not an instant")
        return int(value.astype("datetime64[s]").astype(np.int64))
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return int(value)
    raise TypeError(f"not an instant: {type(value).__name__}")


def to_seconds_array(values: np.ndarray | Sequence[int]) -> np.ndarray:
    """Convert a ``datetime64`` or integer array to int64 epoch seconds (NaT stays
    ``NOT_CANCELLED``, the int64 minimum)."""
    array = np.asarray(values)
    if array.dtype.kind == "M":
        return array.astype("datetime64[s]", copy=False).astype(np.int64, copy=False)
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.dtype.kind in "iu":
        return array.astype(np.int64, copy=False)
    raise TypeError(f"timestamps must be datetime64 or integers, got {array.dtype}")


def _int_column(values: np.ndarray | Sequence[int], name: str, n: int) -> np.ndarray:
    array = np.asarray(values)
    if array.size == 0:
        array = np.zeros(0, dtype=np.int64)
    if array.dtype.kind not in "iub" or array.shape != (n,):
        raise ValueError(f"{name} must be {n} integers, got {array.dtype} {array.shape}")
    return array.astype(np.int64, copy=False)


def _month_of_day(days: np.ndarray) -> np.ndarray:
    """Month ordinals (months since 1970-01) of epoch-day numbers, by a lookup table over
    the span of the days, which is far cheaper than a calendar conversion per row."""
    if days.size == 0:
        return np.zeros(0, dtype=np.int64)
    lo, hi = int(days.min()), int(days.max())
    table = np.arange(lo, hi + 1).astype("datetime64[D]").astype("datetime64[M]")
    return table.astype(np.int64)[days - lo]


def _ordinals(period: Period, seconds: np.ndarray) -> np.ndarray:
    """Bucket number of each instant: hours, days, Monday-weeks or months since the epoch."""
    if period is Period.HOURLY:
        return seconds // HOUR
    days = seconds // DAY
    if period is Period.DAILY:
        return days
    if period is Period.WEEKLY:
        return (days - _MONDAY_DAY) // 7
    return _month_of_day(days)


def _bucket_starts(period: Period, ordinals: np.ndarray) -> np.ndarray:
    """Epoch seconds at which each bucket number starts."""
    if period is Period.HOURLY:
        return ordinals * HOUR
    if period is Period.DAILY:
        return ordinals * DAY
    if period is Period.WEEKLY:
        return (ordinals * 7 + _MONDAY_DAY) * DAY
    return ordinals.astype("datetime64[M]").astype("datetime64[s]").astype(np.int64)


def _fraction(numerator: int | float, denominator: int | float) -> float | None:
    return None if denominator == 0 else float(numerator) / float(denominator)


def _sums(index: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    """Exact int64 per-bin sums (bincount's float64 is exact for integer sums below 2**53)."""
    if weights.size and int(np.abs(weights).sum()) >= _EXACT:
        raise ValueError("totals too large to add exactly")
    return np.rint(np.bincount(index, weights=weights, minlength=n)).astype(np.int64)


# --- hourly rollup ------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class HourlyRollup:
    """Hourly totals as columns: one entry per (hour, anything) row, in any order.

    ``hour`` is the start of the hour (epoch seconds, a multiple of 3600, or datetime64).
    Rows with the same hour add up, so per-event rollup rows can be passed as they are.
    """

    hour: np.ndarray
    bookings: np.ndarray
    tickets: np.ndarray
    revenue_cents: np.ndarray
    cancellations: np.ndarray
    holds: np.ndarray

    def __post_init__(self) -> None:
        hour = to_seconds_array(self.hour)
        if hour.ndim != 1:
            raise ValueError("hour must be one-dimensional")
        if np.any(hour % HOUR):
            raise ValueError("every hour must start on a whole UTC hour")
        object.__setattr__(self, "hour", hour)
        for name in ("bookings", "tickets", "revenue_cents", "cancellations", "holds"):
            object.__setattr__(self, name, _int_column(getattr(self, name), name, hour.size))

    def __len__(self) -> int:
        return int(self.hour.size)


def rollup_hours(
    created_at: np.ndarray,
    tickets: np.ndarray,
    revenue_cents: np.ndarray,
    cancelled_at: np.ndarray,
    hold_created_at: np.ndarray,
) -> HourlyRollup:
    """Count raw booking and hold rows into hourly totals (the from-scratch rollup).

    Args:
        created_at: when each booking was made.
        tickets: tickets per booking.
        revenue_cents: total paid per booking, in cents.
        cancelled_at: when each booking was cancelled; NaT (``NOT_CANCELLED``) if never.
        hold_created_at: when each hold was placed.

    Returns:
        One row per hour from the earliest to the latest hour seen (zeros included).

    Raises:
        ValueError: if the booking columns differ in length.
    """
    made = to_seconds_array(created_at)
    cancelled = to_seconds_array(cancelled_at)
    held = to_seconds_array(hold_created_at)
    n = made.size
    tickets = _int_column(tickets, "tickets", n)
    revenue = _int_column(revenue_cents, "revenue_cents", n)
    if cancelled.shape != (n,):
        raise ValueError(f"cancelled_at must have {n} entries, got {cancelled.shape}")
    cancelled = cancelled[cancelled != NOT_CANCELLED]
    hours = [made // HOUR, cancelled // HOUR, held // HOUR]
    present = [h for h in hours if h.size]
    if not present:
        empty = np.zeros(0, dtype=np.int64)
        return HourlyRollup(empty, empty, empty, empty, empty, empty)
    lo = min(int(h.min()) for h in present)
    hi = max(int(h.max()) for h in present)
    span = hi - lo + 1
    ones = np.ones(n, dtype=np.int64)
    return HourlyRollup(
        hour=(np.arange(span, dtype=np.int64) + lo) * HOUR,
        bookings=_sums(hours[0] - lo, ones, span),
        tickets=_sums(hours[0] - lo, tickets, span),
        revenue_cents=_sums(hours[0] - lo, revenue, span),
        cancellations=np.bincount(hours[1] - lo, minlength=span).astype(np.int64),
        holds=np.bincount(hours[2] - lo, minlength=span).astype(np.int64),
    )


# --- trends and seasonality ---------------------------------------------------------------


class TrendBucket(NamedTuple):
    """One bucket as a row (a named tuple: an hourly range of two years makes 17,520 of
    them, and a tuple is built several times faster than a frozen dataclass)."""

    start: datetime  # aware, UTC
    bookings: int
    tickets: int
    revenue_cents: int
    cancellations: int
    conversion: float | None
    growth: float | None


@dataclass(frozen=True)
class Seasonality:
    """Average bookings per weekday (Monday first) and per month of the year (January
    first); None where the range holds no such day or month."""

    weekday: tuple[float | None, ...]
    month: tuple[float | None, ...]


@dataclass(frozen=True, eq=False)
class Trends:
    """Buckets as columns, oldest first; ``conversion`` and ``growth`` are NaN where the
    contract says null. `buckets()` gives the rows."""

    period: Period
    start: np.ndarray  # int64 epoch seconds
    bookings: np.ndarray
    tickets: np.ndarray
    revenue_cents: np.ndarray
    cancellations: np.ndarray
    holds: np.ndarray
    conversion: np.ndarray  # float64
    growth: np.ndarray  # float64
    seasonality: Seasonality

    def buckets(self) -> list[TrendBucket]:
        """The buckets as rows, with None for NaN."""
        stamp = datetime.fromtimestamp
        columns = zip(
            [stamp(s, UTC) for s in self.start.tolist()],
            self.bookings.tolist(),
            self.tickets.tolist(),
            self.revenue_cents.tolist(),
            self.cancellations.tolist(),
            _nullable(self.conversion),
            _nullable(self.growth),
            strict=True,
        )
        return list(map(TrendBucket._make, columns))


def _nullable(values: np.ndarray) -> list[float | None]:
    boxed = values.astype(object)
    boxed[np.isnan(values)] = None
    return list(boxed)


def _hour_range(date_from: Instant, date_to: Instant) -> tuple[int, int]:
    lo = to_seconds(date_from) // HOUR * HOUR
    hi = -(-to_seconds(date_to) // HOUR) * HOUR
    if hi <= lo:
        raise ValueError("date_to must be after date_from")
    return lo, hi


def trends(rollup: HourlyRollup, period: Period, date_from: Instant, date_to: Instant) -> Trends:
    """Bucket hourly totals by period over ``[date_from, date_to)``.

    The range is widened to whole hours (``date_from`` floored, ``date_to`` ceiled), so a
    bucket never splits an hour. The first bucket starts at the period start containing
    ``date_from`` and the last is the one containing the range's last hour; rows outside
    the range do not count, so a range starting mid-week gives a partial first week.

    Args:
        rollup: hourly totals (see `HourlyRollup`; `rollup_hours` builds one from rows).
        period: bucket width; weeks start on Monday, months are calendar months, all UTC.
        date_from: start of the range (inclusive).
        date_to: end of the range (exclusive).

    Returns:
        Every bucket of the range, empty ones as zeros, and the range's `Seasonality`.

    Raises:
        ValueError: if ``date_to`` is not after ``date_from``.
    """
    period = Period(period)
    lo, hi = _hour_range(date_from, date_to)
    inside = (rollup.hour >= lo) & (rollup.hour < hi)
    first, last = _ordinals(period, np.array([lo, hi - HOUR], dtype=np.int64))
    n = int(last - first + 1)
    index = _ordinals(period, rollup.hour[inside]) - first

    def column(values: np.ndarray) -> np.ndarray:
        return _sums(index, values[inside], n)

    bookings, holds = column(rollup.bookings), column(rollup.holds)
    conversion = np.full(n, np.nan)
    np.divide(bookings, holds, out=conversion, where=holds > 0)
    growth = np.full(n, np.nan)
    np.divide(bookings[1:] - bookings[:-1], bookings[:-1], out=growth[1:], where=bookings[:-1] > 0)
    return Trends(
        period=period,
        start=_bucket_starts(period, np.arange(first, last + 1, dtype=np.int64)),
        bookings=bookings,
        tickets=column(rollup.tickets),
        revenue_cents=column(rollup.revenue_cents),
        cancellations=column(rollup.cancellations),
        holds=holds,
        conversion=conversion,
        growth=growth,
        seasonality=seasonality(rollup, date_from, date_to),
    )


def seasonality(rollup: HourlyRollup, date_from: Instant, date_to: Instant) -> Seasonality:
    """Average bookings per weekday and per month of the year over ``[date_from, date_to)``.

    ``weekday[d]`` is the bookings made on UTC days of weekday ``d`` (0 = Monday) divided
    by the number of such days the range touches; ``month[m]`` is the bookings made in
    calendar months ``m`` (0 = January, any year) divided by the number of such calendar
    months the range touches. A day or month only partly inside the range counts as one,
    with only its bookings inside the range (the range is widened to whole hours as in
    `trends`). None where the range touches no such day or month.

    Args:
        rollup: hourly totals.
        date_from: start of the range (inclusive).
        date_to: end of the range (exclusive).

    Returns:
        The averages, 7 weekdays and 12 months.

    Raises:
        ValueError: if ``date_to`` is not after ``date_from``.
    """
    lo, hi = _hour_range(date_from, date_to)
    inside = (rollup.hour >= lo) & (rollup.hour < hi)
    first_day, last_day = lo // DAY, (hi - 1) // DAY
    days = np.arange(first_day, last_day + 1, dtype=np.int64)
    per_day = _sums(rollup.hour[inside] // DAY - first_day, rollup.bookings[inside], days.size)
    weekday = (days + 3) % 7  # day 0 was a Thursday, weekday 3 counting Monday as 0
    months = _month_of_day(days)
    month_index = months - months[0]
    per_month = _sums(month_index, per_day, int(month_index[-1]) + 1)
    month_of_year = (np.arange(months[0], months[-1] + 1)) % 12
    return Seasonality(
        weekday=_averages(weekday, per_day, 7),
        month=_averages(month_of_year, per_month, 12),
    )


def _averages(group: np.ndarray, totals: np.ndarray, n: int) -> tuple[float | None, ...]:
    counts = np.bincount(group, minlength=n)
    sums = _sums(group, totals, n)
    return tuple(_fraction(int(s), int(c)) for s, c in zip(sums, counts, strict=True))


# --- user behaviour -----------------------------------------------------------------------


@dataclass(frozen=True)
class Cohort:
    """Users whose first booking was in ``month``; ``retention[k]`` is the fraction of
    them with a booking in month k after it (``retention[0] == 1.0``), up to the month of
    ``now`` (the last entry is that month so far)."""

    month: date
    size: int
    retention: tuple[float, ...]


@dataclass(frozen=True)
class LeadTimes:
    """Days from booking to the event's start at the 10th, 50th and 90th percentile."""

    p10: float | None
    p50: float | None
    p90: float | None


@dataclass(frozen=True)
class UserBehaviour:
    cohorts: tuple[Cohort, ...]
    retention_rate: float | None  # see `retention_rate`
    repeat_rate: float | None  # users with 2+ bookings ÷ users with any
    booking_hours: tuple[int, ...]  # bookings made per UTC hour of day, 0-23
    booking_weekdays: tuple[int, ...]  # bookings made per UTC weekday, Monday first
    lead_time_days: LeadTimes
    cancellation_rate: float | None  # cancelled bookings ÷ bookings made


def _dense_codes(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes as rows 0..n-1, and each row's code: as given when they are already
    compact (no sort; rows for unused codes stay empty), else ranked."""
    if codes.size == 0:
        return codes, codes
    if int(codes.min()) >= 0 and int(codes.max()) < 4 * codes.size + 1024:
        return codes, np.arange(int(codes.max()) + 1)
    labels, dense = np.unique(codes, return_inverse=True)
    return dense.astype(np.int64), labels


def retention_cohorts(user: np.ndarray, booked_at: np.ndarray, now: Instant) -> tuple[Cohort, ...]:
    """Monthly cohorts of first bookings and their month-by-month retention.

    A user belongs to the UTC calendar month of their first booking; retention[k] of a
    cohort is the fraction of its users who made at least one booking in the k-th month
    after it. Every booking made counts, also one cancelled later (the user came back).
    Rows may be raw bookings or distinct (user, month) pairs; bookings at or after ``now``
    are ignored. Memory: a byte per user per month from the first booking to ``now``
    (200,000 users over two years: 5 MB).

    Args:
        user: integer user codes (compact codes 0..n-1 are cheapest).
        booked_at: when each booking was made.
        now: the present; each cohort's retention runs up to the month of ``now``.

    Returns:
        The cohorts, oldest first (months with no new users are left out).
    """
    users = _int_column(user, "user", len(user))
    seconds = to_seconds_array(booked_at)
    if seconds.shape != users.shape:
        raise ValueError("user and booked_at must have the same length")
    before = seconds < to_seconds(now)
    if not before.all():
        users, seconds = users[before], seconds[before]
    if users.size == 0:
        return ()
    codes, labels = _dense_codes(users)
    n_users = labels.size
    months = _month_of_day(seconds // DAY)
    first_month = int(months.min())
    now_month = int(_month_of_day(np.array([to_seconds(now) // DAY]))[0])
    span = now_month - first_month + 1
    # A month-by-user grid of "booked at least once": distinct pairs without a sort.
    active = np.zeros((span, n_users), dtype=np.bool_)
    # Flat indices: numpy scatters one index array several times faster than two.
    active.reshape(-1)[(months - first_month) * n_users + codes] = True
    start = np.argmax(active, axis=0)  # each user's first month (0 for codes never seen)
    # grid[c, m]: users of cohort c active in month m, counted over the active cells only
    # (one per distinct user and month); a code never seen has no cell, so no cohort.
    cell = np.flatnonzero(active)
    month, who = np.divmod(cell, n_users)
    grid = np.bincount(start[who] * span + month, minlength=span * span).reshape(span, span)
    sizes = np.diagonal(grid)  # every member of a cohort is active in its first month
    cohorts = []
    for offset in np.flatnonzero(sizes).tolist():
        size = int(sizes[offset])
        retention = tuple((grid[offset, offset:] / size).tolist())
        month = np.datetime64(first_month + offset, "M").astype(date)
        cohorts.append(Cohort(month=month, size=size, retention=retention))
    return tuple(cohorts)


def cohorts_from_counts(
    first_month: np.ndarray, month: np.ndarray, users: np.ndarray, now: Instant
) -> tuple[Cohort, ...]:
    """The cohorts of `retention_cohorts` from counts already made: cell ``(c, m)`` holds
    the users whose first booking was in month ``c`` with a booking in month ``m``.

    The same answer as `retention_cohorts` over the (user, month) rows behind the counts,
    each stamped with its month's first day: rows stamped at or after ``now`` are ignored
    there, and since a user's first month is their earliest, ignoring them only drops
    months (cells) starting at or after ``now``, never moves a first month. So here those
    cells are dropped, and each cohort runs from its month to ``now``'s.

    Args:
        first_month: the cohort of each cell (a month's first day, as an instant).
        month: the month of each cell (>= its cohort's).
        users: the cohort's users with a booking made in that month (> 0); cells repeated
            for one (cohort, month) add up.
        now: the present.

    Returns:
        The cohorts with users, oldest first.

    Raises:
        ValueError: columns of different lengths, a month before its cohort, a count below
            one, or a cohort without its first month's cell (every member booked in it).
    """
    firsts = to_seconds_array(first_month)
    months_at = to_seconds_array(month)
    counts = _int_column(users, "users", firsts.size)
    if firsts.shape != months_at.shape:
        raise ValueError("first_month, month and users must have the same length")
    before = months_at < to_seconds(now)
    firsts, months_at, counts = firsts[before], months_at[before], counts[before]
    if counts.size == 0:
        return ()
    cohort = _month_of_day(firsts // DAY)
    active = _month_of_day(months_at // DAY)
    if np.any(active < cohort) or np.any(counts < 1):
        raise ValueError("every cell needs a month at or after its cohort's and a user")
    first = int(cohort.min())
    now_month = int(_month_of_day(np.array([to_seconds(now) // DAY]))[0])
    span = now_month - first + 1
    flat = np.zeros(span * span, dtype=np.int64)
    np.add.at(flat, (cohort - first) * span + (active - first), counts)
    grid = flat.reshape(span, span)
    found = []
    for offset in np.unique(cohort - first).tolist():
        size = int(grid[offset, offset])
        if size == 0:
            raise ValueError("a cohort has no cell for its first month")
        found.append(
            Cohort(
                month=np.datetime64(first + offset, "M").astype(date),
                size=size,
                retention=tuple((grid[offset, offset:] / size).tolist()),
            )
        )
    return tuple(found)


def retention_rate(cohorts: Sequence[Cohort]) -> float | None:
    """Share of users who booked again in the month after their first, over the cohorts
    whose next month is complete (the current month is still running, so it would
    understate); None when there is no such cohort."""
    complete = [c for c in cohorts if len(c.retention) >= 3]
    users = sum(c.size for c in complete)
    returned = sum(round(c.retention[1] * c.size) for c in complete)
    return _fraction(returned, users)


def repeat_rate(user: np.ndarray, count: np.ndarray | None = None) -> float | None:
    """Fraction of users with two or more bookings.

    Args:
        user: integer user codes, one per row.
        count: bookings per row (default one each), for rows already counted per user.

    Returns:
        The fraction, or None with no users.
    """
    users = _int_column(user, "user", len(user))
    codes, labels = _dense_codes(users)
    if count is None:
        per_user = np.bincount(codes, minlength=labels.size)
    else:
        per_user = _sums(codes, _int_column(count, "count", users.size), labels.size)
    return _fraction(int(np.count_nonzero(per_user >= 2)), int(np.count_nonzero(per_user)))


def booking_clock(
    booked_at: np.ndarray, count: np.ndarray | None = None
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Bookings per UTC hour of day (24) and per UTC weekday (7, Monday first).

    Counts rather than fractions: they are exact, add up to the bookings, and a fraction
    is one division away. An `HourlyRollup`'s ``hour`` and ``bookings`` can be passed.

    Args:
        booked_at: when each booking (or hourly row) was made.
        count: bookings per row (default one each).
    """
    seconds = to_seconds_array(booked_at)
    # One count over the 168 hours of the week from Monday 00:00, folded both ways.
    slot = (seconds - _MONDAY_DAY * DAY) % (7 * DAY) // HOUR
    if count is None:
        week = np.bincount(slot, minlength=168).astype(np.int64)
    else:
        week = _sums(slot, _int_column(count, "count", seconds.size), 168)
    grid = week.reshape(7, 24)
    return tuple(grid.sum(axis=0).tolist()), tuple(grid.sum(axis=1).tolist())


def peak_hours(booking_hours: Sequence[int], n: int = 3) -> tuple[int, ...]:
    """The n busiest hours of day, busiest first (ties to the earlier hour); hours with
    no bookings are never peaks."""
    ranked = sorted(range(len(booking_hours)), key=lambda h: (-booking_hours[h], h))
    return tuple(h for h in ranked[:n] if booking_hours[h] > 0)


def percentiles(
    values: np.ndarray, qs: Sequence[float], weights: np.ndarray | None = None
) -> tuple[float | None, ...]:
    """Percentiles by the inverted CDF: the smallest value whose cumulative weight reaches
    q x total. Always an observed value, and the same answer from a histogram (values with
    weights) as from the raw rows behind it.

    Args:
        values: the sample.
        qs: fractions in [0, 1].
        weights: non-negative counts per value (default one each).

    Returns:
        One value per q; None each when the sample is empty.
    """
    data = np.asarray(values)
    if data.dtype.kind not in "iuf":
        data = data.astype(np.float64)
    if any(not 0.0 <= q <= 1.0 for q in qs):
        raise ValueError("percentiles are fractions in [0, 1]")
    # A hair under q x total, so 0.07 x 100 landing on 7.000000000000001 still picks the
    # 7th value, whose cumulative share is exactly 0.07 (numpy's quantile would take the
    # 8th); raw rows and histograms share the rule, so they agree.
    shares = np.asarray(qs, dtype=np.float64) * (1.0 - 1e-12)
    if weights is None:
        if data.size == 0:
            return tuple(None for _ in qs)
        ranks = np.clip(np.ceil(shares * data.size).astype(np.int64) - 1, 0, data.size - 1)
        found = np.partition(data, np.unique(ranks))[ranks]  # no full sort of a big sample
        return tuple(float(v) for v in found)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != data.shape or np.any(w < 0):
        raise ValueError("weights must be non-negative, one per value")
    keep = w > 0
    data, w = data[keep], w[keep]
    if data.size == 0:
        return tuple(None for _ in qs)
    order = np.argsort(data, kind="stable")
    cumulative = np.cumsum(w[order])
    at = np.searchsorted(cumulative, shares * cumulative[-1], side="left")
    return tuple(float(v) for v in data[order][np.minimum(at, data.size - 1)])


def user_behaviour(
    user: np.ndarray,
    booked_at: np.ndarray,
    event_starts_at: np.ndarray,
    cancelled: np.ndarray,
    now: Instant,
) -> UserBehaviour:
    """Everything the user-behaviour report needs, from one row per booking.

    Bookings made at or after ``now`` are left out of every figure.

    Args:
        user: integer user code per booking.
        booked_at: when each booking was made.
        event_starts_at: when its event starts (lead time = start - booking, in days).
        cancelled: bool per booking.
        now: the present (cohorts run up to its month).

    Returns:
        The report; rates are None when there is nothing to divide by.
    """
    seconds = to_seconds_array(booked_at)
    starts = to_seconds_array(event_starts_at)
    gone = np.asarray(cancelled, dtype=np.bool_)
    users = _int_column(user, "user", seconds.size)
    if starts.shape != seconds.shape or gone.shape != seconds.shape:
        raise ValueError("every column needs one entry per booking")
    # One snapshot for every figure: rows stamped at or after `now` (clock skew between
    # the hub and the database) are left out of all of them, not just the cohorts.
    before = seconds < to_seconds(now)
    if not before.all():
        users, seconds, starts, gone = users[before], seconds[before], starts[before], gone[before]
    n = seconds.size
    cohorts = retention_cohorts(users, seconds, now)
    hours, weekdays = booking_clock(seconds)
    lead = percentiles(starts - seconds, (0.1, 0.5, 0.9))  # whole seconds: no float copy
    p10, p50, p90 = (None if v is None else v / DAY for v in lead)
    return UserBehaviour(
        cohorts=cohorts,
        retention_rate=retention_rate(cohorts),
        repeat_rate=repeat_rate(users),
        booking_hours=hours,
        booking_weekdays=weekdays,
        lead_time_days=LeadTimes(p10, p50, p90),
        cancellation_rate=_fraction(int(np.count_nonzero(gone)), n),
    )


# --- trending events ----------------------------------------------------------------------


@dataclass(frozen=True)
class TrendingEvent:
    event: int  # the caller's event code
    velocity: float  # bookings per day in the recent window
    normal: float  # bookings per day in the window before it
    ratio: float  # velocity ÷ normal (normal floored at one booking per normal window)


def trending_events(
    event: np.ndarray,
    booked_at: np.ndarray,
    count: np.ndarray | None,
    now: Instant,
    *,
    recent_days: float = 1.0,
    normal_days: float = 14.0,
    min_recent: int = 3,
    limit: int = 10,
) -> tuple[TrendingEvent, ...]:
    """Events selling faster now than their own normal, fastest acceleration first.

    Velocity is the bookings per day made in ``[now - recent, now)``; normal is the
    bookings per day in the ``normal_days`` before that. The ratio divides by the normal
    floored at one booking per normal window, so an event with no past sales gets a large
    but finite ratio rather than infinity. Events with fewer than ``min_recent`` recent
    bookings are left out: three bookings on a quiet event are not a trend. Rows may be
    raw bookings (no ``count``) or hourly per-event rollup rows (their hour start).

    Returns:
        Up to ``limit`` events, highest ratio first, then highest velocity, then lowest code.
    """
    codes = _int_column(event, "event", len(event))
    seconds = to_seconds_array(booked_at)
    weights = np.ones(codes.size) if count is None else _int_column(count, "count", codes.size)
    if seconds.shape != codes.shape or recent_days <= 0 or normal_days <= 0 or min_recent < 1:
        raise ValueError("one time per row, positive windows and min_recent >= 1 are required")
    end = to_seconds(now)
    recent_from = end - round(recent_days * DAY)
    normal_from = recent_from - round(normal_days * DAY)
    if codes.size == 0:
        return ()
    inverse, dense = _dense_codes(codes)  # an unused code has no recent bookings: never chosen
    recent_rows = (seconds >= recent_from) & (seconds < end)
    normal_rows = (seconds >= normal_from) & (seconds < recent_from)
    recent = _sums(inverse[recent_rows], weights[recent_rows], dense.size)
    normal = _sums(inverse[normal_rows], weights[normal_rows], dense.size)
    velocity = recent / recent_days
    normal_rate = normal / normal_days
    ratio = velocity / np.maximum(normal_rate, 1.0 / normal_days)
    chosen = np.flatnonzero(recent >= min_recent)
    order = np.lexsort((dense[chosen], -velocity[chosen], -ratio[chosen]))[:limit]
    return tuple(
        TrendingEvent(int(dense[i]), float(velocity[i]), float(normal_rate[i]), float(ratio[i]))
        for i in chosen[order]
    )
