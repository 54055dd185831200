"""What the soak checks each minute on a paused load, and what it samples all along.

Invariants (each one a count of violations; all must be zero):

- ``seats``: per event, a seat is ``sold`` in the live seat map (Redis, read through
  ``GET /events/{id}/seats``) exactly when PostgreSQL has an active ticket for it, and
  every booking a buyer was answered 201 for is there in the state the buyer was told
  (``loadtest.audit``'s rules). A confirmation cut short by a fault is reconciled by the
  leader, so this is retried for up to ``SETTLE_S`` before it counts as broken;
- ``duplicates``: no seat with two active tickets;
- ``money``: a booking's subtotal is the sum of its lines (tickets), its total is subtotal
  minus discount, it has exactly one charge of its total; refunds == cancellations: every
  cancelled booking (and only those) has a refund of its whole total, none keeps an active
  ticket, and a refund recorded paid has a refund payment of that amount;
- ``watchers``: every open watcher's mirror shows the seats sold that the seat map shows
  (retried like ``seats``), and no snapshot went below a ``seq`` the watcher saw before.

Resources, sampled every few seconds: RSS and open file descriptors of the hub's processes
(``/proc/PID/fd``), PostgreSQL connections to the hub's database (``pg_stat_activity``),
Redis keys (all; an event's, carrying a ``{event_id}`` hash tag; and lasting ones, neither
an event's nor expiring). At the end each is compared with its baseline (both taken on a
paused, settled load) within a stated tolerance.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import psutil
import redis.asyncio as aioredis

from loadtest import audit
from loadtest.records import Http

SETTLE_S = 45.0  # longest wait for the seat state to agree after a fault

_MONEY_SQL = {
    "subtotal != sum of lines": """
        SELECT count(*) FROM bookings b
         WHERE b.subtotal_cents <> (SELECT coalesce(sum(t.price_cents), 0)
                                      FROM tickets t WHERE t.booking_id = b.id)""",
    "total != subtotal - discount": """
        SELECT count(*) FROM bookings WHERE total_cents <> subtotal_cents - discount_cents""",
    "not exactly one charge of the total": """
        SELECT count(*) FROM bookings b
         WHERE (SELECT count(*) FROM payments p WHERE p.booking_id = b.id
                   AND p.kind = 'charge' AND p.amount_cents = b.total_cents) <> 1""",
    "cancelled without its full refund": """
        SELECT count(*) FROM bookings
         WHERE status = 'cancelled'
           AND (refund_cents IS DISTINCT FROM total_cents OR refund_status IS NULL)""",
    "refund without a cancellation": """
        SELECT count(*) FROM bookings
         WHERE status <> 'cancelled' AND (refund_cents IS NOT NULL OR refund_status IS NOT NULL)""",
    "cancelled with an active ticket": """
        SELECT count(DISTINCT b.id) FROM bookings b JOIN tickets t ON t.booking_id = b.id
         WHERE b.status = 'cancelled' AND t.active""",
    "refund paid != refund payments": """
        SELECT count(*) FROM bookings b
         WHERE b.refund_status = 'paid'
           AND b.refund_cents <> (SELECT coalesce(sum(p.amount_cents), 0) FROM payments p
                                   WHERE p.booking_id = b.id AND p.kind = 'refund')""",
    "refund payment of an unpaid refund": """
        SELECT count(DISTINCT p.booking_id) FROM payments p JOIN bookings b ON b.id = p.booking_id
         WHERE p.kind = 'refund' AND b.refund_status IS DISTINCT FROM 'paid'""",
}
_DUPLICATES_SQL = """
    SELECT count(*) FROM (SELECT 1 FROM tickets WHERE active
                           GROUP BY event_id, seat_id HAVING count(*) > 1) d"""
_MONEY_FIGURES_SQL = """
    SELECT count(*) AS bookings,
           count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
           count(*) FILTER (WHERE discount_cents > 0) AS discounted,
           coalesce(sum(total_cents) FILTER (WHERE status = 'confirmed'), 0) AS confirmed_cents,
           coalesce(sum(refund_cents), 0) AS refunds_cents,
           count(*) FILTER (WHERE refund_status IN ('due', 'failed')) AS refunds_pending
      FROM bookings"""


@dataclass
class Check:
    """One minute's invariants: violations per rule (all zero when it held)."""

    at_s: float
    violations: dict[str, int] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    settle_s: float = 0.0
    transient: list[str] = field(default_factory=list)  # disagreements that settled

    @property
    def ok(self) -> bool:
        return not any(self.violations.values())


