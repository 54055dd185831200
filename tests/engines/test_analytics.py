from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engines.analytics import (
    NOT_CANCELLED,
    Cohort,
    HourlyRollup,
    Period,
    booking_clock,
    cohorts_from_counts,
    peak_hours,
    percentiles,
    repeat_rate,
    retention_cohorts,
    retention_rate,
    rollup_hours,
    seasonality,
    trending_events,
    trends,
    user_behaviour,
)


def ts(*values: str) -> np.ndarray:
    """ISO instants (UTC) as datetime64[s]."""
    return np.array(values, dtype="datetime64[s]")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def rows(
    made: list[str],
    *,
    tickets: list[int] | None = None,
    revenue: list[int] | None = None,
    cancelled: list[str | None] | None = None,
    holds: tuple[str, ...] = (),
) -> HourlyRollup:
    """The from-scratch rollup of a few bookings (one ticket, 1000 cents by default)."""
    n = len(made)
    gone = cancelled or [None] * n
    return rollup_hours(
        ts(*made),
        np.array(tickets or [1] * n),
        np.array(revenue or [1000] * n),
        np.array([c or "NaT" for c in gone], dtype="datetime64[s]"),
        ts(*holds),
    )


def by_start(rollup: HourlyRollup, period: Period, start: str, end: str) -> dict[str, int]:
    """Bookings per non-empty bucket, keyed by the bucket's ISO start."""
    found = trends(rollup, period, utc(start), utc(end)).buckets()
    return {b.start.isoformat()[:19]: b.bookings for b in found if b.bookings}


# --- bucket edges -------------------------------------------------------------------------


def test_a_second_before_midnight_and_midnight_fall_in_different_days() -> None:
    rollup = rows(["2024-03-10T23:59:59", "2024-03-11T00:00:00", "2024-03-11T00:00:01"])
    assert by_start(rollup, Period.DAILY, "2024-03-10T00:00:00", "2024-03-12T00:00:00") == {
        "2024-03-10T00:00:00": 1,
        "2024-03-11T00:00:00": 2,
    }


def test_hours_split_on_the_hour() -> None:
    rollup = rows(["2024-03-10T10:59:59", "2024-03-10T11:00:00"])
    found = trends(rollup, Period.HOURLY, utc("2024-03-10T10:00:00"), utc("2024-03-10T13:00:00"))
    assert [b.start.hour for b in found.buckets()] == [10, 11, 12]
    assert found.bookings.tolist() == [1, 1, 0]


def test_weeks_start_on_monday() -> None:
    # 2024-03-10 is a Sunday, 2024-03-11 a Monday.
    rollup = rows(["2024-03-10T23:59:59", "2024-03-11T00:00:00", "2024-03-17T23:59:59"])
    found = trends(rollup, Period.WEEKLY, utc("2024-03-01T00:00:00"), utc("2024-03-25T00:00:00"))
    starts = [b.start for b in found.buckets()]
    assert all(s.weekday() == 0 and s.hour == 0 for s in starts)
    assert [s.date().isoformat() for s in starts] == [
        "2024-02-26",
        "2024-03-04",
        "2024-03-11",
        "2024-03-18",
    ]
    assert found.bookings.tolist() == [0, 1, 2, 0]


def test_months_are_calendar_months_with_the_leap_day() -> None:
    rollup = rows(
        [
            "2024-02-29T23:59:59",  # the leap day belongs to February
            "2024-03-01T00:00:00",
            "2023-12-31T23:59:59",
            "2024-01-01T00:00:00",
        ]
    )
    assert by_start(rollup, Period.MONTHLY, "2023-12-01T00:00:00", "2024-04-01T00:00:00") == {
        "2023-12-01T00:00:00": 1,
        "2024-01-01T00:00:00": 1,
        "2024-02-01T00:00:00": 1,
        "2024-03-01T00:00:00": 1,
    }
    leap = trends(rollup, Period.DAILY, utc("2024-02-01T00:00:00"), utc("2024-03-01T00:00:00"))
    plain = trends(rollup, Period.DAILY, utc("2023-02-01T00:00:00"), utc("2023-03-01T00:00:00"))
    assert (len(leap.start), len(plain.start)) == (29, 28)
    assert leap.bookings[-1] == 1  # Feb 29


