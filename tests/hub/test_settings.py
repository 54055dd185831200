"""Settings: every ``EVENTLY_*`` variable parsed, its default when unset, and a bad value
refused at once with a message naming the variable."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from hub.settings import Settings, SettingsError

# variable (without EVENTLY_), a raw value, the field it sets, the parsed value
PARSED: list[tuple[str, str, str, Any]] = [
    ("DATABASE_URL", "postgresql://u:p@db:5432/ev", "database_url", "postgresql://u:p@db:5432/ev"),
    ("REDIS_URL", "redis://cache:6379/3", "redis_url", "redis://cache:6379/3"),
    ("SECRET_KEY", "k" * 40, "secret_key", "k" * 40),
    ("ADMIN_EMAIL", "ops@example.com", "admin_email", "ops@example.com"),
    ("ADMIN_PASSWORD", "correct horse", "admin_password", "correct horse"),
    ("HOME", "/var/lib/evently", "home", "/var/lib/evently"),
    ("REDIS_PREFIX", "staging:", "redis_prefix", "staging:"),
    ("HOLD_TTL_SECONDS", "90", "hold_ttl_seconds", 90),
    ("HOLD_MAX_LIFETIME_SECONDS", "180", "hold_max_lifetime_seconds", 180),
    ("OFFER_TTL_SECONDS", "120", "offer_ttl_seconds", 120),
    ("PRICING_INTERVAL_SECONDS", "2.5", "pricing_interval_seconds", 2.5),
    ("ROLLUP_INTERVAL_SECONDS", "0.5", "rollup_interval_seconds", 0.5),
    ("PRICING_OFFLOAD", "off", "pricing_offload", False),
    ("OFFLOAD_NICE", "19", "offload_nice", 19),
    ("RECO_REBUILD_SECONDS", "30.5", "reco_rebuild_seconds", 30.5),
    ("RECO_REBUILD_BOOKINGS", "50", "reco_rebuild_bookings", 50),
    ("RECO_CACHE_SECONDS", "60", "reco_cache_seconds", 60),
    ("RECO_OFFLOAD", "off", "reco_offload", False),
    ("PAYMENT_LATENCY_MS", "0", "payment_latency_ms", 0),
    ("PAYMENT_FAILURE_RATE", "0.25", "payment_failure_rate", 0.25),
    ("PAYMENT_TIMEOUT_SECONDS", "0.5", "payment_timeout_seconds", 0.5),
    ("REQUEST_TIMEOUT_SECONDS", "2.5", "request_timeout_seconds", 2.5),
    ("BREAKER_FAILURE_THRESHOLD", "3", "breaker_failure_threshold", 3),
    ("BREAKER_RESET_SECONDS", "1.5", "breaker_reset_seconds", 1.5),
    ("SMTP_URL", "smtp://u:p@mail:2525", "smtp_url", "smtp://u:p@mail:2525"),
    ("SMTP_FROM", "Hub <hub@example.com>", "smtp_from", "Hub <hub@example.com>"),
    ("SMTP_TIMEOUT_SECONDS", "2", "smtp_timeout_seconds", 2.0),
    (
        "ALLOWED_ORIGINS",
        "https://a.example/, https://b.example ,,",
        "allowed_origins",
        ("https://a.example", "https://b.example"),
    ),
    ("RATE_LIMITS", "off", "rate_limits", False),
    ("MAX_GROUP_SIZE", "50", "max_group_size", 50),
    ("MAX_DISCOUNT_PERCENT", "0", "max_discount_percent", 0),
    ("ANALYTICS_CACHE_SECONDS", "60", "analytics_cache_seconds", 60),
    ("ALERT_HOLD_P99_MS", "250", "alert_hold_p99_ms", 250.0),
    ("ALERT_ERROR_RATE", "0.1", "alert_error_rate", 0.1),
    ("ALERT_BREAKER_OPEN_SECONDS", "30", "alert_breaker_open_seconds", 30.0),
    ("ALERT_OUTBOX_BACKLOG", "0", "alert_outbox_backlog", 0),
    ("ALERT_PROBE_MS", "100", "alert_probe_ms", 100.0),
    ("WS_MAX_PER_IP", "1000", "ws_max_per_ip", 1000),
    ("WS_MAX_PER_USER", "2", "ws_max_per_user", 2),
    ("WS_TICK_MS", "50", "ws_tick_ms", 50),
    ("WS_BACKLOG_BYTES", "65536", "ws_backlog_bytes", 65536),
    ("WS_BEHIND_SECONDS", "2", "ws_behind_seconds", 2.0),
    ("WS_GC_FREEZE_SECONDS", "0.5", "ws_gc_freeze_seconds", 0.5),
    ("LOG_FORMAT", "JSON", "log_format", "json"),
    ("LOG_LEVEL", "Warning", "log_level", "warning"),
    ("TOKEN_TTL_SECONDS", "3600", "token_ttl_seconds", 3600),
    ("DB_POOL_MIN", "1", "db_pool_min", 1),
    ("DB_POOL_MAX", "40", "db_pool_max", 40),
    ("REDIS_POOL_MAX", "64", "redis_pool_max", 64),
    ("MAX_INFLIGHT_REQUESTS", "8", "max_inflight_requests", 8),
    ("LEADER_LEASE_SECONDS", "1.5", "leader_lease_seconds", 1.5),
    ("WAITING_ROOM_SESSION_SECONDS", "300", "waiting_room_session_seconds", 300),
    ("WAITING_ROOM_TARGET_P99_MS", "50", "waiting_room_target_p99_ms", 50),
    ("WAITING_ROOM_START_RATE", "5.5", "waiting_room_start_rate", 5.5),
    ("METRICS_DIR", "/tmp/metrics", "metrics_dir", "/tmp/metrics"),
]

# The defaults DESIGN §7 states (and the others this hub has).
DEFAULTS: dict[str, Any] = {
    "database_url": None,
    "redis_url": None,
    "secret_key": None,
    "admin_email": None,
    "admin_password": None,
    "home": ".evently",
    "redis_prefix": "evently:",
    "hold_ttl_seconds": 600,
    "hold_max_lifetime_seconds": 1200,
    "offer_ttl_seconds": 300,
    "pricing_interval_seconds": 10.0,
    "pricing_offload": True,
    "offload_nice": 10,
    "rollup_interval_seconds": 30.0,
    "reco_rebuild_seconds": 600.0,
    "reco_rebuild_bookings": 500,
    "reco_cache_seconds": 300,
    "reco_offload": True,
    "payment_latency_ms": 0,
    "payment_failure_rate": 0.0,
    "payment_timeout_seconds": 5.0,
    "request_timeout_seconds": 10.0,
    "breaker_failure_threshold": 5,
    "breaker_reset_seconds": 30.0,
    "smtp_url": None,
    "smtp_from": "Evently <no-reply@evently.local>",
    "smtp_timeout_seconds": 10.0,
    "allowed_origins": (),
    "rate_limits": True,
    "max_group_size": 500,
    "max_discount_percent": 25,
    "analytics_cache_seconds": 900,
    "alert_hold_p99_ms": 500.0,
    "alert_error_rate": 0.05,
    "alert_breaker_open_seconds": 0.0,
    "alert_outbox_backlog": 1000,
    "alert_probe_ms": 500.0,
    "ws_max_per_ip": 200,
    "ws_max_per_user": 5,
    "ws_tick_ms": 100,
    "ws_backlog_bytes": 256 * 1024,
    "ws_behind_seconds": 10.0,
    "ws_gc_freeze_seconds": 30.0,
    "token_ttl_seconds": 86400,
    "db_pool_min": 2,
    "db_pool_max": 20,
    "redis_pool_max": 512,
    "max_inflight_requests": 64,
    "leader_lease_seconds": 5.0,
    "waiting_room_session_seconds": 600,
    "waiting_room_target_p99_ms": 100,
    "waiting_room_start_rate": 20.0,
    "metrics_dir": None,
    "log_level": "info",
}

BAD: list[tuple[str, str]] = [
    ("HOLD_TTL_SECONDS", "0"),
    ("HOLD_TTL_SECONDS", "ten"),
    ("HOLD_TTL_SECONDS", "1.5"),
    ("HOLD_MAX_LIFETIME_SECONDS", "-1"),
    ("OFFER_TTL_SECONDS", "0"),
    ("PRICING_INTERVAL_SECONDS", "0"),
    ("ROLLUP_INTERVAL_SECONDS", "0"),
    ("ROLLUP_INTERVAL_SECONDS", "-1"),
    ("OFFLOAD_NICE", "20"),
    ("OFFLOAD_NICE", "-1"),
    ("RECO_REBUILD_SECONDS", "0"),
    ("RECO_REBUILD_BOOKINGS", "0"),
    ("RECO_CACHE_SECONDS", "-1"),
    ("RECO_OFFLOAD", "maybe"),
    ("PRICING_INTERVAL_SECONDS", "nan"),
    ("PAYMENT_LATENCY_MS", "-5"),
    ("PAYMENT_FAILURE_RATE", "1.5"),
    ("PAYMENT_FAILURE_RATE", "nan"),
    ("PAYMENT_TIMEOUT_SECONDS", "0"),
    ("REQUEST_TIMEOUT_SECONDS", "0"),
    ("REQUEST_TIMEOUT_SECONDS", "soon"),
    ("BREAKER_FAILURE_THRESHOLD", "0"),
    ("BREAKER_RESET_SECONDS", "-1"),
    ("SMTP_URL", "http://mail:25"),
    ("SMTP_URL", "smtp://mail:port"),
    ("SMTP_TIMEOUT_SECONDS", "0"),
    ("RATE_LIMITS", "maybe"),
    ("MAX_GROUP_SIZE", "0"),
    ("MAX_DISCOUNT_PERCENT", "101"),
    ("MAX_DISCOUNT_PERCENT", "-1"),
    ("ANALYTICS_CACHE_SECONDS", "0"),
    ("ALERT_HOLD_P99_MS", "0"),
    ("ALERT_ERROR_RATE", "1.5"),
    ("ALERT_BREAKER_OPEN_SECONDS", "-1"),
    ("ALERT_OUTBOX_BACKLOG", "-5"),
    ("ALERT_PROBE_MS", "fast"),
    ("WS_MAX_PER_IP", "0"),
    ("WS_MAX_PER_USER", "many"),
    ("WS_TICK_MS", "-100"),
    ("WS_BACKLOG_BYTES", "0"),
    ("WS_BEHIND_SECONDS", "-1"),
    ("WS_GC_FREEZE_SECONDS", "0"),
    ("LOG_FORMAT", "xml"),
    ("LOG_LEVEL", "verbose"),
    ("TOKEN_TTL_SECONDS", "0"),
    ("DB_POOL_MIN", "0"),
    ("DB_POOL_MAX", "x"),
    ("REDIS_POOL_MAX", "0"),
    ("MAX_INFLIGHT_REQUESTS", "0"),
    ("LEADER_LEASE_SECONDS", "0"),
    ("WAITING_ROOM_SESSION_SECONDS", "0"),
    ("WAITING_ROOM_TARGET_P99_MS", "-5"),
    ("WAITING_ROOM_START_RATE", "0"),
]

BOTH_URLS = {"EVENTLY_DATABASE_URL": "postgresql://db/ev", "EVENTLY_REDIS_URL": "redis://c/0"}


def test_every_setting_is_covered_by_these_tables() -> None:
    fields = {f.name for f in dataclasses.fields(Settings)}
    assert fields == {field for _, _, field, _ in PARSED} | {"log_format"}
    assert set(DEFAULTS) == fields - {"log_format"}


@pytest.mark.parametrize(("name", "raw", "field", "expected"), PARSED, ids=[p[0] for p in PARSED])
def test_each_variable_is_parsed(name: str, raw: str, field: str, expected: Any) -> None:
    env = {**BOTH_URLS, f"EVENTLY_{name}": raw}
    assert getattr(Settings.from_env(env), field) == expected


def test_defaults_when_nothing_is_set() -> None:
    settings = Settings.from_env({})
    assert {name: getattr(settings, name) for name in DEFAULTS} == DEFAULTS
    assert settings.log_format in ("json", "console")
    assert settings.embedded
    assert settings == Settings()


def test_blank_values_mean_the_default_and_values_are_trimmed() -> None:
    settings = Settings.from_env({"EVENTLY_HOLD_TTL_SECONDS": "  ", "EVENTLY_WS_TICK_MS": " 40 "})
    assert (settings.hold_ttl_seconds, settings.ws_tick_ms) == (600, 40)


@pytest.mark.parametrize("raw", ["on", "true", "1", "YES"])
def test_switches_accept_the_usual_spellings_of_on(raw: str) -> None:
    assert Settings.from_env({"EVENTLY_RATE_LIMITS": raw}).rate_limits is True


@pytest.mark.parametrize(("name", "raw"), BAD, ids=[f"{n}={r}" for n, r in BAD])
def test_a_bad_value_fails_fast_naming_the_variable(name: str, raw: str) -> None:
    with pytest.raises(SettingsError, match=f"^EVENTLY_{name}="):
        Settings.from_env({f"EVENTLY_{name}": raw})


@pytest.mark.parametrize("given", ["EVENTLY_DATABASE_URL", "EVENTLY_REDIS_URL"])
def test_server_urls_go_together(given: str) -> None:
    with pytest.raises(SettingsError, match="EVENTLY_DATABASE_URL and EVENTLY_REDIS_URL"):
        Settings.from_env({given: BOTH_URLS[given]})
    assert not Settings.from_env(BOTH_URLS).embedded


def test_pool_minimum_must_not_exceed_its_maximum() -> None:
    env = {"EVENTLY_DB_POOL_MIN": "30", "EVENTLY_DB_POOL_MAX": "20"}
    with pytest.raises(SettingsError, match="EVENTLY_DB_POOL_MIN"):
        Settings.from_env(env)


def test_from_environ_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTLY_HOLD_TTL_SECONDS", "45")
    assert Settings.from_environ().hold_ttl_seconds == 45
    monkeypatch.setenv("EVENTLY_HOLD_TTL_SECONDS", "forever")
    with pytest.raises(SettingsError, match="EVENTLY_HOLD_TTL_SECONDS='forever'"):
        Settings.from_environ()


def test_settings_are_frozen_and_replace_makes_a_copy() -> None:
    settings = Settings()
    changed = settings.replace(hold_ttl_seconds=5)
    assert (settings.hold_ttl_seconds, changed.hold_ttl_seconds) == (600, 5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.hold_ttl_seconds = 5  # type: ignore[misc]
