"""Every Prometheus metric the hub exports, defined in one place.

Label values are bounded: routes are path templates, codes come from the error tree,
outcomes from small enums. Never a user, seat or event id as a label.
With several worker processes the CLI sets a multiprocess directory, and ``render``
aggregates the files of every worker.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "evently_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "evently_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
HTTP_ERRORS = Counter("evently_http_errors_total", "Error responses by problem code", ["code"])

HOLDS = Counter("evently_holds_total", "Hold attempts by outcome", ["outcome"])


@functools.cache
def hold_outcome(outcome: str) -> Counter:
    """The ``HOLDS`` child of one outcome, looked up once (``labels()`` locks every call)."""
    return HOLDS.labels(outcome=outcome)


BOOKINGS = Counter("evently_bookings_total", "Booking attempts by outcome", ["outcome"])
TICKETS_SOLD = Counter("evently_tickets_sold_total", "Tickets sold")
HOLD_LATENCY = Histogram(
    "evently_hold_duration_seconds", "Time to place a hold", buckets=LATENCY_BUCKETS
)
CONFIRM_LATENCY = Histogram(
    "evently_confirm_duration_seconds", "Time to confirm a booking", buckets=LATENCY_BUCKETS
)
STUCK_BOOKINGS = Counter(
    "evently_stuck_bookings_total", "Confirming holds left behind and reconciled", ["outcome"]
)
LEFT_CHARGES = Counter(
    "evently_left_charges_total",
    "Charges of confirmations left behind without a booking, refunded by the leader",
    ["outcome"],
)
EXPIRED_HOLDS = Counter("evently_expired_holds_total", "Holds released by expiry")
REFUNDS = Counter(
    "evently_refunds_total", "Refund attempts after cancellations, by outcome", ["outcome"]
)

WS_CONNECTIONS = Gauge(
    "evently_ws_connections", "Open WebSocket connections", ["channel"], multiprocess_mode="livesum"
)
WS_DELIVERIES = Counter("evently_ws_deliveries_total", "Frames written to WebSocket clients")
WS_DROPPED = Counter(
    "evently_ws_dropped_total", "Slow WebSocket clients resynced or closed", ["action"]
)
# reason: origin, rate_limited, ip_cap, user_cap, hello_timeout, not_admin,
# refused_messages, too_big, no_such_event (hub.api.sockets)
WS_REFUSED = Counter(
    "evently_ws_refused_total", "WebSocket connections refused or closed by a limit", ["reason"]
)

DB_POOL = Gauge(
    "evently_db_pool_connections", "PostgreSQL pool", ["state"], multiprocess_mode="livesum"
)
REDIS_ERRORS = Counter("evently_redis_errors_total", "Redis calls that failed to reach Redis")
CACHE_LOOKUPS = Counter(
    "evently_cache_lookups_total",
    "Lookups in the hub's own caches (per process and in Redis), by cache and hit or miss",
    ["cache", "outcome"],
)
ALERT_FIRING = Gauge(
    "evently_alert_firing",
    "1 while an alert rule fires (set by the leader's health sampler)",
    ["name"],
    multiprocess_mode="livemax",
)
IS_LEADER = Gauge(
    "evently_leader", "1 in the process holding the leader lease", multiprocess_mode="livemax"
)
ROLLUP_STEPS = Histogram(
    "evently_rollup_step_seconds",
    "Analytics rollup steps (leader), horizon to commit",
    buckets=LATENCY_BUCKETS,
)
ROLLUP_ROWS = Counter(
    "evently_rollup_rows_total", "Rows counted into the analytics rollups, by kind", ["kind"]
)
ROLLUP_LAG = Gauge(
    "evently_rollup_lag_seconds",
    "How far the analytics rollups trailed the clock when the last step ended",
    multiprocess_mode="livemax",
)
# How late each process's event loop wakes a timer (hub.loop_lag): every request in that
# process waits at least this long, whatever its route.
LOOP_LAG = Histogram(
    "evently_event_loop_lag_seconds",
    "How late the event loop ran a timer, sampled every 50 ms in each process",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
# Circuit breakers (hub.breakers), by breaker name (payments, email).
BREAKER_STATE = Gauge(
    "evently_breaker_state",
    "Circuit breaker state: 0 closed, 1 half-open, 2 open (the worst over processes)",
    ["breaker"],
    multiprocess_mode="livemax",
)
BREAKER_FAILURES = Counter(
    "evently_breaker_failures_total", "Calls a circuit breaker counted as failures", ["breaker"]
)
BREAKER_TRANSITIONS = Counter(
    "evently_breaker_transitions_total",
    "Circuit breaker state changes, by the state entered",
    ["breaker", "state"],
)
BREAKER_REJECTIONS = Counter(
    "evently_breaker_rejections_total", "Calls refused at once by an open breaker", ["breaker"]
)


def total(metric: Counter | Gauge, **labels: str) -> float:
    """This process's sum of a metric's samples, over the label values given (all if none).

    Reads the values the collector exposes, so it works for labelled and plain metrics.
    """
    value = 0.0
    for family in metric.collect():
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            if all(sample.labels.get(k) == v for k, v in labels.items()):
                value += sample.value
    return value


def histogram_buckets(
    metric: Histogram, multiprocess_dir: str | None, labels: Mapping[str, str] | None = None
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """A histogram's bucket bounds (ascending, ``inf`` last) and cumulative counts: over
    every worker's files when ``multiprocess_dir`` is set, else this process's; of the
    series with these ``labels`` only when given, else of all summed.
    """
    name = next(iter(metric.describe())).name
    if multiprocess_dir:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=multiprocess_dir)
        families = list(registry.collect())
    else:
        families = list(metric.collect())
    counts: dict[float, float] = {}
    for family in families:
        if family.name != name:
            continue
        for sample in family.samples:
            if sample.name == f"{name}_bucket" and (
                labels is None or all(sample.labels.get(k) == v for k, v in labels.items())
            ):
                bound = float(sample.labels["le"])
                counts[bound] = counts.get(bound, 0.0) + sample.value
    bounds = tuple(sorted(counts))
    return bounds, tuple(counts[b] for b in bounds)


def render(multiprocess_dir: str | None) -> tuple[bytes, str]:
    """The exposition text and its content type."""
    if multiprocess_dir:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=multiprocess_dir)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