def test_bounds_are_utc_instants_whatever_the_offset_they_are_written_in() -> None:
    plus_one = timezone(timedelta(hours=1))
    rollup = rows(["2024-03-10T23:30:00", "2024-03-11T00:30:00"])
    found = trends(
        rollup,
        Period.DAILY,
        datetime(2024, 3, 11, 1, 0, tzinfo=plus_one),  # midnight UTC
        datetime(2024, 3, 12, 1, 0, tzinfo=plus_one),
    )
    assert found.bookings.tolist() == [1]
    with pytest.raises(ValueError):
        trends(rollup, Period.DAILY, datetime(2024, 3, 11), datetime(2024, 3, 12))


def test_rows_outside_the_range_do_not_count_and_empty_buckets_are_zeros() -> None:
    rollup = rows(["2024-01-01T12:00:00", "2024-01-03T12:00:00", "2024-01-06T00:00:00"])
    found = trends(rollup, Period.DAILY, date(2024, 1, 2), date(2024, 1, 6))
    assert [b.start.day for b in found.buckets()] == [2, 3, 4, 5]
    assert found.bookings.tolist() == [0, 1, 0, 0]
    assert found.revenue_cents.tolist() == [0, 1000, 0, 0]


def test_ranges_are_whole_hours_and_must_not_be_empty() -> None:
    rollup = rows(["2024-01-01T10:15:00"])
    found = trends(rollup, Period.HOURLY, utc("2024-01-01T10:20:00"), utc("2024-01-01T10:40:00"))
    assert found.bookings.tolist() == [1]
    with pytest.raises(ValueError):
        trends(rollup, Period.DAILY, date(2024, 1, 2), date(2024, 1, 2))
    with pytest.raises(ValueError):
        trends(rollup, "fortnightly", date(2024, 1, 1), date(2024, 1, 2))  # type: ignore[arg-type]


# --- what a bucket holds -------------------------------------------------------------------


def test_revenue_counts_when_made_and_a_cancellation_when_cancelled() -> None:
    rollup = rows(
        ["2024-01-30T10:00:00", "2024-01-31T10:00:00"],
        tickets=[2, 3],
        revenue=[2500, 4999],
        cancelled=["2024-02-02T09:00:00", None],
    )
    found = trends(rollup, Period.MONTHLY, date(2024, 1, 1), date(2024, 3, 1)).buckets()
    assert [(b.bookings, b.tickets, b.revenue_cents, b.cancellations) for b in found] == [
        (2, 5, 7499, 0),
        (0, 0, 0, 1),
    ]


def test_conversion_is_bookings_over_holds_placed_in_the_bucket() -> None:
    rollup = rows(
        ["2024-01-01T10:00:00"] * 3 + ["2024-01-03T10:00:00"],
        holds=("2024-01-01T09:00:00",) * 4 + ("2024-01-02T09:00:00",),
    )
    found = trends(rollup, Period.DAILY, date(2024, 1, 1), date(2024, 1, 4)).buckets()
    assert [b.conversion for b in found] == [0.75, 0.0, None]


def test_growth_is_null_first_and_after_an_empty_bucket() -> None:
    counts = [0, 5, 10, 0, 4, 2]
    made = [f"2024-01-0{day + 1}T12:00:00" for day, n in enumerate(counts) for _ in range(n)]
    found = trends(rows(made), Period.DAILY, date(2024, 1, 1), date(2024, 1, 7)).buckets()
    assert [b.bookings for b in found] == counts
    assert [b.growth for b in found] == [None, None, 1.0, -1.0, None, -0.5]


