"""``python -m tests.bench.rollups``: does the analytics rollup keep up with 500 bookings/s?

On a scratch database (created on the given PostgreSQL server, migrated, dropped after):
venues with seats, enough on-sale events for the run and ``--users`` users, seeded in SQL; with
``--history N`` also N bookings of past events over the last year (two tickets each,
1.3 holds per booking, one in twenty cancelled), written with stamps of their own and then
counted by a timed `rebuild`, as the contract asks.

Then the leader's own loop (``rollup_loop`` on an ``open_hub`` hub, every ``--interval``
seconds) runs while ``--writers`` connections write ``--rate`` bookings a second for
``--seconds``, each in its own transaction stamped ``now()`` like the hub's (``--batch N``:
N to a transaction, for a machine too busy to commit 500 transactions a second): a hold
(in ``hold_log``), the booking, its one to three tickets; one hold in three more is placed
and never booked, and one booking in twenty is cancelled two seconds later. Every
``--sample`` seconds the lag (how far the watermark trails the database clock) is read.

Prints the rate reached, each step the loop took (rows counted, seconds), the lag's
median, p95 and max, and checks the result: the rollups' totals equal the source rows
counted before the watermark, and a rebuild from scratch (timed, over history and live rows
together) leaves every rollup row as the steps left it. Exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from structlog.testing import capture_logs

from hub.context import open_hub
from hub.db.migrate import migrate
from hub.services import rollups
from hub.settings import Settings
from loadtest.seeding import SEATS_PER_SECTION, seed
from tests.waiting import eventually

SECTIONS = 6
SEATS_PER_EVENT = SECTIONS * SEATS_PER_SECTION
MAX_TICKETS = 3


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--database-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL server's admin DSN: a scratch database is made on it and dropped",
    )
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--rate", type=float, default=500.0, help="bookings per second to write")
    p.add_argument("--seconds", type=float, default=20.0, help="how long to write")
    p.add_argument(
        "--interval",
        type=float,
        default=Settings().rollup_interval_seconds,
        help="the loop's step interval (default: the hub's)",
    )
    p.add_argument("--writers", type=int, default=8, help="connections writing at once")
    p.add_argument("--batch", type=int, default=1, help="bookings per write transaction")
    p.add_argument("--users", type=int, default=5_000)
    p.add_argument("--history", type=int, default=200_000, help="back-dated bookings first")
    p.add_argument("--sample", type=float, default=0.25, help="seconds between lag readings")


# --- seeding ---------------------------------------------------------------------------------

_USERS = """
INSERT INTO users (email, name, password_hash)
SELECT 'bench-' || g || '@x.org', 'Bench ' || g, '-' FROM generate_series(1, $1::int) g
"""

# Past events (a year back) on the bench's venues, each sold in bookings of two seats.
_PAST_EVENTS = """
INSERT INTO events (venue_id, name, category, starts_at, created_at)
SELECT v.id, 'Past event ' || g, 'bench',
       now() - make_interval(days => 1 + g % 360), now() - interval '400 days'
  FROM generate_series(1, $1::int) g
  JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS rn FROM venues) v
    ON v.rn = g % (SELECT count(*) FROM venues)
"""
_HISTORY = """
WITH past AS (
    SELECT id, venue_id, starts_at, row_number() OVER (ORDER BY id) - 1 AS rn
      FROM events WHERE starts_at < now()
), users AS (
    SELECT id, row_number() OVER (ORDER BY id) - 1 AS rn FROM users
), made AS (
    SELECT g, p.id AS event_id, p.venue_id, u.id AS user_id,
           p.starts_at - make_interval(secs => 3600 + (hashtext(g::text) & 2147483647)
                                                       % (90 * 86400)) AS created_at
      FROM generate_series(0, $1::int - 1) g
      JOIN past p ON p.rn = g % $2::int
      JOIN users u ON u.rn = (hashtext('u' || g) & 2147483647) % $3::int
), bookings AS (
    INSERT INTO bookings (reference, event_id, user_id, hold_id, subtotal_cents,
                          total_cents, status, cancelled_at, refund_cents, created_at,
                          group_name)
    SELECT 'H-' || g, event_id, user_id, gen_random_uuid(), 10000, 10000,
           CASE WHEN g % 20 = 0 THEN 'cancelled' ELSE 'confirmed' END,
           CASE WHEN g % 20 = 0 THEN created_at + interval '2 days' END,
           CASE WHEN g % 20 = 0 THEN 10000 END, created_at, (g / $2::int)::text
      FROM made
    RETURNING id, event_id, user_id, hold_id, created_at, group_name, status
), holds AS (
    INSERT INTO hold_log (hold_id, event_id, user_id, seats, outcome, created_at, ended_at)
    SELECT hold_id, event_id, user_id, 2, 'booked', created_at, created_at FROM bookings
    UNION ALL
    SELECT gen_random_uuid(), event_id, user_id, 1, 'expired', created_at - interval '1 hour',
           created_at FROM bookings WHERE abs(hashtext(id::text)) % 10 < 3
)
INSERT INTO tickets (booking_id, event_id, seat_id, price_cents, active)
SELECT b.id, b.event_id, s.id, 5000, b.status = 'confirmed'
  FROM bookings b
  JOIN events e ON e.id = b.event_id
  JOIN seats s ON s.venue_id = e.venue_id AND s.idx / 2 = b.group_name::int
