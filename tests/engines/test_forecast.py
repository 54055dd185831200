from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from engines.analytics import NOT_CANCELLED, Period, rollup_hours, trends
from engines.forecast import (
    Baseline,
    DailySeries,
    backtest,
    forecast,
    predict_next_month,
)

FIRST = date(2022, 1, 3)
EPOCH_DAY = (FIRST - date(1970, 1, 1)).days
WEEK = np.array([-10.0, -6.0, -2.0, 4.0, 14.0, 22.0, -22.0])  # Monday first
HISTORY = 730
HORIZON = 30


def truth(n: int, *, first_day: int = EPOCH_DAY, trend: float = 0.06) -> np.ndarray:
    """Expected bookings per day: level, linear trend, weekly and yearly seasonality.

    The yearly part is two calendar harmonics, which the model's Fourier terms can
    represent; with no noise the model must therefore recover the series exactly.
    """
    days = np.arange(first_day, first_day + n)
    phase = 2.0 * np.pi * days / 365.25
    weekday = WEEK[(days + 3) % 7]
    return 150.0 + trend * np.arange(n) + weekday + 25.0 * np.sin(phase) + 10.0 * np.cos(2 * phase)


def noisy(n: int, sigma: float, seed: int) -> np.ndarray:
    return truth(n) + sigma * np.random.default_rng(seed).standard_normal(n)


def test_a_noise_free_seasonal_series_is_recovered_exactly() -> None:
    expected = truth(HISTORY + HORIZON)
    found = forecast(expected[:HISTORY], FIRST)
    assert found.first_day == FIRST + timedelta(days=HISTORY)
    np.testing.assert_allclose(found.daily, expected[HISTORY:], rtol=1e-9)


def test_the_forecast_is_within_two_percent_of_the_truth() -> None:
    # Noise sd 8 on a level near 190: the next 30 days' total within 2 % of its
    # expectation, and each day within 5 % of the day's expectation.
    expected = truth(HISTORY + HORIZON)
    found = forecast(noisy(HISTORY, 8.0, seed=11), FIRST)
    future = expected[HISTORY:]
    assert found.total == pytest.approx(future.sum(), rel=0.02)
    assert np.all(np.abs(found.daily - future) <= 0.05 * future)
    assert found.lower < found.total < found.upper
    assert np.all(found.daily_lower < found.daily) and np.all(found.daily < found.daily_upper)


def test_the_model_beats_seasonal_naive_in_the_backtest() -> None:
    result = backtest(noisy(HISTORY, 8.0, seed=5), FIRST)
    assert result.baseline is Baseline.LAST_YEAR
    assert result.folds == 6
    assert result.model_mape is not None and result.baseline_mape is not None
    # Naive last-year misses a year of trend (about 22 a day on ~190): over 10 %.
    assert result.baseline_mape > 0.10
    assert result.model_mape < result.baseline_mape / 4


def test_backtest_error_grows_with_noise() -> None:
    errors = []
    for sigma in (4.0, 12.0, 36.0):
        mape = backtest(noisy(HISTORY, sigma, seed=2), FIRST).model_mape
        assert mape is not None
        errors.append(mape)
    assert errors[0] < errors[1] < errors[2]


def test_the_80_percent_interval_covers_about_80_percent() -> None:
    daily_hits = 0
    total_hits = 0
    runs = 40
    for seed in range(runs):
        series = noisy(HISTORY + HORIZON, 10.0, seed=100 + seed)
        found = forecast(series[:HISTORY], FIRST, level=0.8)
        held_out = series[HISTORY:]
        daily_hits += int(np.sum((found.daily_lower <= held_out) & (held_out <= found.daily_upper)))
        total_hits += int(found.lower <= held_out.sum() <= found.upper)
    assert 0.65 <= daily_hits / (runs * HORIZON) <= 0.95
    assert 0.65 <= total_hits / runs <= 0.95


def test_a_wider_level_gives_a_wider_interval() -> None:
    series = noisy(HISTORY, 10.0, seed=1)
    narrow, wide = forecast(series, FIRST, level=0.5), forecast(series, FIRST, level=0.95)
    assert wide.lower < narrow.lower < narrow.total < narrow.upper < wide.upper
    assert wide.level == 0.95


def test_seasonal_naive_baseline_has_the_known_error_on_a_pure_trend() -> None:
    # y = 100 + t: the model is exact; last year's same weekday is 364 lower every day.
    series = 100.0 + np.arange(HISTORY, dtype=np.float64)
    result = backtest(series, FIRST, folds=3)
    expected = []
    for end in (HISTORY - 90, HISTORY - 60, HISTORY - 30):
        actual = series[end : end + HORIZON].sum()
        expected.append(364 * HORIZON / actual)
    assert result.model_mape == pytest.approx(0.0, abs=1e-9)
    assert result.baseline is Baseline.LAST_YEAR
    assert result.baseline_mape == pytest.approx(np.mean(expected), rel=1e-12)