def test_per_event_rollup_rows_in_any_order_add_up_like_raw_rows() -> None:
    rng = np.random.default_rng(3)
    start = np.datetime64("2024-01-01T00:00:00", "s").astype(np.int64)
    made = start + rng.integers(0, 90 * 86_400, 2_000)
    event = rng.integers(0, 5, made.size)
    revenue = rng.integers(500, 20_000, made.size)
    cancelled = np.where(rng.random(made.size) < 0.1, made + 3 * 86_400, NOT_CANCELLED)
    holds = start + rng.integers(0, 90 * 86_400, 3_000)
    whole = rollup_hours(made, np.ones(made.size, int), revenue, cancelled, holds)
    parts = [
        rollup_hours(
            made[event == e],
            np.ones(int((event == e).sum()), int),
            revenue[event == e],
            cancelled[event == e],
            holds[e::5],
        )
        for e in range(5)
    ]
    order = rng.permutation(sum(len(p) for p in parts))

    def stacked(name: str) -> np.ndarray:
        return np.concatenate([getattr(p, name) for p in parts])[order]

    names = ("hour", "bookings", "tickets", "revenue_cents", "cancellations", "holds")
    shuffled = HourlyRollup(*(stacked(name) for name in names))
    for period in Period:
        a = trends(whole, period, date(2024, 1, 1), date(2024, 4, 15))
        b = trends(shuffled, period, date(2024, 1, 1), date(2024, 4, 15))
        for column in ("start", "bookings", "revenue_cents", "cancellations", "holds"):
            assert np.array_equal(getattr(a, column), getattr(b, column)), (period, column)
        assert a.bookings.sum() == made.size


def test_a_rollup_refuses_hours_that_are_not_whole() -> None:
    one = np.array([1])
    with pytest.raises(ValueError):
        HourlyRollup(np.array([1800]), one, one, one, one, one)


_EPOCH_2023 = int(datetime(2023, 1, 1, tzinfo=UTC).timestamp())
_TWO_YEARS = 2 * 365 * 86_400


def _reference_start(instant: datetime, period: Period) -> datetime:
    """The bucket start the contract describes, computed with the calendar."""
    hour = instant.replace(minute=0, second=0)
    day = hour.replace(hour=0)
    if period is Period.HOURLY:
        return hour
    if period is Period.DAILY:
        return day
    if period is Period.WEEKLY:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, _TWO_YEARS), min_size=1, max_size=60),
    st.sampled_from(list(Period)),
)
def test_buckets_match_calendar_arithmetic(offsets: list[int], period: Period) -> None:
    made = np.array(offsets, dtype=np.int64) + _EPOCH_2023
    never = np.full(made.size, NOT_CANCELLED)
    rollup = rollup_hours(made, np.ones(made.size, int), np.ones(made.size, int), never, made[:0])
    found = trends(rollup, period, date(2023, 1, 1), date(2025, 1, 1))
    expected: dict[datetime, int] = {}
    for second in made.tolist():
        start = _reference_start(datetime.fromtimestamp(second, UTC), period)
        expected[start] = expected.get(start, 0) + 1
    got = {b.start: b.bookings for b in found.buckets() if b.bookings}
    assert got == expected
    assert np.all(np.diff(found.start) > 0)


# --- seasonality --------------------------------------------------------------------------


def test_weekday_seasonality_averages_over_the_days_of_each_weekday() -> None:
    # Four whole weeks from Monday 2024-03-04: Monday 1 booking a day ... Sunday 7; the
    # first Monday gets 5 more, so Monday averages 1 + 5/4.
    made = []
    for day in range(28):
        when = datetime(2024, 3, 4, 12, tzinfo=UTC) + timedelta(days=day)
        made += [when.isoformat()[:19]] * (when.weekday() + 1 + (5 if day == 0 else 0))
    found = seasonality(rows(made), date(2024, 3, 4), date(2024, 4, 1))
    assert found.weekday == (2.25, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0)


def test_month_seasonality_averages_over_the_calendar_months_present() -> None:
    # One booking a day through 2023, two a day in January 2024; the range ends with
    # February 2024.
    made = []
    day = datetime(2023, 1, 1, 8, tzinfo=UTC)
    while day < datetime(2024, 2, 1, tzinfo=UTC):
        made += [day.isoformat()[:19]] * (2 if day.year == 2024 else 1)
        day += timedelta(days=1)
    found = seasonality(rows(made), date(2023, 1, 1), date(2024, 3, 1))
    assert found.month[0] == (31 + 62) / 2  # January: two Januaries
    assert found.month[1] == 28 / 2  # February 2023 had 28, February 2024 none
    assert found.month[2:] == (31.0, 30.0, 31.0, 30.0, 31.0, 31.0, 30.0, 31.0, 30.0, 31.0)
    short = seasonality(rows(made), date(2023, 3, 1), date(2023, 4, 1))
    assert short.month[2] == 31.0
    assert short.month[:2] == (None, None)
    assert short.weekday[0] == 1.0