"""


async def _seed(url: str, args: argparse.Namespace) -> tuple[list[asyncpg.Record], list[Any]]:
    """Venues, live events and users; the history when asked. Returns the live events
    (id, venue) and the user ids."""
    live_needed = int(args.rate * args.seconds * MAX_TICKETS / SEATS_PER_EVENT) + 2
    past_needed = -(-args.history // (SEATS_PER_EVENT // 2)) if args.history else 0
    venues = max(4, (live_needed + past_needed) // 25 + 1)
    seeding = argparse.Namespace(venues=venues, sections=SECTIONS, events=live_needed, bookings=0)
    await seed(url, seeding)
    con = await asyncpg.connect(url)
    try:
        await con.execute(_USERS, args.users)
        if args.history:
            await con.execute(_PAST_EVENTS, past_needed)
            started = time.perf_counter()
            await con.execute(_HISTORY, args.history, past_needed, args.users + 1)
            await con.execute("ANALYZE")
            print(
                f"history: {args.history} bookings over {past_needed} past events written in "
                f"{time.perf_counter() - started:.1f} s"
            )
        live = await con.fetch(
            "SELECT id, venue_id FROM events WHERE starts_at > now() ORDER BY id"
        )
        users = [r["id"] for r in await con.fetch("SELECT id FROM users")]
    finally:
        await con.close()
    return list(live), users


# --- the live phase ----------------------------------------------------------------------------

# Bookings as the hub writes each one: the hold's outcome, the booking, its tickets (seats
# first_seat .. first_seat + quantity of the venue), every stamp now(); with --batch 1 (the
# default) one booking per transaction, like the hub, else that many per transaction.
_BOOK = """
WITH input AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::int[],
                         $6::uuid[], $7::int[])
        AS x(hold_id, event_id, user_id, reference, quantity, venue_id, first_seat)
), h AS (
    INSERT INTO hold_log (hold_id, event_id, user_id, seats, outcome, ended_at)
    SELECT hold_id, event_id, user_id, quantity, 'booked', now() FROM input
), b AS (
    INSERT INTO bookings (reference, event_id, user_id, hold_id, subtotal_cents, total_cents)
    SELECT reference, event_id, user_id, hold_id, 5000 * quantity, 5000 * quantity FROM input
    RETURNING id, hold_id
), t AS (
    INSERT INTO tickets (booking_id, event_id, seat_id, price_cents)
    SELECT b.id, i.event_id, s.id, 5000
      FROM b
      JOIN input i ON i.hold_id = b.hold_id
      JOIN seats s ON s.venue_id = i.venue_id
       AND s.idx >= i.first_seat AND s.idx < i.first_seat + i.quantity
)
SELECT b.id FROM b JOIN input i ON i.hold_id = b.hold_id ORDER BY i.reference
"""
# Holds placed and never booked.
_HOLD_ONLY = """
INSERT INTO hold_log (hold_id, event_id, user_id, seats)
SELECT gen_random_uuid(), e, u, 1 FROM unnest($1::uuid[], $2::uuid[]) AS x(e, u)
"""
_CANCEL = """
WITH t AS (UPDATE tickets SET active = false WHERE booking_id = $1)
UPDATE bookings SET status = 'cancelled', cancelled_at = now(), refund_cents = total_cents
 WHERE id = $1 AND status = 'confirmed'
