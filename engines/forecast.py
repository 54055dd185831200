"""Next-month forecasts from a daily history, with an 80 % interval and a measured error.

Model: additive, fitted by ordinary least squares (numpy only),
    y[d] = a + b·t + w[weekday(d)] + Σ_k (s_k·sin(2πk·d/365.25) + c_k·cos(2πk·d/365.25)) + e[d]
with d the epoch day (so the yearly phase is the calendar's, whatever the history's start),
t the years since the history's first day, and six weekday dummies (Monday the reference).
Terms are only fitted when the history can identify them: weekday dummies from 14 days,
the trend from 28, the yearly terms (k = 1..3) from 365. Leading days with no value are
dropped first: before its first booking a category had no business to model.
Additive rather than log-space because quiet categories have days with no bookings.

Interval: in-sample residuals, inflated by √(n / (n - p)) for the p fitted terms. A day's
bounds are the residual quantiles around its point, widened by √(1 + leverage) for the
error of the coefficients there (the OLS prediction interval, without assuming a normal
noise). The horizon total is a sum of many days, so its bounds are normal: the variance of
h days of noise, with the residuals' autocorrelation over a week, plus the coefficients'
error summed over the horizon. (Quantiles of sums of in-sample residual runs looked
simpler but come out too narrow: the yearly terms soak up some low-frequency noise, so a
month of residuals sums to less than a month of fresh errors.) Points and lower bounds are
clipped at zero; totals are sums of the daily points.

Back-test: rolling origin. Fold j ends its training ``j·horizon`` days before the end and
forecasts the ``horizon`` days after it, for j = folds..1 (folds with under 28 training
days are skipped, and folds whose actual total is 0 do not count: MAPE is undefined
there). MAPE is the mean absolute error of the horizon *total* over the actual total, as a
fraction: the figure the endpoint reports is a total. The baseline is seasonal naive on
the same folds: each day as the same weekday 52 weeks before (`Baseline.LAST_YEAR`) when
every fold has a year of history, else the mean of the same weekday over the last 4 weeks
(`Baseline.LAST_4_WEEKS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from statistics import NormalDist

import numpy as np

from engines.analytics import DAY, Instant, Period, Trends, to_seconds

YEAR_DAYS = 365.25
YEARLY_ORDER = 3
MIN_WEEKLY = 14
MIN_TREND = 28
MIN_YEARLY = 365
SEASONAL_LAG = 364  # 52 weeks: the same weekday a year before
HORIZON = 30
LEVEL = 0.8
FOLDS = 6


class Baseline(StrEnum):
    LAST_YEAR = "last_year"  # the same weekday 52 weeks before
    LAST_4_WEEKS = "last_4_weeks"  # the mean of the same weekday over the last 4 weeks


def _epoch_day(value: Instant) -> int:
    return to_seconds(value) // DAY


def _date(epoch_day: int) -> date:
    return date(1970, 1, 1) + timedelta(days=epoch_day)


def _values(history: np.ndarray) -> np.ndarray:
    y = np.asarray(history, dtype=np.float64)
    if y.ndim != 1 or not np.all(np.isfinite(y)):
        raise ValueError("a history is a one-dimensional array of finite numbers")
    return y


def _trimmed(history: np.ndarray, first_day: int) -> tuple[np.ndarray, int]:
    """The history from its first non-zero day, and that day."""
    y = _values(history)
    nonzero = np.flatnonzero(y)
    skip = int(nonzero[0]) if nonzero.size else y.size
    return y[skip:], first_day + skip


# --- the model ----------------------------------------------------------------------------


def _design(days: np.ndarray, origin: int, n_train: int) -> np.ndarray:
    """Regressors for epoch days ``days``, for a model trained on ``n_train`` days from
    ``origin``."""
    columns = [np.ones(days.size)]
    if n_train >= MIN_TREND:
        columns.append((days - origin) / YEAR_DAYS)
    if n_train >= MIN_WEEKLY:
        weekday = (days + 3) % 7  # epoch day 0 was a Thursday
        columns.extend((weekday == k).astype(np.float64) for k in range(1, 7))
    if n_train >= MIN_YEARLY:
        for k in range(1, YEARLY_ORDER + 1):
            angle = 2.0 * np.pi * k * days / YEAR_DAYS
            columns.extend((np.sin(angle), np.cos(angle)))
    return np.column_stack(columns)


@dataclass(frozen=True, eq=False)
class _Fit:
    origin: int  # epoch day of the first training day
    n: int  # training days
    beta: np.ndarray
    residuals: np.ndarray  # inflated by √(n / (n - p)), so their spread estimates the noise
    xtx_inverse: np.ndarray  # (XᵀX)⁻¹: the noise variance times it is the coefficients' covariance

    def design(self, days: np.ndarray) -> np.ndarray:
        return _design(days, self.origin, self.n)


def _fit(y: np.ndarray, origin: int) -> _Fit:
    x = _design(np.arange(origin, origin + y.size), origin, y.size)
    # Normal equations: the columns are scaled alike (years, 0/1, ±1), so XᵀX is well
    # conditioned, and a 13 x 13 pseudo-inverse is several times cheaper than lstsq's SVD
    # of the whole design; it is also the covariance the intervals need.
    xtx_inverse = np.linalg.pinv(x.T @ x)
    beta = xtx_inverse @ (x.T @ y)
    inflate = np.sqrt(y.size / max(y.size - x.shape[1], 1))
    return _Fit(origin, y.size, beta, (y - x @ beta) * inflate, xtx_inverse)


def _future(fit: _Fit, horizon: int) -> np.ndarray:
    start = fit.origin + fit.n
    return np.maximum(fit.design(np.arange(start, start + horizon)) @ fit.beta, 0.0)


def _short_correlation(residuals: np.ndarray, horizon: int) -> float:
    """Var(sum of h errors) ÷ (h·σ²) from the residuals' autocorrelation over a week
    (Bartlett weights), so day-to-day persistence widens the total's interval."""
    energy = float(residuals @ residuals)
    if energy == 0.0:
        return 1.0
    factor = 1.0
    for lag in range(1, min(7, horizon - 1, residuals.size - 1) + 1):
        rho = float(residuals[:-lag] @ residuals[lag:]) / energy
        factor += 2.0 * (1.0 - lag / horizon) * rho
    return max(factor, 0.0)


