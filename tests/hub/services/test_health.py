"""The health service: alerts logged once per transition and kept across hubs, the
monitoring series growing one point per sample and surviving a new hub, and a process's
published windows (requests, 5xx, latency buckets) following its own metrics."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from hub import metrics
from hub.context import Hub, open_hub
from hub.services import health, vitals
from hub.settings import Settings


@pytest.fixture
async def private(settings: Settings) -> AsyncIterator[Hub]:
    """A hub on the run's servers with a key prefix of its own: no other sampler, no
    published process, no alert state but its own."""
    own = settings.replace(redis_prefix=f"{settings.redis_prefix}health{uuid.uuid4().hex[:6]}:")
    async with open_hub(own) as hub:
        yield hub
        keys = [key async for key in hub.store.client.scan_iter(match=f"{own.redis_prefix}*")]
        if keys:
            await hub.store.client.delete(*keys)


def _events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry.get("event") == name]


async def test_an_alert_fires_once_and_resolves_once(private: Hub) -> None:
    base = private.settings
    # A probe threshold no round trip can beat: both "down" rules fire.
    private.settings = base.replace(alert_probe_ms=0.0001)
    with capture_logs() as logs:
        for _ in range(3):
            await health.sample(private)
    firing = _events(logs, "alert_firing")
    assert sorted(entry["alert"] for entry in firing) == ["postgres_down", "redis_down"]
    assert all(entry["threshold"] == 0.0001 and entry["value"] > 0.0001 for entry in firing)
    report = await health.measure(private)
    states = {a["name"]: a for a in report["alerts"]}
    assert states["postgres_down"]["state"] == "firing"
    assert states["error_rate"]["state"] == "ok"
    assert report["status"] == "degraded"  # slower than the probe threshold, still answering

    # Back to a sane threshold: each resolves once, however many samples follow.
    private.settings = base.replace(alert_probe_ms=5000.0)
    with capture_logs() as logs:
        for _ in range(3):
            await health.sample(private)
    resolved = _events(logs, "alert_resolved")
    assert sorted(entry["alert"] for entry in resolved) == ["postgres_down", "redis_down"]
    assert _events(logs, "alert_firing") == []
    assert metrics.total(metrics.ALERT_FIRING, name="postgres_down") == 0


async def test_the_alert_states_outlive_the_hub_that_set_them(private: Hub) -> None:
    private.settings = private.settings.replace(alert_probe_ms=0.0001)
    with capture_logs() as logs:
        await health.sample(private)
    assert len(_events(logs, "alert_firing")) == 2
    # A second hub on the same keys (a new leader) knows they fire: no second line.
    async with open_hub(private.settings) as successor:
        with capture_logs() as logs:
            await health.sample(successor)
        states = await health.load_alerts(successor)
    assert _events(logs, "alert_firing") == []
    assert states["postgres_down"].state.value == "firing"


async def test_the_series_grows_one_point_per_sample_and_survives_a_new_hub(
    private: Hub,
) -> None:
    assert (await health.monitoring(private))["points"] == 0
    first = await health.sample(private)
    second = await health.sample(private)
    async with open_hub(private.settings) as successor:
        third = await health.sample(successor)
        found = await health.monitoring(successor)
    assert found["points"] == 3
    assert found["series"]["at"] == [first["at"], second["at"], third["at"]]
    assert all(v > 0 for v in found["series"]["db_probe_ms"])
    assert all(status in ("ok", "degraded") for status in found["series"]["status"])


async def test_the_series_keeps_the_last_hour_only(private: Hub) -> None:
    keys = private.store.keys
    filler = [b'{"at": "old"}'] * health.SERIES_POINTS
    await private.store.client.rpush(keys.global_("health:series"), *filler)
    point = await health.sample(private)
    found = await health.monitoring(private)
    assert found["points"] == health.SERIES_POINTS
    assert found["series"]["at"][-1] == point["at"] and found["series"]["at"][0] == "old"


def test_a_process_window_follows_its_own_metrics() -> None:
    route = f"/test/{uuid.uuid4().hex[:8]}"
    before = vitals.read_metrics(0.0)
    metrics.HTTP_REQUESTS.labels("GET", route, "200").inc(7)
    metrics.HTTP_REQUESTS.labels("GET", route, "503").inc(3)
    for seconds in (0.002, 0.002, 0.004, 0.2):
        metrics.HTTP_LATENCY.labels("GET", route).observe(seconds)
    after = vitals.read_metrics(0.0)
    window = vitals._window(after, before)
    row = window["routes"][f"GET {route}"]
    assert row[0] == 10 and row[1] == 3  # requests, 5xx
    assert row[-1] == 4  # latency samples, the +Inf bucket
    assert window["requests"] >= 10 and window["errors"] >= 3
