"""Settings: every ``EVENTLY_*`` variable, read once into a frozen object.

No other module reads ``os.environ``. A bad value fails fast at start-up with a message that
names the variable.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")

_DEFAULT_LOG_FORMAT = "console" if sys.stderr.isatty() else "json"


class SettingsError(ValueError):
    """A variable is missing or malformed."""


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    database_url: str | None = None
    redis_url: str | None = None
    secret_key: str | None = None
    admin_email: str | None = None
    admin_password: str | None = None
    # Where the embedded servers, the generated secret and other local state live.
    home: str = ".evently"
    # Every Redis key and channel starts with this; a test run uses its own prefix.
    redis_prefix: str = "evently:"
    hold_ttl_seconds: int = 600
    hold_max_lifetime_seconds: int = 1200
    offer_ttl_seconds: int = 300
    pricing_interval_seconds: float = 10.0
    # How often the leader adds new bookings, cancellations and holds to the analytics rollups.
    rollup_interval_seconds: float = 30.0
    # Pricing runs (the leader's tick, update-all) in a niced child process (hub.offload);
    # off: in the calling process, as a test or a one-process tool may prefer.
    pricing_offload: bool = True
    # The child's nice value (0-19): how far background runs yield the CPU to serving.
    offload_nice: int = 10
    # Event recommendations: the leader rebuilds the model this often, and as soon as this
    # many bookings were made since the last build; answers are cached per user this long.
    reco_rebuild_seconds: float = 600.0
    reco_rebuild_bookings: int = 500
    reco_cache_seconds: int = 300
    # The model is built in the niced offload child (hub.offload); off: in the calling process.
    reco_offload: bool = True
    # An API request that takes longer than this is answered 503 service_unavailable
    # (its work cancelled: transactions roll back, the leader reconciles the rest).
    request_timeout_seconds: float = 10.0
    payment_latency_ms: int = 0
    payment_failure_rate: float = 0.0
    # A payment call taking longer than this is abandoned and counts as a breaker failure.
    payment_timeout_seconds: float = 5.0
    # Circuit breakers (hub.breakers): open after this many consecutive failures, let a
    # trial call through after this many seconds open.
    breaker_failure_threshold: int = 5
    breaker_reset_seconds: float = 30.0
    # Outgoing email: smtp://user:pass@host:port (smtps:// for implicit TLS); unset = the log.
    smtp_url: str | None = None
    smtp_from: str = "Evently <no-reply@evently.local>"
    # An SMTP exchange taking longer than this fails and counts as a breaker failure.
    smtp_timeout_seconds: float = 10.0
    allowed_origins: tuple[str, ...] = ()
    rate_limits: bool = True
    max_group_size: int = 500
    max_discount_percent: int = 25
    # Analytics answers are kept in Redis this long; ``?fresh=true`` recomputes.
    analytics_cache_seconds: int = 900
    # Alerts (hub.services.health), evaluated on the leader's 10 s health sample: the p99
    # of hold placement over the last 10 s, the share of 5xx answers over the last 10 s,
    # seconds a circuit breaker has been open, notifications waiting in the outbox, and a
    # PostgreSQL or Redis probe slower than this (a probe gives up at twice it, at least
    # a second, and then reads as that long).
    alert_hold_p99_ms: float = 500.0
    alert_error_rate: float = 0.05
    alert_breaker_open_seconds: float = 0.0
    alert_outbox_backlog: int = 1000
    alert_probe_ms: float = 500.0
    ws_max_per_ip: int = 200
    ws_max_per_user: int = 5
    ws_tick_ms: int = 100
    # A watcher with more than this many bytes waiting to go out is "behind": it gets
    # nothing more until it drains, then a fresh snapshot.
    ws_backlog_bytes: int = 256 * 1024
    # A watcher behind for longer than this is closed with 1013.
    ws_behind_seconds: float = 10.0
    # How often the channel hub reconsiders gc.freeze() (DESIGN §5: full collections over
    # thousands of connections set the p99).
    ws_gc_freeze_seconds: float = 30.0
    log_format: str = _DEFAULT_LOG_FORMAT
    log_level: str = "info"
    token_ttl_seconds: int = 86400
    db_pool_min: int = 2
    db_pool_max: int = 20
    redis_pool_max: int = 512
    # API requests one process works on at once; more wait their turn (see Admission).
    max_inflight_requests: int = 64
    leader_lease_seconds: float = 5.0
    # Waiting rooms: a session's length when the admin gives none; the hold p99 the adaptive
    # admission aims at, and the rate it starts from (admissions per second).
    waiting_room_session_seconds: int = 600
    waiting_room_target_p99_ms: int = 100
    waiting_room_start_rate: float = 20.0
    # Set by ``evently serve`` for several workers: where prometheus-client keeps per-process files.
    metrics_dir: str | None = None
    # Lets the race test's control run switch off the PostgreSQL guard; never set in production.

    @property
    def abandoned_after_seconds(self) -> float:
        """How long after a request began its work is surely over (three request timeouts):
        the leader then finishes what a crashed or cut-off request left behind (a hold left
        confirming, a cancellation's seats still shown sold) without racing the request."""
        return 3 * self.request_timeout_seconds

    @property
    def embedded(self) -> bool:
        """True when the hub should start its own PostgreSQL and Redis."""
        return self.database_url is None and self.redis_url is None

    @classmethod
    def from_environ(cls) -> Settings:
        """Settings from this process's environment (the only place that reads it)."""
        import os

        return cls.from_env(os.environ)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Build settings from a mapping of environment variables.

        Raises:
            SettingsError: a value does not parse or is out of range; the message names it.
        """
        r = _Reader(env)
        settings = cls(
            database_url=r.get("DATABASE_URL", str, None),
            redis_url=r.get("REDIS_URL", str, None),
            secret_key=r.get("SECRET_KEY", str, None),
            admin_email=r.get("ADMIN_EMAIL", str, None),
            admin_password=r.get("ADMIN_PASSWORD", str, None),
            home=r.get("HOME", str, ".evently"),
            redis_prefix=r.get("REDIS_PREFIX", str, "evently:"),
            hold_ttl_seconds=r.get("HOLD_TTL_SECONDS", _positive_int, 600),
            hold_max_lifetime_seconds=r.get("HOLD_MAX_LIFETIME_SECONDS", _positive_int, 1200),
            offer_ttl_seconds=r.get("OFFER_TTL_SECONDS", _positive_int, 300),
            pricing_interval_seconds=r.get("PRICING_INTERVAL_SECONDS", _positive_float, 10.0),
            rollup_interval_seconds=r.get("ROLLUP_INTERVAL_SECONDS", _positive_float, 30.0),
            pricing_offload=r.get("PRICING_OFFLOAD", _on_off, True),
            offload_nice=r.get("OFFLOAD_NICE", _nice, 10),
            reco_rebuild_seconds=r.get("RECO_REBUILD_SECONDS", _positive_float, 600.0),
            reco_rebuild_bookings=r.get("RECO_REBUILD_BOOKINGS", _positive_int, 500),
            reco_cache_seconds=r.get("RECO_CACHE_SECONDS", _positive_int, 300),
            reco_offload=r.get("RECO_OFFLOAD", _on_off, True),
            payment_latency_ms=r.get("PAYMENT_LATENCY_MS", _non_negative_int, 0),
            payment_failure_rate=r.get("PAYMENT_FAILURE_RATE", _fraction, 0.0),
            payment_timeout_seconds=r.get("PAYMENT_TIMEOUT_SECONDS", _positive_float, 5.0),
            request_timeout_seconds=r.get("REQUEST_TIMEOUT_SECONDS", _positive_float, 10.0),
            breaker_failure_threshold=r.get("BREAKER_FAILURE_THRESHOLD", _positive_int, 5),
            breaker_reset_seconds=r.get("BREAKER_RESET_SECONDS", _positive_float, 30.0),
            smtp_url=r.get("SMTP_URL", _smtp_url, None),
            smtp_from=r.get("SMTP_FROM", str, "Evently <no-reply@evently.local>"),
            smtp_timeout_seconds=r.get("SMTP_TIMEOUT_SECONDS", _positive_float, 10.0),
            allowed_origins=r.get("ALLOWED_ORIGINS", _csv, ()),
            rate_limits=r.get("RATE_LIMITS", _on_off, True),
            max_group_size=r.get("MAX_GROUP_SIZE", _positive_int, 500),
            max_discount_percent=r.get("MAX_DISCOUNT_PERCENT", _percent, 25),
            analytics_cache_seconds=r.get("ANALYTICS_CACHE_SECONDS", _positive_int, 900),
            alert_hold_p99_ms=r.get("ALERT_HOLD_P99_MS", _positive_float, 500.0),
            alert_error_rate=r.get("ALERT_ERROR_RATE", _fraction, 0.05),
            alert_breaker_open_seconds=r.get(
                "ALERT_BREAKER_OPEN_SECONDS", _non_negative_float, 0.0
            ),
            alert_outbox_backlog=r.get("ALERT_OUTBOX_BACKLOG", _non_negative_int, 1000),
            alert_probe_ms=r.get("ALERT_PROBE_MS", _positive_float, 500.0),
            ws_max_per_ip=r.get("WS_MAX_PER_IP", _positive_int, 200),
            ws_max_per_user=r.get("WS_MAX_PER_USER", _positive_int, 5),
            ws_tick_ms=r.get("WS_TICK_MS", _positive_int, 100),
            ws_backlog_bytes=r.get("WS_BACKLOG_BYTES", _positive_int, 256 * 1024),
            ws_behind_seconds=r.get("WS_BEHIND_SECONDS", _positive_float, 10.0),
            ws_gc_freeze_seconds=r.get("WS_GC_FREEZE_SECONDS", _positive_float, 30.0),
            log_format=r.get("LOG_FORMAT", _choice("json", "console"), _DEFAULT_LOG_FORMAT),
            log_level=r.get("LOG_LEVEL", _choice("debug", "info", "warning", "error"), "info"),
            token_ttl_seconds=r.get("TOKEN_TTL_SECONDS", _positive_int, 86400),
            db_pool_min=r.get("DB_POOL_MIN", _positive_int, 2),
            db_pool_max=r.get("DB_POOL_MAX", _positive_int, 20),
            redis_pool_max=r.get("REDIS_POOL_MAX", _positive_int, 512),
            max_inflight_requests=r.get("MAX_INFLIGHT_REQUESTS", _positive_int, 64),
            leader_lease_seconds=r.get("LEADER_LEASE_SECONDS", _positive_float, 5.0),
            waiting_room_session_seconds=r.get("WAITING_ROOM_SESSION_SECONDS", _positive_int, 600),
            waiting_room_target_p99_ms=r.get("WAITING_ROOM_TARGET_P99_MS", _positive_int, 100),
            waiting_room_start_rate=r.get("WAITING_ROOM_START_RATE", _positive_float, 20.0),
            metrics_dir=r.get("METRICS_DIR", str, None),
        )
        if (settings.database_url is None) != (settings.redis_url is None):
            raise SettingsError(
                "EVENTLY_DATABASE_URL and EVENTLY_REDIS_URL go together: give both or neither"
            )
        if settings.db_pool_min > settings.db_pool_max:
            raise SettingsError("EVENTLY_DB_POOL_MIN must not exceed EVENTLY_DB_POOL_MAX")
        return settings

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def get(self, name: str, parse: Callable[[str], T], default: T) -> T:
        raw = self._env.get(f"EVENTLY_{name}")
        if raw is None or raw.strip() == "":
            return default
        try:
            return parse(raw.strip())
        except (ValueError, TypeError) as exc:
            raise SettingsError(f"EVENTLY_{name}={raw!r}: {exc}") from None


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("must be zero or more")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError("must be a positive number")
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if not value >= 0:
        raise ValueError("must be zero or more")
    return value


def _nice(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 19:
        raise ValueError("must be a nice value from 0 to 19")
    return value


def _fraction(raw: str) -> float:
    value = float(raw)
    if not 0.0 <= value <= 1.0:
        raise ValueError("must be between 0 and 1")
    return value


def _percent(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 100:
        raise ValueError("must be between 0 and 100")
    return value


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(part.strip().rstrip("/") for part in raw.split(",") if part.strip())


def _smtp_url(raw: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(raw)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("must look like smtp://user:pass@host:port")
    parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    return raw


def _on_off(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("on", "true", "1", "yes"):
        return True
    if lowered in ("off", "false", "0", "no"):
        return False
    raise ValueError("must be on or off")


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw.lower() not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return raw.lower()

    return parse
