"""The health report, its time series and the alerts: every figure measured, none constant.

Three parts, all in Redis so that every worker process (and host) is seen and a restart
loses nothing:

1. Each process's **vitals** (``hub.services.vitals``): every process publishes windows of
   its own metrics (the samples ``/metrics`` exports) every ``PUBLISH_SECONDS``.

2. The **report** (``comprehensive``): PostgreSQL (a ``SELECT 1`` probe and one statement
   over ``pg_stat_activity`` and the backlogs, ``hub.db.health``), Redis (PING and
   ``INFO``), the published vitals of every live process summed (requests, p50/p95/p99 per
   route from summed histogram buckets, 5xx rate per route, cache hit ratio, failed
   bookings), the live holds in Redis (``expiry`` sets of the live events; confirming holds
   older than the reconciler's ``confirming_limit_ms`` among the first
   ``MAX_HOLDS_EXAMINED``), the breakers (``Hub.breakers``) and the alerts. The checks run
   concurrently, each under a timeout of twice ``alert_probe_ms`` (at least a second); a
   failed check says so in its section and never fails the report. Kept in Redis
   ``CACHE_SECONDS``; ``fresh`` measures now and replaces it.

3. The **sampler** (``health_loop``, the leader only, every ``SAMPLE_SECONDS``): measures a
   report, appends its headline figures to the ring ``health:series`` (``SERIES_POINTS``:
   one hour at 10 s), evaluates the alert rules (``engines.monitoring.advance``; thresholds
   are the ``EVENTLY_ALERT_*`` settings) against the states kept in ``health:alerts``, and
   logs ``alert_firing`` / ``alert_resolved`` once per transition. A new leader carries on
   from the same ring and states. The leader lease lives in Redis, so with Redis down there
   is no sampler: the Redis rule can only fire on a slow Redis; a report still says
   ``down``.

``live_summary`` is the cheap per-second read for the admin stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import msgspec
import structlog

from engines.monitoring import Alert, AlertState, advance, quantile
from hub import jsonenc, metrics, store
from hub.cache import kept_in_redis
from hub.context import Hub
from hub.db import health as health_db
from hub.services.expiry import confirming_limit_ms
from hub.services.vitals import BOUNDS, as_text, published

log = structlog.get_logger(__name__)

SAMPLE_SECONDS = 10.0
SERIES_POINTS = 360
CACHE_SECONDS = 300
#: Statements running (or transactions idle) longer than this count as slow.
SLOW_QUERY_SECONDS = 1.0
MAX_HOLDS_EXAMINED = 2000
EXAMINED_PER_TRIP = 200
#: A check never gives up sooner than this (``probe_timeout_ms``).
MIN_TIMEOUT_MS = 1000.0

_decode = msgspec.json.Decoder()


# --- 2. the report ---------------------------------------------------------------------------


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def _percentiles(buckets: Sequence[float]) -> dict[str, float | None]:
    return {
        "p50_ms": _ms(quantile(BOUNDS, buckets, 0.5)),
        "p95_ms": _ms(quantile(BOUNDS, buckets, 0.95)),
        "p99_ms": _ms(quantile(BOUNDS, buckets, 0.99)),
    }


def _rate(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole > 0 else None


def _summed(heads: Sequence[Mapping[str, Any]], name: str) -> dict[str, Any]:
    """One window (``recent`` or ``window``) summed over processes."""
    buckets = [0.0] * (len(BOUNDS) + 1)
    holds = [0.0] * (len(BOUNDS) + 1)
    requests = errors = 0.0
    bookings: dict[str, float] = {}
    caches: dict[str, list[float]] = {}
    seconds = 0.0
    for head in heads:
        part = head[name]
        requests += part["requests"]
        errors += part["errors"]
        seconds = max(seconds, part["seconds"])
        for i, count in enumerate(part["buckets"]):
            buckets[i] += count
        for i, count in enumerate(part["holds"]):
            holds[i] += count
        for outcome, count in part["bookings"].items():
            bookings[outcome] = bookings.get(outcome, 0.0) + count
        for cache, (hits, misses) in part["caches"].items():
            row = caches.setdefault(cache, [0.0, 0.0])
            row[0] += hits
            row[1] += misses
    return {
        "seconds": seconds,
        "requests": requests,
        "errors": errors,
        "buckets": buckets,
        "holds": holds,
        "bookings": bookings,
        "caches": caches,
    }


def _api(heads: Sequence[Mapping[str, Any]], routes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    window = _summed(heads, "window")
    recent = _summed(heads, "recent")
    per_route: dict[str, list[float]] = {}
    for part in routes:
        for key, row in part.items():
            have = per_route.get(key)
            per_route[key] = (
                list(row) if have is None else [a + b for a, b in zip(have, row, strict=True)]
            )
    by_route = []
    for key, row in sorted(per_route.items(), key=lambda item: -item[1][0]):
        method, _, path = key.partition(" ")
        by_route.append(
            {
                "method": method,
                "route": path,
                "requests": int(row[0]),
                "errors": int(row[1]),
                "error_rate": _rate(row[1], row[0]),
                **_percentiles(row[2:]),
            }
        )
    seconds = window["seconds"] or None
    return {
        "window_seconds": window["seconds"],
        "requests_total": int(window["requests"]),
        "requests_per_s": round(window["requests"] / seconds, 2) if seconds else 0.0,
        "errors_total": int(window["errors"]),
        "error_rate": _rate(window["errors"], window["requests"]),
        **_percentiles(window["buckets"]),
        "recent": {
            "seconds": recent["seconds"],
            "requests": int(recent["requests"]),
            "requests_per_s": _per_s(recent["requests"], recent["seconds"]),
            "error_rate": _rate(recent["errors"], recent["requests"]),
            **_percentiles(recent["buckets"]),
            "hold_p99_ms": _ms(quantile(BOUNDS, recent["holds"], 0.99)),
        },
        "holds": {"placed": int(window["holds"][-1]), **_percentiles(window["holds"])},
        "routes": by_route,
    }


def _per_s(count: float, seconds: float) -> float:
    return round(count / seconds, 2) if seconds > 0 else 0.0


async def _timed(seconds: float, check: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """Run one check for at most ``seconds``; a failure is the section's answer, not the
    report's."""
    try:
        async with asyncio.timeout(seconds):
            return await check()
    except TimeoutError:
        return {"ok": False, "error": f"no answer within {round(seconds * 1000)} ms"}
    except Exception as exc:  # any failure of a dependency is a measured fact here
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:200]}