def test_with_less_than_a_year_the_baseline_is_the_last_four_weeks() -> None:
    # y = 100 + t over 200 days: the same-weekday mean of the last 4 weeks lags by
    # 28 - 10.5 = 17.5 days plus the day's distance into the horizon.
    n = 200
    series = 100.0 + np.arange(n, dtype=np.float64)
    result = backtest(series, FIRST, folds=2)
    assert result.baseline is Baseline.LAST_4_WEEKS
    expected = []
    for end in (n - 60, n - 30):
        naive = sum(
            np.mean([series[end - 28 + i % 7 + 7 * j] for j in range(4)]) for i in range(HORIZON)
        )
        actual = series[end : end + HORIZON].sum()
        expected.append(abs(naive - actual) / actual)
    assert result.baseline_mape == pytest.approx(np.mean(expected), rel=1e-12)
    assert result.model_mape == pytest.approx(0.0, abs=1e-9)


def test_a_short_history_still_forecasts_its_weekly_pattern() -> None:
    n = 120  # no yearly terms below a year
    days = np.arange(EPOCH_DAY, EPOCH_DAY + n + 14)
    series = 50.0 + WEEK[(days + 3) % 7]
    found = forecast(series[:n], FIRST, horizon=14)
    np.testing.assert_allclose(found.daily, series[n:], rtol=1e-9)


def test_leading_zero_days_are_dropped_and_empty_histories_forecast_nothing() -> None:
    series = noisy(400, 5.0, seed=9)
    padded = np.concatenate((np.zeros(50), series))
    earlier = FIRST - timedelta(days=50)
    a, b = forecast(series, FIRST), forecast(padded, earlier)
    assert a.first_day == b.first_day
    np.testing.assert_allclose(a.daily, b.daily)
    assert backtest(series, FIRST) == backtest(padded, earlier)
    nothing = forecast(np.zeros(90), FIRST)
    assert (nothing.total, nothing.lower, nothing.upper) == (0.0, 0.0, 0.0)
    assert backtest(np.zeros(90), FIRST).folds == 0


def test_a_fold_with_nothing_to_forecast_does_not_count() -> None:
    # A category that stopped selling a month ago: MAPE is undefined for the last fold.
    series = noisy(HISTORY, 5.0, seed=3)
    series[-HORIZON:] = 0.0
    result = backtest(series, FIRST)
    assert result.folds == 5
    assert result.model_mape is not None and np.isfinite(result.model_mape)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        forecast(np.ones(60), FIRST, level=1.0)
    with pytest.raises(ValueError):
        forecast(np.ones(60), FIRST, horizon=0)
    with pytest.raises(ValueError):
        forecast(np.array([1.0, np.nan]), FIRST)
    with pytest.raises(ValueError):
        DailySeries(FIRST, np.ones(3), np.ones(4))


def test_predictions_overall_and_per_category_add_up() -> None:
    # Least squares is linear in the data: with categories summing to the whole, the
    # category forecasts sum to the overall one (up to rounding to whole bookings).
    rng = np.random.default_rng(4)
    shares = {"concert": 0.5, "sport": 0.3, "theatre": 0.2}
    base = noisy(HISTORY, 6.0, seed=4)
    parts = {name: base * share + rng.normal(0, 1, HISTORY) for name, share in shares.items()}
    revenue = {name: values * 4_500 for name, values in parts.items()}
    overall = DailySeries(
        FIRST, np.sum(list(parts.values()), axis=0), np.sum(list(revenue.values()), axis=0)
    )
    by_category = {name: DailySeries(FIRST, parts[name], revenue[name]) for name in parts}
    report = predict_next_month(overall, by_category)
    assert list(report.by_category) == ["concert", "sport", "theatre"]
    summed = sum(outlook.bookings for outlook in report.by_category.values())
    assert abs(summed - report.next_month.bookings) <= len(shares)
    assert report.next_month.revenue_cents == pytest.approx(
        4_500 * report.next_month.bookings, rel=1e-3
    )
    outlook = report.next_month
    assert outlook.lower < outlook.bookings < outlook.upper and outlook.level == 0.8
    assert outlook.revenue_lower_cents < outlook.revenue_cents < outlook.revenue_upper_cents
    assert report.backtest.folds == 6


def test_daily_trends_become_a_series() -> None:
    made = np.array(["2024-01-01T10:00", "2024-01-03T23:59:59"], dtype="datetime64[s]")
    rollup = rollup_hours(
        made,
        np.ones(2, int),
        np.array([1_000, 2_500]),
        np.full(2, NOT_CANCELLED),
        made[:0],
    )
    daily = trends(rollup, Period.DAILY, date(2024, 1, 1), date(2024, 1, 5))
    series = DailySeries.from_trends(daily)
    assert series.first_day == date(2024, 1, 1)
    assert series.bookings.tolist() == [1.0, 0.0, 1.0, 0.0]
    assert series.revenue_cents.tolist() == [1_000.0, 0.0, 2_500.0, 0.0]
    with pytest.raises(ValueError):
        DailySeries.from_trends(trends(rollup, Period.WEEKLY, date(2024, 1, 1), date(2024, 1, 5)))