async def check_invariants(
    http: Http,
    database_url: str,
    events: list[str],
    bookings: dict[str, list[Any]],
    mirrors: Any,
    seq_backwards: int,
    at_s: float,
) -> Check:
    """Every invariant of the module docstring, on a paused load."""
    check = Check(at_s)
    started = time.monotonic()
    seats_reasons: list[str] = []
    while True:
        seats_reasons, figures, sold_api = await _seats(http, database_url, events, bookings)
        mirror_off = _mirrors_off(mirrors(), sold_api)
        if (not seats_reasons and not mirror_off) or time.monotonic() - started > SETTLE_S:
            break
        if not check.transient:  # what disagreed at first (it may settle)
            check.transient = seats_reasons[:3] + [
                f"{len(mirror_off)} watcher mirrors disagree"
            ] * bool(mirror_off)
        await asyncio.sleep(2.0)
    check.settle_s = time.monotonic() - started
    check.violations["seats"] = len(seats_reasons)
    check.reasons += seats_reasons
    check.violations["watchers"] = len(mirror_off) + seq_backwards
    if mirror_off:
        check.reasons.append(f"{len(mirror_off)} watcher mirrors disagree with the seat map")
    if seq_backwards:
        check.reasons.append(f"{seq_backwards} snapshots went below a seq seen before")
    con = await asyncpg.connect(database_url, timeout=30)
    try:
        check.violations["duplicates"] = int(await con.fetchval(_DUPLICATES_SQL))
        money = 0
        for rule, sql in _MONEY_SQL.items():
            n = int(await con.fetchval(sql))
            if n:
                check.reasons.append(f"money: {n} bookings: {rule}")
            money += n
        check.violations["money"] = money
        check.figures.update(dict(await con.fetchrow(_MONEY_FIGURES_SQL)))
    finally:
        await con.close()
    check.figures.update(figures)
    return check


async def _seats(
    http: Http, database_url: str, events: list[str], bookings: dict[str, list[Any]]
) -> tuple[list[str], dict[str, int], dict[str, int]]:
    """The audit of every event: reasons, summed figures, and seats sold per event."""
    reasons: list[str] = []
    totals: dict[str, int] = {}
    sold: dict[str, int] = {}
    for event_id in events:
        reply = await http.call("GET", f"/api/v1/events/{event_id}/seats")
        if reply.status != 200:
            reasons.append(f"event {event_id}: seat map answered {reply.status}")
            continue
        api = audit.api_statuses(reply.body)
        pg = await audit.load_pg(database_url, event_id)
        seen = [
            audit.SeenBooking(bid, tuple(seats), cancelled)
            for bid, (eid, seats, cancelled) in bookings.items()
            if eid == event_id
        ]
        result = audit.check(api, pg, seen)
        reasons += [f"event {event_id[:8]}: {r}" for r in result.reasons]
        for key, value in result.figures.items():
            totals[key] = totals.get(key, 0) + value
        sold[event_id] = result.figures["sold_api"]
    return reasons, totals, sold


def _mirrors_off(views: Iterable[tuple[str, int | None, int]], sold: dict[str, int]) -> list[str]:
    """Watchers whose mirror (with a snapshot) shows another number of seats sold."""
    return [
        event_id
        for event_id, seq, mirror_sold in views
        if seq is not None and event_id in sold and mirror_sold != sold[event_id]
    ]


# --- resources ----------------------------------------------------------------------------