# --- forecasts ----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SeriesForecast:
    """The next ``horizon`` days after a history, day by day and in total."""

    first_day: date  # the first forecast day
    daily: np.ndarray
    daily_lower: np.ndarray
    daily_upper: np.ndarray
    total: float
    lower: float
    upper: float
    level: float


def forecast(
    history: np.ndarray, first_day: Instant, horizon: int = HORIZON, level: float = LEVEL
) -> SeriesForecast:
    """Forecast the ``horizon`` days after a daily history, with a ``level`` interval.

    Args:
        history: one value per day (bookings, or revenue in cents), oldest first, ending
            with the last complete day.
        first_day: the day of ``history[0]`` (UTC).
        horizon: days to forecast.
        level: the central probability of the interval, in (0, 1).

    Returns:
        The forecast; all zeros when the history has no non-zero day.

    Raises:
        ValueError: on a bad horizon, level or history.
    """
    if horizon < 1 or not 0.0 < level < 1.0:
        raise ValueError("horizon must be positive and level in (0, 1)")
    y, origin = _trimmed(history, _epoch_day(first_day))
    start = origin + y.size
    if y.size == 0:
        zeros = np.zeros(horizon)
        return SeriesForecast(_date(start), zeros, zeros, zeros, 0.0, 0.0, 0.0, level)
    fit = _fit(y, origin)
    x = fit.design(np.arange(start, start + horizon))
    point = x @ fit.beta
    tail = (1.0 - level) / 2.0
    # A day: the residuals' own quantiles, widened by the day's leverage (the error of
    # the fitted coefficients at that day, relative to the noise).
    leverage = np.sqrt(1.0 + np.einsum("ij,jk,ik->i", x, fit.xtx_inverse, x))
    day_lo, day_hi = np.quantile(fit.residuals, [tail, 1.0 - tail])
    # The total: normal by the central limit theorem; noise of h days with their
    # short-range correlation, plus the coefficients' error summed over the horizon.
    sigma2 = float(fit.residuals @ fit.residuals) / fit.n
    summed = x.sum(axis=0)
    spread = sigma2 * (
        horizon * _short_correlation(fit.residuals, horizon)
        + float(summed @ fit.xtx_inverse @ summed)
    )
    half_width = NormalDist().inv_cdf(1.0 - tail) * np.sqrt(spread)
    daily = np.maximum(point, 0.0)
    total = float(daily.sum())
    return SeriesForecast(
        first_day=_date(start),
        daily=daily,
        daily_lower=np.maximum(point + day_lo * leverage, 0.0),
        daily_upper=np.maximum(point + day_hi * leverage, 0.0),
        total=total,
        lower=max(total - half_width, 0.0),
        upper=total + half_width,
        level=level,
    )


# --- back-test ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Backtest:
    model_mape: float | None  # a fraction; None when no fold counted
    baseline: Baseline
    baseline_mape: float | None
    folds: int  # folds that counted


def _baseline_days(y: np.ndarray, origin: int, horizon: int, baseline: Baseline) -> np.ndarray:
    """The seasonal-naive forecast of days ``origin .. origin + horizon - 1``, from
    ``y[:origin]`` only."""
    if baseline is Baseline.LAST_YEAR:
        return y[origin - SEASONAL_LAG : origin - SEASONAL_LAG + horizon]
    same_weekday = y[origin - 28 : origin].reshape(4, 7).mean(axis=0)
    return same_weekday[np.arange(horizon) % 7]  # day origin+i shares column i mod 7