"""


class Writer:
    """Writes bookings at a fixed rate from several connections: batch j (bookings
    j x size ...) is due at start + j x size / rate; each connection takes the next batch
    when it is free. One booking in three comes with a hold never booked; one in twenty
    is cancelled two seconds after it was made."""

    def __init__(
        self, pool: asyncpg.Pool, live: list[asyncpg.Record], users: list[Any], size: int = 1
    ) -> None:
        self.pool = pool
        self.live = live
        self.users = users
        self.size = size
        self.next = 0
        self.done = 0
        self.holds_only = 0
        self.cancelled = 0
        self.late = 0.0  # the worst delay behind schedule, seconds
        self.pending: set[asyncio.Task[None]] = set()

    async def run(self, rate: float, seconds: float, writers: int) -> float:
        start = time.perf_counter()
        total = int(rate * seconds)
        await asyncio.gather(*(self._one(start, rate, total) for _ in range(writers)))
        elapsed = time.perf_counter() - start
        await asyncio.gather(*self.pending)
        return elapsed

    async def _one(self, start: float, rate: float, total: int) -> None:
        while self.next < total:
            first = self.next
            numbers = range(first, min(first + self.size, total))
            self.next = numbers.stop
            delay = start + first / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                self.late = max(self.late, -delay)
            columns: list[list[Any]] = [[] for _ in range(7)]
            for i in numbers:
                event = self.live[i % len(self.live)]
                row = (
                    uuid.uuid4(),
                    event["id"],
                    self.users[(i * 7919) % len(self.users)],
                    f"B-{i}",
                    1 + i % MAX_TICKETS,
                    event["venue_id"],
                    (i // len(self.live)) * MAX_TICKETS,
                )
                for column, value in zip(columns, row, strict=True):
                    column.append(value)
            extra = [n - first for n in numbers if n % 3 == 0]
            async with self.pool.acquire() as con, con.transaction():
                made = [r["id"] for r in await con.fetch(_BOOK, *columns)]
                if extra:
                    await con.execute(
                        _HOLD_ONLY, [columns[1][k] for k in extra], [columns[2][k] for k in extra]
                    )
            self.done += len(made)
            self.holds_only += len(extra)
            for n, booking_id in zip(numbers, made, strict=True):
                if n % 20 == 0:
                    task = asyncio.create_task(self._cancel_later(booking_id))
                    self.pending.add(task)
                    task.add_done_callback(self.pending.discard)

    async def _cancel_later(self, booking_id: uuid.UUID) -> None:
        await asyncio.sleep(2.0)
        async with self.pool.acquire() as con:
            await con.execute(_CANCEL, booking_id)
        self.cancelled += 1


async def _sample_lag(pool: asyncpg.Pool, every: float, lags: list[float]) -> None:
    while True:
        lag = await pool.fetchval(
            "SELECT extract(epoch FROM now() - watermark)::float8 FROM analytics_rollup_state"
        )
        if lag is not None:
            lags.append(lag)
        await asyncio.sleep(every)


async def _watermark_past(pool: asyncpg.Pool, moment: Any) -> bool:
    mark = await pool.fetchval("SELECT watermark FROM analytics_rollup_state")
    return bool(mark is not None and mark > moment)


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- checks ------------------------------------------------------------------------------------

_TOTALS = """
SELECT (SELECT coalesce(sum(bookings), 0) FROM analytics_hourly),
       (SELECT count(*) FROM bookings WHERE created_at < s.watermark),
       (SELECT coalesce(sum(cancellations), 0) FROM analytics_hourly),
       (SELECT count(*) FROM bookings WHERE cancelled_at < s.watermark),
       (SELECT coalesce(sum(holds), 0) FROM analytics_hourly),
       (SELECT count(*) FROM hold_log WHERE created_at < s.watermark),
       (SELECT coalesce(sum(bookings), 0) FROM analytics_user_months),
       (SELECT coalesce(sum(bookings), 0) FROM analytics_lead_days)
  FROM analytics_rollup_state s