async def _database(hub: Hub) -> dict[str, Any]:
    async with hub.db.connection() as con:
        started = time.perf_counter()
        await con.fetchval("SELECT 1")
        probe = (time.perf_counter() - started) * 1000
        found = await health_db.report(con, SLOW_QUERY_SECONDS)
    return {
        "ok": True,
        "probe_ms": round(probe, 2),
        "connections": found.connections,
        "active_queries": found.active,
        "slow_queries": found.slow,
        "waiting_queries": found.waiting,
        "idle_in_transaction": found.idle_in_transaction,
        "longest_query_seconds": round(found.longest_seconds, 3),
        "_backlog": found,
    }


async def _redis(hub: Hub) -> dict[str, Any]:
    client = hub.store.client
    probe = await hub.store.ping()
    info = await client.info()
    return {
        "ok": True,
        "probe_ms": round(probe, 2),
        "ops_per_s": int(info.get("instantaneous_ops_per_sec", 0)),
        "used_memory_bytes": int(info.get("used_memory", 0)),
        "maxmemory_bytes": int(info.get("maxmemory", 0)),
        "connected_clients": int(info.get("connected_clients", 0)),
        "blocked_clients": int(info.get("blocked_clients", 0)),
        "evicted_keys": int(info.get("evicted_keys", 0)),
        "uptime_seconds": int(info.get("uptime_in_seconds", 0)),
    }