async def sample_resources(
    hub_pids: list[int], database_url: str, redis_url: str, at_s: float, kinds: bool = False
) -> dict[str, Any]:
    """One sample of the figures that must come back to their baseline; with ``kinds``,
    the keys that are not an event's counted by kind (what to look at when they grow)."""
    rss = fds = 0
    for pid in hub_pids:
        try:
            rss += psutil.Process(pid).memory_info().rss
            fds += len(os.listdir(f"/proc/{pid}/fd"))
        except (psutil.Error, OSError):
            pass
    row: dict[str, Any] = {
        "t": at_s,
        "hub_processes": len(hub_pids),
        "rss_mib": rss / 2**20,
        "fds": fds,
        "pg_connections": None,
        "redis_keys": None,
        "redis_event_keys": None,
        "redis_lasting_keys": None,
    }
    try:
        con = await asyncpg.connect(database_url, timeout=5)
        try:
            row["pg_connections"] = int(
                await con.fetchval(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        finally:
            await con.close()
    except (OSError, asyncpg.PostgresError, TimeoutError):
        pass  # down (a fault): no figure for this sample
    client = aioredis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        row.update(await _redis_figures(client, kinds))
    except (OSError, aioredis.RedisError):
        pass
    finally:
        await client.aclose()
    return row


async def _redis_figures(client: aioredis.Redis, kinds: bool) -> dict[str, Any]:
    """Keys in all, keys of an event (``{event_id}`` hash tag), and lasting keys: not an
    event's and without an expiry. Keys with a TTL go by themselves (a hold's index entry
    lives an hour past the hold, by design), so a leak shows among the lasting ones."""
    keys = event_keys = lasting = 0
    other: Counter[str] = Counter()
    batch: list[bytes] = []

    async def flush() -> None:
        nonlocal lasting
        pipe = client.pipeline(transaction=False)
        for key in batch:
            pipe.ttl(key)
        for key, ttl in zip(batch, await pipe.execute(), strict=True):
            if ttl == -1:
                lasting += 1
                if kinds:
                    other[key_kind(key.decode(errors="replace"))] += 1
        batch.clear()

    async for key in client.scan_iter(count=1000):
        keys += 1
        if b"{" in key:
            event_keys += 1
        else:
            batch.append(key)
            if len(batch) >= 500:
                await flush()
    await flush()
    out: dict[str, Any] = {
        "redis_keys": keys,
        "redis_event_keys": event_keys,
        "redis_lasting_keys": lasting,
    }
    if kinds:
        out["redis_lasting_kinds"] = dict(other.most_common(12))
    return out


def key_kind(key: str) -> str:
    """``evently:soakX:revoked:3f2a...`` -> ``revoked:*``: the key without its prefix, with
    the parts that name one thing (ids, numbers) replaced by ``*``."""
    parts = key.split(":")[2:]
    return ":".join("*" if any(c.isdigit() for c in p) and len(p) > 6 else p for p in parts)


@dataclass(frozen=True)
class Tolerance:
    """How far above its baseline a figure may end: ``ratio`` times it plus ``slack``."""

    ratio: float
    slack: float
    words: str


TOLERANCES = {
    "rss_mib": Tolerance(1.25, 32.0, "+25 % + 32 MiB"),
    "fds": Tolerance(1.1, 10.0, "+10 % + 10"),
    "pg_connections": Tolerance(1.0, 4.0, "+4"),
    "redis_lasting_keys": Tolerance(1.1, 10.0, "+10 % + 10"),
    "redis_keys_per_event": Tolerance(1.5, 2.0, "+50 % + 2"),
}


def resource_verdicts(
    baseline: dict[str, Any], end: dict[str, Any], samples: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Baseline, peak and end of each figure, and whether the end is within tolerance.

    Redis keys are judged in two parts: lasting keys (not an event's, no expiry) must come
    back to their baseline; an event's keys grow with the events the soak made (one more
    event each on-sale), so their count per event must. Each row carries ``events``.
    """
    base, last = derived(baseline), derived(end)
    rows = [derived(s) for s in samples]
    verdicts = []
    for name, tol in TOLERANCES.items():
        values = [r[name] for r in rows if r.get(name) is not None]
        b, e = base.get(name), last.get(name)
        ok = b is not None and e is not None and e <= b * tol.ratio + tol.slack
        verdicts.append(
            {
                "figure": name,
                "baseline": b,
                "peak": max(values) if values else None,
                "end": e,
                "tolerance": tol.words,
                "ok": ok,
            }
        )
    return verdicts


def derived(row: dict[str, Any]) -> dict[str, Any]:
    """The sample with the two judged Redis figures added (when Redis answered)."""
    out = dict(row)
    if row.get("redis_keys") is not None:
        out["redis_keys_per_event"] = row["redis_event_keys"] / max(1, row["events"])
    return out