"""
_ROWS = {
    "hourly": "SELECT * FROM analytics_hourly ORDER BY event_id, hour",
    "user months": "SELECT * FROM analytics_user_months ORDER BY user_id, month",
    "lead days": "SELECT * FROM analytics_lead_days ORDER BY event_id, lead_days",
}


async def _check(url: str) -> bool:
    """Totals against the source, then a timed rebuild that must change no row."""
    con = await asyncpg.connect(url)
    try:
        row = await con.fetchrow(_TOTALS)
        assert row is not None
        made, made_src, gone, gone_src, held, held_src, months, leads = (int(v) for v in row)
        ok = made == made_src == months == leads and gone == gone_src and held == held_src
        print(
            f"totals before the watermark: bookings {made} (source {made_src}, user months "
            f"{months}, lead days {leads}), cancellations {gone} (source {gone_src}), holds "
            f"{held} (source {held_src}): {'equal' if ok else 'DIFFERENT'}"
        )
        before = {name: await con.fetch(sql) for name, sql in _ROWS.items()}
    finally:
        await con.close()
    db = await _database(url)
    try:
        rebuilt = await rollups.rebuild(db)
    finally:
        await db.close()
    con = await asyncpg.connect(url)
    try:
        after = {name: await con.fetch(sql) for name, sql in _ROWS.items()}
    finally:
        await con.close()
    same = all([tuple(r) for r in before[n]] == [tuple(r) for r in after[n]] for n in _ROWS)
    print(
        f"rebuild over everything: {rebuilt.bookings} bookings, {rebuilt.cancellations} "
        f"cancellations, {rebuilt.holds} holds in {rebuilt.seconds:.2f} s; rows "
        f"{'identical to the steps' if same else 'DIFFERENT from the steps'} "
        f"({', '.join(f'{len(after[n])} {n}' for n in _ROWS)})"
    )
    return ok and same


async def _database(url: str) -> Any:
    from hub.db import Database

    return await Database.connect(url, min_size=1, max_size=2)


# --- run ---------------------------------------------------------------------------------------


async def _live(url: str, args: argparse.Namespace, live: list[Any], users: list[Any]) -> None:
    settings = Settings(
        database_url=url,
        redis_url=args.redis_url,
        secret_key="bench-rollups",
        redis_prefix=f"evently:bench-rollups:{uuid.uuid4().hex[:8]}:",
        log_level="warning",
        log_format="json",
        rollup_interval_seconds=args.interval,
    )
    pool = await asyncpg.create_pool(url, min_size=args.writers + 1, max_size=args.writers + 1)
    lags: list[float] = []
    try:
        async with open_hub(settings) as hub, contextlib.AsyncExitStack() as stack:
            with capture_logs() as logs:
                loop = asyncio.create_task(rollups.rollup_loop(hub))
                stack.callback(loop.cancel)
                sampler = asyncio.create_task(_sample_lag(pool, args.sample, lags))
                stack.callback(sampler.cancel)
                writer = Writer(pool, live, users, args.batch)
                elapsed = await writer.run(args.rate, args.seconds, args.writers)
                ended = await pool.fetchval("SELECT now()")
                # The loop's next step counts the last ones.
                caught_up = await eventually(
                    lambda: _watermark_past(pool, ended), within=3 * args.interval + 10
                )
                loop.cancel()
                sampler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await loop
    finally:
        await pool.close()
    steps = [e for e in logs if e.get("event") == "rollup_step"]
    if not caught_up:
        print("the loop did not reach the end of the writes")
    print(
        f"wrote {writer.done} bookings ({writer.cancelled} cancelled, "
        f"{writer.holds_only} holds never booked) in {elapsed:.1f} s, {args.batch} per "
        f"transaction: "
        f"{writer.done / elapsed:.0f} bookings/s (target {args.rate:.0f}; worst delay behind "
        f"schedule {writer.late * 1000:.0f} ms)"
    )
    print(f"loop steps every {args.interval:g} s ({len(steps)}):")
    for e in steps:
        rows = e["bookings"] + e["cancellations"] + e["holds"]
        rate = rows / e["seconds"] if e["seconds"] else 0.0
        print(
            f"  {e['bookings']:>6} bookings {e['cancellations']:>5} cancellations "
            f"{e['holds']:>6} holds in {e['seconds'] * 1000:7.1f} ms ({rate:,.0f} rows/s), "
            f"lag after {e['lag_seconds']:.2f} s"
        )
    busy = [e["seconds"] for e in steps if e["bookings"]]
    if busy:
        print(
            f"step time with bookings: median {statistics.median(busy) * 1000:.0f} ms, "
            f"max {max(busy) * 1000:.0f} ms (of a {args.interval:g} s interval)"
        )
    if lags:
        print(
            f"lag (database clock - watermark), {len(lags)} readings: median "
            f"{statistics.median(lags):.2f} s, p95 {_quantile(lags, 0.95):.2f} s, "
            f"max {max(lags):.2f} s"
        )


async def run(args: argparse.Namespace) -> int:
    name = f"evently_bench_rollups_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(args.database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = urlunsplit(urlsplit(args.database_url)._replace(path=f"/{name}"))
    try:
        await migrate(url)
        live, users = await _seed(url, args)
        db = await _database(url)
        try:
            first = await rollups.rebuild(db)
        finally:
            await db.close()
        print(
            f"rebuild over the history: {first.bookings} bookings, {first.cancellations} "
            f"cancellations, {first.holds} holds in {first.seconds:.2f} s"
        )
        await _live(url, args, live, users)
        ok = await _check(url)
    finally:
        admin = await asyncpg.connect(args.database_url)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.rollups")
    add_arguments(parser)
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