async def _holds(hub: Hub, live_events: Sequence[Any]) -> dict[str, Any]:
    """Live holds from the events' ``expiry`` sets (the leader's sweep reads the same)."""
    client = hub.store.client
    now_ms = await hub.inventory.server_time_ms()
    async with client.pipeline(transaction=False) as pipe:
        for event_id in live_events:
            key = hub.store.keys.event(event_id, "expiry")
            pipe.zcard(key)
            pipe.zcount(key, "-inf", now_ms)
            pipe.zrange(key, 0, MAX_HOLDS_EXAMINED - 1)
        counted = await pipe.execute()
    active = sum(int(n) for n in counted[0::3])
    due = sum(int(n) for n in counted[1::3])
    examined: list[tuple[Any, str]] = []
    for event_id, members in zip(live_events, counted[2::3], strict=True):
        for member in members:
            if len(examined) < MAX_HOLDS_EXAMINED:
                examined.append((event_id, as_text(member)))
    confirming = stuck = 0
    stuck_before = now_ms - confirming_limit_ms(hub.settings)
    fields: list[Any] = []
    # In slices, each its own round trip: the leader's loop serves requests between them
    # (one pipeline of 2,000 stalled it 15-45 ms, more under a surge).
    for start in range(0, len(examined), EXAMINED_PER_TRIP):
        async with client.pipeline(transaction=False) as pipe:
            for event_id, hold_id in examined[start : start + EXAMINED_PER_TRIP]:
                pipe.hmget(
                    hub.store.keys.event(event_id, f"hold:{hold_id}"), "status", "confirming_since"
                )
            fields += await pipe.execute()
    for status, since in fields:
        if status is not None and as_text(status) == "confirming":
            confirming += 1
            if since is not None and int(since) < stuck_before:
                stuck += 1
    return {
        "ok": True,
        "holds_active": active,
        "expiries_due": due,
        "confirming": confirming,
        "confirmations_stuck": stuck,
        "holds_examined": len(examined),
    }


async def _external(hub: Hub) -> dict[str, Any]:
    """The breakers' states (``Hub.breakers``), with the openings other processes shared."""
    with contextlib.suppress(*store.UNAVAILABLE):
        await hub.breakers.refresh()
    return hub.breakers.states()


def _open_seconds(external: Mapping[str, Any], now: float) -> float:
    """The longest any breaker has been other than closed, in seconds (0 when all closed)."""
    longest = 0.0
    for view in external.values():
        if isinstance(view, Mapping) and view.get("state") not in (None, "closed"):
            changed = view.get("changed_at")
            since = dt.datetime.fromisoformat(changed).timestamp() if changed else now
            longest = max(longest, now - since, 1e-3)
    return longest


async def _processes(hub: Hub) -> dict[str, Any]:
    return {"ok": True, "published": await published(hub, routes=True)}


async def _alerts(hub: Hub) -> dict[str, Any]:
    return {"ok": True, "states": await load_alerts(hub)}