def backtest(
    history: np.ndarray, first_day: Instant, horizon: int = HORIZON, folds: int = FOLDS
) -> Backtest:
    """Rolling-origin back-test of `forecast` against seasonal naive (see module doc).

    Args:
        history: one value per day, oldest first.
        first_day: the day of ``history[0]``.
        horizon: days forecast by each fold.
        folds: folds to try, the last ending with the history.

    Returns:
        Both MAPEs over the same folds, the baseline used, and how many folds counted.
    """
    if horizon < 1 or folds < 1:
        raise ValueError("horizon and folds must be positive")
    y, origin_day = _trimmed(history, _epoch_day(first_day))
    ends = [y.size - horizon * j for j in range(folds, 0, -1)]
    ends = [end for end in ends if end >= MIN_TREND]
    baseline = Baseline.LAST_YEAR
    if not ends or ends[0] < SEASONAL_LAG or horizon > SEASONAL_LAG:
        baseline = Baseline.LAST_4_WEEKS
    model_errors: list[float] = []
    baseline_errors: list[float] = []
    for end in ends:
        actual = float(y[end : end + horizon].sum())
        if actual <= 0.0:
            continue
        predicted = float(_future(_fit(y[:end], origin_day), horizon).sum())
        naive = float(_baseline_days(y, end, horizon, baseline).sum())
        model_errors.append(abs(predicted - actual) / actual)
        baseline_errors.append(abs(naive - actual) / actual)
    return Backtest(
        model_mape=float(np.mean(model_errors)) if model_errors else None,
        baseline=baseline,
        baseline_mape=float(np.mean(baseline_errors)) if baseline_errors else None,
        folds=len(model_errors),
    )


# --- the predictions report ---------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class DailySeries:
    """Bookings and revenue (cents) per UTC day, oldest first, from ``first_day``."""

    first_day: date  # any instant of that day is accepted and becomes its date
    bookings: np.ndarray
    revenue_cents: np.ndarray

    def __post_init__(self) -> None:
        bookings, revenue = _values(self.bookings), _values(self.revenue_cents)
        if bookings.shape != revenue.shape:
            raise ValueError("bookings and revenue need one value per day each")
        object.__setattr__(self, "first_day", _date(_epoch_day(self.first_day)))
        object.__setattr__(self, "bookings", bookings)
        object.__setattr__(self, "revenue_cents", revenue)

    @classmethod
    def from_trends(cls, trends: Trends) -> DailySeries:
        """The series of daily `Trends` (the hub's rollups bucketed by day)."""
        if trends.period is not Period.DAILY or trends.start.size == 0:
            raise ValueError("a daily series comes from non-empty daily trends")
        return cls(_date(int(trends.start[0]) // DAY), trends.bookings, trends.revenue_cents)


@dataclass(frozen=True)
class Outlook:
    """Bookings and revenue over the next ``horizon`` days, with ``level`` intervals."""

    bookings: int
    lower: int
    upper: int
    revenue_cents: int
    revenue_lower_cents: int
    revenue_upper_cents: int
    level: float


@dataclass(frozen=True)
class Predictions:
    next_month: Outlook
    by_category: dict[str, Outlook]
    backtest: Backtest  # of the overall bookings forecast


def outlook(series: DailySeries, horizon: int = HORIZON, level: float = LEVEL) -> Outlook:
    """Forecast a series' bookings and revenue for the ``horizon`` days after it."""
    bookings = forecast(series.bookings, series.first_day, horizon, level)
    revenue = forecast(series.revenue_cents, series.first_day, horizon, level)
    return Outlook(
        bookings=round(bookings.total),
        lower=round(bookings.lower),
        upper=round(bookings.upper),
        revenue_cents=round(revenue.total),
        revenue_lower_cents=round(revenue.lower),
        revenue_upper_cents=round(revenue.upper),
        level=level,
    )


def predict_next_month(
    overall: DailySeries,
    by_category: Mapping[str, DailySeries],
    *,
    horizon: int = HORIZON,
    level: float = LEVEL,
    folds: int = FOLDS,
) -> Predictions:
    """The predictions report: the next ``horizon`` days ("next month") overall and per
    category, and the back-test of the overall bookings model.

    Args:
        overall: every booking, per day, up to the last complete day.
        by_category: the same per category, in the order to report them.
        horizon: days ahead; 30 for "next month".
        level: the interval's central probability.
        folds: back-test folds.
    """
    return Predictions(
        next_month=outlook(overall, horizon, level),
        by_category={name: outlook(series, horizon, level) for name, series in by_category.items()},
        backtest=backtest(overall.bookings, overall.first_day, horizon, folds),
    )
