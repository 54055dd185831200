"""The health service: alerts logged once per transition and kept across hubs, the
monitoring series growing one point per sample and surviving a new hub, and a process's
published windows (requests, 5xx, latency buckets) following its own metrics."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from hub import metrics
from hub.context import Hub, open_hub
from hub.services import health, vitals
from hub.settings import Settings
from tests.waiting import eventually


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


@pytest.fixture(autouse=True)
def fresh_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """A logger not used yet for the health service: the hub's loggers cache their
    processors on first use (``cache_logger_on_first_use``), and one that an earlier test
    used (any alert fired while another test ran) no longer reaches ``capture_logs``."""
    monkeypatch.setattr(health, "log", structlog.get_logger(health.__name__))


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


async def test_a_database_that_does_not_answer_makes_the_report_down_not_an_error(
    private: Hub,
) -> None:
    private.db.pool.terminate()
    report = await health.measure(private)
    assert report["status"] == "down"
    assert report["database"]["ok"] is False and report["database"]["error"]
    assert report["redis"]["ok"] is True  # the other checks still answer
    assert report["bookings"]["ok"] is False
    assert report["queues"]["outbox_pending"] is None


async def test_the_live_summary_follows_requests_of_every_process(hub: Hub, client: Any) -> None:
    for _ in range(30):
        assert (await client.get("/api/v1/events")).status_code == 200

    async def moved() -> bool:
        summary = await health.live_summary(hub)
        return summary["processes"] >= 1 and summary["requests_per_s"] > 0

    assert await eventually(moved, within=3 * vitals.PUBLISH_SECONDS)
    summary = await health.live_summary(hub)
    assert summary["p50_ms"] is not None and summary["p50_ms"] <= summary["p99_ms"]
    assert summary["rss_bytes"] > 0
    assert isinstance(summary["alerts"], list)


async def test_an_open_payment_breaker_degrades_the_report_and_fires_until_it_closes(
    settings: Settings,
) -> None:
    own = settings.replace(
        redis_prefix=f"{settings.redis_prefix}breaker{uuid.uuid4().hex[:6]}:",
        breaker_failure_threshold=1,
        breaker_reset_seconds=0.3,
    )

    async def failing() -> None:
        raise ConnectionError("provider unreachable")

    async def fine() -> None:
        return None

    async with open_hub(own) as hub:
        with pytest.raises(ConnectionError):
            await hub.breakers.payments.call(failing)
        with capture_logs() as logs:
            await health.sample(hub)
        report = await health.measure(hub)
        payments = report["external"]["payments"]
        assert payments["state"] == "open" and "provider unreachable" in payments["last_error"]
        assert report["status"] == "degraded"
        assert [e["alert"] for e in _events(logs, "alert_firing")] == ["breaker_open"]

        assert await eventually(lambda: hub.breakers.payments.state == "half_open", within=3)
        await hub.breakers.payments.call(fine)  # the trial succeeds: closed
        with capture_logs() as logs:
            await health.sample(hub)
        assert [e["alert"] for e in _events(logs, "alert_resolved")] == ["breaker_open"]
        assert (await health.measure(hub))["external"]["payments"]["state"] == "closed"
        keys = [key async for key in hub.store.client.scan_iter(match=f"{own.redis_prefix}*")]
        if keys:
            await hub.store.client.delete(*keys)


async def test_the_hold_scan_counts_confirmations_in_every_slice(private: Hub) -> None:
    """The stuck-confirmation scan reads holds a slice at a time: one confirming in the
    first slice, the last and between is counted once each."""
    event_id = uuid.uuid4()
    keys, client = private.store.keys, private.store.client
    now_ms = await private.inventory.server_time_ms()
    n = 2 * health.EXAMINED_PER_TRIP + 50
    holds = [f"h{i:05d}" for i in range(n)]  # the expiry set's order, by equal scores
    stuck_at = {0, health.EXAMINED_PER_TRIP + 7, n - 1}
    async with client.pipeline(transaction=False) as pipe:
        pipe.zadd(keys.event(event_id, "expiry"), {hold: now_ms + 60_000 for hold in holds})
        for i, hold in enumerate(holds):
            fields = {"status": "held"}
            if i in stuck_at:
                fields = {"status": "confirming", "confirming_since": "1"}
            elif i == n - 2:
                fields = {"status": "confirming", "confirming_since": str(now_ms)}
            pipe.hset(keys.event(event_id, f"hold:{hold}"), mapping=fields)
        await pipe.execute()
    found = await health._holds(private, [event_id])
    assert found["holds_active"] == found["holds_examined"] == n
    assert found["confirming"] == 4 and found["confirmations_stuck"] == 3