# --- user behaviour -----------------------------------------------------------------------


COHORT_BOOKINGS = [  # (user, when)
    (0, "2024-01-05T10:00:00"),
    (1, "2024-01-31T23:59:59"),
    (2, "2024-01-10T10:00:00"),
    (3, "2024-01-20T10:00:00"),
    (0, "2024-02-01T00:00:00"),
    (1, "2024-02-10T10:00:00"),
    (0, "2024-03-03T10:00:00"),
    (2, "2024-04-02T10:00:00"),
    (4, "2024-02-05T10:00:00"),
    (5, "2024-02-29T10:00:00"),
    (4, "2024-03-10T10:00:00"),
    (3, "2024-04-20T10:00:00"),  # after now: ignored
]
NOW = utc("2024-04-15T00:00:00")


def cohort_columns() -> tuple[np.ndarray, np.ndarray]:
    return (
        np.array([u for u, _ in COHORT_BOOKINGS]),
        ts(*(when for _, when in COHORT_BOOKINGS)),
    )


def test_cohorts_have_known_retention() -> None:
    users, made = cohort_columns()
    assert retention_cohorts(users, made, NOW) == (
        Cohort(month=date(2024, 1, 1), size=4, retention=(1.0, 0.5, 0.25, 0.25)),
        Cohort(month=date(2024, 2, 1), size=2, retention=(1.0, 0.5, 0.0)),
    )


def test_sparse_user_ids_give_the_same_cohorts() -> None:
    users, made = cohort_columns()
    sparse = users * 10**12 + 7
    assert retention_cohorts(sparse, made, NOW) == retention_cohorts(users, made, NOW)