async def measure(hub: Hub) -> dict[str, Any]:
    """Measure every figure now (the report as ``comprehensive`` sends it, uncached).

    Never raises for a dependency that fails: its section says ``ok: false`` and why, and
    ``status`` is ``down``.
    """
    started = time.perf_counter()
    timeout = probe_timeout_ms(hub) / 1000
    database, redis, procs, alerts, external = await asyncio.gather(
        _timed(timeout, lambda: _database(hub)),
        _timed(timeout, lambda: _redis(hub)),
        _timed(timeout, lambda: _processes(hub)),
        _timed(timeout, lambda: _alerts(hub)),
        _timed(timeout, lambda: _external(hub)),
    )
    backlog: health_db.Report | None = database.pop("_backlog", None)
    holds = (
        await _timed(timeout, lambda: _holds(hub, backlog.live_events if backlog else []))
        if backlog is not None
        else {"ok": False, "error": "needs PostgreSQL"}
    )
    published_ = procs.get("published", [])
    heads = [head for head, _ in published_]
    routes = [per_route for _, per_route in published_]
    api = _api(heads, routes)

    pools = [head["db_pool"] for head in heads] or [hub.db.stats()]
    database["pool"] = {
        "size": sum(p["size"] for p in pools),
        "in_use": sum(p["size"] - p["idle"] for p in pools),
        "idle": sum(p["idle"] for p in pools),
        "max": sum(p["max"] for p in pools),
    }
    window = _summed(heads, "window")
    hits = sum(h for h, _ in window["caches"].values())
    misses = sum(m for _, m in window["caches"].values())
    redis["cache"] = {
        "hits": int(hits),
        "misses": int(misses),
        "hit_ratio": _rate(hits, hits + misses),
        "by_cache": {
            name: {"hits": int(h), "misses": int(m), "hit_ratio": _rate(h, h + m)}
            for name, (h, m) in sorted(window["caches"].items())
        },
        "window_seconds": window["seconds"],
    }
    outcomes = {k: int(v) for k, v in sorted(window["bookings"].items())}
    bookings = {
        **holds,
        "refunds_due": backlog.refunds_due if backlog else None,
        "refunds_retrying": backlog.refunds_retrying if backlog else None,
        "confirmed": outcomes.get("confirmed", 0),
        "failed": sum(v for k, v in outcomes.items() if k not in ("confirmed", "cancelled")),
        "outcomes": outcomes,
        "window_seconds": window["seconds"],
    }
    workers = [
        {
            "id": head["id"],
            "pid": head["pid"],
            "host": head["host"],
            "leader": head["leader"],
            "cpu_percent": head["cpu_percent"],
            "rss_bytes": head["rss_bytes"],
            "ws_connections": head["ws"]["connections"],
            "ws_backlog_bytes": head["ws"]["backlog_bytes"],
            "ws_behind": head["ws"]["behind"],
            "reported_at": _iso(head["at"]),
        }
        for head in sorted(heads, key=lambda h: h["id"])
    ]
    process = {
        "cpu_percent": round(sum(w["cpu_percent"] or 0.0 for w in workers), 1),
        "rss_bytes": sum(w["rss_bytes"] for w in workers),
        "workers": workers,
    }
    queues = {
        "outbox_pending": backlog.outbox_pending if backlog else None,
        "outbox_oldest_seconds": round(backlog.outbox_oldest_seconds, 1) if backlog else None,
        "ws_connections": sum(w["ws_connections"] for w in workers),
        "ws_backlog_bytes": sum(w["ws_backlog_bytes"] for w in workers),
        "ws_behind": sum(w["ws_behind"] for w in workers),
        "ws_per_process": [
            {
                "id": w["id"],
                "connections": w["ws_connections"],
                "backlog_bytes": w["ws_backlog_bytes"],
            }
            for w in workers
        ],
    }
    states: dict[str, Alert] = alerts.get("states", {})
    report = {
        "status": "ok",
        "measured_at": _iso(time.time()),
        "database": database,
        "redis": redis,
        "api": api,
        "bookings": bookings,
        "external": external,
        "process": process,
        "queues": queues,
        "alerts": [_alert_out(a) for a in states.values()],
        "took_ms": 0.0,
    }
    report["status"] = _status(hub, report, states)
    report["took_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return report


def probe_timeout_ms(hub: Hub) -> float:
    """How long a check may take: twice ``alert_probe_ms``, at least ``MIN_TIMEOUT_MS``."""
    return max(2 * hub.settings.alert_probe_ms, MIN_TIMEOUT_MS)


def _status(hub: Hub, report: Mapping[str, Any], states: Mapping[str, Alert]) -> str:
    """``down`` when PostgreSQL or Redis does not answer; ``degraded`` when a probe is slower
    than ``alert_probe_ms``, an alert fires, a breaker is not closed or a check failed;
    else ``ok``."""
    database, redis = report["database"], report["redis"]
    if not database.get("ok") or not redis.get("ok"):
        return "down"
    slow = hub.settings.alert_probe_ms
    breakers = report["external"]
    if (
        database["probe_ms"] > slow
        or redis["probe_ms"] > slow
        or any(a.state is AlertState.FIRING for a in states.values())
        or any(isinstance(v, Mapping) and v.get("state") != "closed" for v in breakers.values())
        or not report["bookings"].get("ok", True)
    ):
        return "degraded"
    return "ok"


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat()


def _alert_out(alert: Alert) -> dict[str, Any]:
    return {
        "name": alert.name,
        "state": alert.state.value,
        "since": _iso(alert.since),
        "value": alert.value,
        "threshold": alert.threshold,
    }


async def comprehensive(hub: Hub, *, fresh: bool = False) -> bytes:
    """The health report as JSON bytes: the one kept in Redis (``CACHE_SECONDS``) unless
    ``fresh`` or none is kept; then measured now and kept. Redis being down costs the
    cache, never the answer."""

    async def measured() -> bytes:
        return jsonenc.dumps(await measure(hub))

    return await kept_in_redis(
        hub.store, "health:report", CACHE_SECONDS, measured, fresh=fresh, label="health"
    )


# --- 3. the sampler: the series and the alerts ------------------------------------------------


def thresholds(hub: Hub) -> dict[str, float]:
    s = hub.settings
    return {
        "hold_p99_ms": s.alert_hold_p99_ms,
        "error_rate": s.alert_error_rate,
        "breaker_open": s.alert_breaker_open_seconds,
        "outbox_backlog": float(s.alert_outbox_backlog),
        "postgres_down": s.alert_probe_ms,
        "redis_down": s.alert_probe_ms,
    }


def alert_values(hub: Hub, report: Mapping[str, Any]) -> dict[str, float | None]:
    """Each rule's value in a report. A failed probe reads as the checks' timeout
    (``probe_timeout_ms``, at least twice the threshold); no request or hold in the last
    ``RECENT_SECONDS`` reads as 0 (nothing slow, nothing failing)."""
    recent = report["api"]["recent"]
    failed = probe_timeout_ms(hub)
    database, redis = report["database"], report["redis"]
    pending = report["queues"]["outbox_pending"]
    return {
        "hold_p99_ms": recent["hold_p99_ms"] or 0.0,
        "error_rate": recent["error_rate"] or 0.0,
        "breaker_open": round(_open_seconds(report["external"], time.time()), 3),
        "outbox_backlog": float(pending) if pending is not None else None,
        "postgres_down": database["probe_ms"] if database.get("ok") else failed,
        "redis_down": redis["probe_ms"] if redis.get("ok") else failed,
    }


def headline(report: Mapping[str, Any]) -> dict[str, Any]:
    """The figures one point of the monitoring series keeps."""
    recent = report["api"]["recent"]
    database, redis = report["database"], report["redis"]
    return {
        "at": report["measured_at"],
        "status": report["status"],
        "requests_per_s": recent["requests_per_s"],
        "error_rate": recent["error_rate"],
        "p50_ms": recent["p50_ms"],
        "p95_ms": recent["p95_ms"],
        "p99_ms": recent["p99_ms"],
        "hold_p99_ms": recent["hold_p99_ms"],
        "db_probe_ms": database.get("probe_ms"),
        "db_pool_in_use": database["pool"]["in_use"],
        "db_slow_queries": database.get("slow_queries"),
        "redis_probe_ms": redis.get("probe_ms"),
        "redis_ops_per_s": redis.get("ops_per_s"),
        "cache_hit_ratio": redis.get("cache", {}).get("hit_ratio"),
        "holds_active": report["bookings"].get("holds_active"),
        "outbox_pending": report["queues"]["outbox_pending"],
        "ws_connections": report["queues"]["ws_connections"],
        "cpu_percent": report["process"]["cpu_percent"],
        "rss_bytes": report["process"]["rss_bytes"],
        "breakers_open": sum(
            1
            for v in report["external"].values()
            if isinstance(v, Mapping) and v.get("state") != "closed"
        ),
        "alerts_firing": sum(1 for a in report["alerts"] if a["state"] == "firing"),
    }


#: The columns of the monitoring series, the keys of ``headline``.
SERIES_FIELDS = (
    "at",
    "status",
    "requests_per_s",
    "error_rate",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "hold_p99_ms",
    "db_probe_ms",
    "db_pool_in_use",
    "db_slow_queries",
    "redis_probe_ms",
    "redis_ops_per_s",
    "cache_hit_ratio",
    "holds_active",
    "outbox_pending",
    "ws_connections",
    "cpu_percent",
    "rss_bytes",
    "breakers_open",
    "alerts_firing",
)


async def load_alerts(hub: Hub) -> dict[str, Alert]:
    """The alert states the sampler keeps in Redis, by rule (empty before its first tick)."""
    raw = await hub.store.client.hgetall(hub.store.keys.global_("health:alerts"))
    found = {}
    for name, value in raw.items():
        item = _decode.decode(value)
        found[as_text(name)] = Alert(
            as_text(name),
            AlertState(item["state"]),
            item["since"],
            item["value"],
            item["threshold"],
        )
    return found


async def sample(hub: Hub) -> dict[str, Any]:
    """One tick of the sampler: measure, append the headline to the series, evaluate the
    alerts and log each transition once. Returns the point appended."""
    report = await measure(hub)
    previous = await load_alerts(hub)
    states, changed = advance(previous, alert_values(hub, report), thresholds(hub), time.time())
    for transition in changed:
        alert = transition.alert
        firing = alert.state is AlertState.FIRING
        # Both at warning: a resolution is read beside the firing it ends.
        log.warning(
            "alert_firing" if firing else "alert_resolved",
            alert=alert.name,
            value=alert.value,
            threshold=alert.threshold,
        )
    for alert in states.values():
        metrics.ALERT_FIRING.labels(alert.name).set(1 if alert.state is AlertState.FIRING else 0)
    report["alerts"] = [_alert_out(a) for a in states.values()]
    point = headline(report)
    keys = hub.store.keys
    async with hub.store.client.pipeline(transaction=False) as pipe:
        pipe.hset(
            keys.global_("health:alerts"),
            mapping={
                a.name: jsonenc.dumps(
                    {
                        "state": a.state.value,
                        "since": a.since,
                        "value": a.value,
                        "threshold": a.threshold,
                    }
                )
                for a in states.values()
            },
        )
        pipe.rpush(keys.global_("health:series"), jsonenc.dumps(point))
        pipe.ltrim(keys.global_("health:series"), -SERIES_POINTS, -1)
        await pipe.execute()
    return point


async def health_loop(hub: Hub) -> None:
    """Leader loop: a sample every ``SAMPLE_SECONDS`` (a new leader samples at once)."""
    while True:
        started = time.monotonic()
        try:
            await sample(hub)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("health_sample_failed")
        await asyncio.sleep(max(SAMPLE_SECONDS - (time.monotonic() - started), 0.5))


async def monitoring(hub: Hub) -> dict[str, Any]:
    """The last hour of samples as columns, oldest first (``SERIES_FIELDS`` each a list of
    the same length; a missing figure is null). Points are where the sampler ran: a gap
    (no leader) shows as a gap in ``at``."""
    raw = await hub.store.client.lrange(hub.store.keys.global_("health:series"), 0, -1)
    points = [_decode.decode(item) for item in raw]
    return {
        "resolution_seconds": SAMPLE_SECONDS,
        "window_seconds": SAMPLE_SECONDS * SERIES_POINTS,
        "points": len(points),
        "series": {name: [p.get(name) for p in points] for name in SERIES_FIELDS},
    }


async def live_summary(hub: Hub) -> dict[str, Any]:
    """The cheap per-second view for the admin stream (``hub.channels.admin``).

    Cost: two Redis round trips in sequence (the live process ids, beside the alert
    states; then the processes' heads, about a kilobyte each), no PostgreSQL, no probe;
    a fraction of a millisecond of CPU with a few processes. Figures over every process:
    the last ``RECENT_SECONDS`` of requests (rate, 5xx rate, p50/p95/p99) and holds (p99),
    WebSocket connections and backlog, CPU and RSS summed; each process's own figures are
    at most ``PUBLISH_SECONDS`` old.

    Returns:
        ``{processes, requests_per_s, error_rate, p50_ms, p95_ms, p99_ms, hold_p99_ms,
        ws_connections, ws_backlog_bytes, cpu_percent, rss_bytes, alerts: [{name, state,
        since, value, threshold}]}``.
    """
    found, alerts = await asyncio.gather(published(hub, routes=False), load_alerts(hub))
    heads = [head for head, _ in found]
    recent = _summed(heads, "recent")
    return {
        "processes": len(heads),
        "requests_per_s": _per_s(recent["requests"], recent["seconds"]),
        "error_rate": _rate(recent["errors"], recent["requests"]),
        **_percentiles(recent["buckets"]),
        "hold_p99_ms": _ms(quantile(BOUNDS, recent["holds"], 0.99)),
        "ws_connections": sum(h["ws"]["connections"] for h in heads),
        "ws_backlog_bytes": sum(h["ws"]["backlog_bytes"] for h in heads),
        "cpu_percent": round(sum(h["cpu_percent"] or 0.0 for h in heads), 1),
        "rss_bytes": sum(h["rss_bytes"] for h in heads),
        "alerts": [_alert_out(a) for a in alerts.values()],
    }