def cohort_cells(users: np.ndarray, made: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The cells (first month, month, users active) of raw bookings, counted in Python."""
    months: dict[int, set[np.datetime64]] = {}
    for user, when in zip(users.tolist(), made.astype("datetime64[M]"), strict=True):
        months.setdefault(user, set()).add(when)
    cells: dict[tuple[np.datetime64, np.datetime64], int] = {}
    for active in months.values():
        first = min(active)
        for month in active:
            cells[first, month] = cells.get((first, month), 0) + 1
    keys = list(cells)
    return (
        np.array([k[0] for k in keys], dtype="datetime64[M]").astype("datetime64[s]"),
        np.array([k[1] for k in keys], dtype="datetime64[M]").astype("datetime64[s]"),
        np.array([cells[k] for k in keys], dtype=np.int64),
    )


def test_cohorts_from_counts_have_the_known_retention() -> None:
    users, made = cohort_columns()
    before = made < np.datetime64(NOW.replace(tzinfo=None))
    first, month, count = cohort_cells(users[before], made[before])
    expected = (
        Cohort(month=date(2024, 1, 1), size=4, retention=(1.0, 0.5, 0.25, 0.25)),
        Cohort(month=date(2024, 2, 1), size=2, retention=(1.0, 0.5, 0.0)),
    )
    assert cohorts_from_counts(first, month, count, NOW) == expected
    # A cell of a month that starts after now (and its own cohort) is not counted.
    may = np.array(["2024-05-01"], dtype="datetime64[s]")
    assert (
        cohorts_from_counts(
            np.concatenate([first, first[:1], may]),
            np.concatenate([month, may, may]),
            np.concatenate([count, [3, 2]]),
            NOW,
        )
        == expected
    )
    # Cells in any order, one cell split in two, months as epoch seconds: the same.
    order = np.argsort(-count, kind="stable")
    seconds = first[order].astype(np.int64), month[order].astype(np.int64), count[order]
    split = [np.concatenate([c, c[:1]]) for c in seconds]
    split[2] = np.concatenate([seconds[2] - (np.arange(seconds[2].size) == 0), [1]])
    assert cohorts_from_counts(*split, NOW) == cohorts_from_counts(first, month, count, NOW)
    assert cohorts_from_counts(first[:0], month[:0], count[:0], NOW) == ()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 30), st.integers(0, 900 * 86_400)), min_size=1, max_size=200),
    st.integers(0, 1000 * 86_400),
)
def test_cohorts_from_counts_equal_the_cohorts_of_the_rows(
    bookings: list[tuple[int, int]], now_offset: int
) -> None:
    start = int(utc("2023-11-20T00:00:00").timestamp())
    users = np.array([u for u, _ in bookings], dtype=np.int64)
    made = np.array([start + t for _, t in bookings], dtype=np.int64)
    now = start + now_offset
    # What the report computed before the counts: the cohorts of the user-month rows, each
    # stamped with its month's first day (as analytics_user_months holds them).
    months = made.astype("datetime64[s]").astype("datetime64[M]").astype("datetime64[s]")
    assert cohorts_from_counts(*cohort_cells(users, months), now) == (
        retention_cohorts(users, months, now)
    )


def test_cohorts_from_counts_refuse_inconsistent_cells() -> None:
    jan, feb = np.datetime64("2024-01-01", "s"), np.datetime64("2024-02-01", "s")
    with pytest.raises(ValueError, match="at or after"):
        cohorts_from_counts(np.array([feb]), np.array([jan]), np.array([1]), NOW)
    with pytest.raises(ValueError, match="at or after"):
        cohorts_from_counts(np.array([jan]), np.array([jan]), np.array([0]), NOW)
    with pytest.raises(ValueError, match="first month"):
        cohorts_from_counts(np.array([jan]), np.array([feb]), np.array([2]), NOW)
    with pytest.raises(ValueError, match="same length"):
        cohorts_from_counts(np.array([jan, feb]), np.array([jan]), np.array([1, 1]), NOW)


def test_retention_rate_uses_cohorts_whose_next_month_is_over() -> None:
    users, made = cohort_columns()
    cohorts = retention_cohorts(users, made, NOW)
    assert retention_rate(cohorts) == 3 / 6
    assert retention_rate(cohorts[1:2]) == 0.5
    young = (Cohort(month=date(2024, 3, 1), size=3, retention=(1.0, 1 / 3)),)
    assert retention_rate(young) is None


def test_repeat_rate_counts_users_with_two_or_more_bookings() -> None:
    users, made = cohort_columns()
    before = made < np.datetime64("2024-04-15")
    assert repeat_rate(users[before]) == 4 / 6  # users 0, 1, 2 and 4
    assert repeat_rate(np.array([7, 8]), count=np.array([2, 1])) == 0.5
    assert repeat_rate(np.array([], dtype=np.int64)) is None


def test_lead_time_percentiles_are_observed_values() -> None:
    made = np.full(10, np.datetime64("2024-05-01T00:00:00", "s"))
    starts = made + np.arange(10, 0, -1) * np.timedelta64(86_400, "s")  # 10 .. 1 days
    found = user_behaviour(np.arange(10), made, starts, np.zeros(10, bool), NOW + timedelta(60))
    lead = found.lead_time_days
    assert (lead.p10, lead.p50, lead.p90) == (1.0, 5.0, 9.0)


def test_percentiles_of_a_histogram_equal_those_of_its_rows() -> None:
    values = np.array([0.5, 2.0, 7.0, 30.0])
    counts = np.array([3, 0, 5, 2])
    raw = np.repeat(values, counts)
    qs = (0.1, 0.3, 0.5, 0.8, 0.9, 1.0)
    assert percentiles(raw, qs) == (0.5, 0.5, 7.0, 7.0, 30.0, 30.0)
    grid = tuple(i / 1000 for i in range(1001))
    assert percentiles(values, grid, weights=counts) == percentiles(raw, grid)
    hundred = np.arange(100.0)
    assert percentiles(hundred, grid, weights=np.ones(100)) == percentiles(hundred, grid)
    # 0.07 x 100 is 7.000000000000001 in floating point; the 7th value is still the answer.
    assert percentiles(hundred, (0.0, 0.07, 0.55, 1.0)) == (0.0, 6.0, 54.0, 99.0)
    assert percentiles(np.array([]), (0.5,)) == (None,)
    with pytest.raises(ValueError):
        percentiles(values, (1.5,))


def test_booking_clock_and_peaks() -> None:
    made = ts(
        "2024-03-11T09:00:00",  # Monday
        "2024-03-11T09:30:00",
        "2024-03-13T09:59:59",  # Wednesday
        "2024-03-17T23:59:59",  # Sunday
        "2024-03-18T00:00:00",  # Monday
    )
    hours, weekdays = booking_clock(made)
    assert hours[9] == 3 and hours[23] == 1 and hours[0] == 1 and sum(hours) == 5
    assert weekdays == (3, 0, 1, 0, 0, 0, 1)
    assert peak_hours(hours, 2) == (9, 0)  # ties go to the earlier hour
    assert peak_hours((0,) * 24) == ()
    rollup = rows([str(t) for t in made])
    assert booking_clock(rollup.hour, rollup.bookings) == (hours, weekdays)


def test_user_behaviour_report() -> None:
    users, made = cohort_columns()
    starts = made + np.timedelta64(3 * 86_400, "s")
    cancelled = np.zeros(users.size, bool)
    cancelled[[1, 4, 7]] = True
    report = user_behaviour(users, made, starts, cancelled, NOW)
    assert report.cohorts == retention_cohorts(users, made, NOW)
    assert report.retention_rate == 0.5
    assert report.repeat_rate == 4 / 6  # user 3's second booking is after now
    assert report.cancellation_rate == 3 / 11
    assert report.lead_time_days.p50 == 3.0
    assert sum(report.booking_hours) == sum(report.booking_weekdays) == 11


def test_user_behaviour_with_no_bookings() -> None:
    empty = np.array([], dtype="datetime64[s]")
    report = user_behaviour(np.array([], dtype=np.int64), empty, empty, np.array([], bool), NOW)
    assert report.cohorts == ()
    assert report.repeat_rate is None and report.cancellation_rate is None
    assert report.retention_rate is None and report.lead_time_days.p50 is None
    assert report.booking_hours == (0,) * 24


# --- trending -----------------------------------------------------------------------------


def test_trending_ranks_by_velocity_against_the_events_own_normal() -> None:
    now = utc("2024-06-15T12:00:00")
    made: list[datetime] = []
    event: list[int] = []

    def book(code: int, n: int, days_ago_from: float, days_ago_to: float) -> None:
        for i in range(n):
            ago = days_ago_from + (days_ago_to - days_ago_from) * (i + 0.5) / n
            made.append(now - timedelta(days=ago))
            event.append(code)

    book(1, 14, 15, 1)  # normal one a day ...
    book(1, 10, 1, 0)  # ... ten in the last day
    book(2, 28, 15, 1)  # two a day, ten in the last day
    book(2, 10, 1, 0)
    book(3, 2, 1, 0)  # too few to trend
    book(4, 3, 1, 0)  # new: no normal at all
    book(5, 50, 40, 20)  # only old sales
    seconds = np.array([int(m.timestamp()) for m in made])
    found = trending_events(np.array(event), seconds, None, now)
    assert [e.event for e in found] == [4, 1, 2]
    by_code = {e.event: e for e in found}
    assert (by_code[1].velocity, by_code[1].normal, by_code[1].ratio) == (10.0, 1.0, 10.0)
    assert by_code[2].ratio == 5.0
    assert by_code[4].normal == 0.0 and by_code[4].ratio == pytest.approx(42.0)
    assert trending_events(np.array(event), seconds, None, now, limit=1)[0].event == 4
    sparse = trending_events(np.array(event) * 10**12, seconds, None, now)
    assert [(e.event // 10**12, e.ratio) for e in sparse] == [(e.event, e.ratio) for e in found]
    with pytest.raises(ValueError):
        trending_events(np.array(event), seconds, None, now, min_recent=0)


def test_trending_windows_end_before_now() -> None:
    now = utc("2024-06-15T00:00:00")
    at = np.array([int(now.timestamp()) - 86_400, int(now.timestamp())])  # edge in, now out
    found = trending_events(np.array([9, 9]), at, np.array([3, 100]), now)
    assert [(e.event, e.velocity) for e in found] == [(9, 3.0)]
