"""``python -m tests.bench.seed_analytics``: a scratch database with a million bookings.

Fills the database at ``--database-url`` (made when missing, migrated) with two years of
booking history from ``hub.demo_history`` — the demo's generator at benchmark scale:
``--bookings`` bookings (exact) by ``--customers`` customers over ``--events`` past events
(and the on-sale events their pace gives) at ``--venues`` venues, with their tickets, holds,
payments, cancellations and refunds. The rows go in with binary COPY in one transaction
whose foreign keys and secondary indexes are dropped and made again around the load (the
same checks, once, at the end). Then ``ANALYZE``, the analytics rollups rebuilt from
scratch (``hub.services.rollups.rebuild``) and ``ANALYZE`` again. Prints the time of each
step.

It lives in ``tests/bench`` rather than ``loadtest`` because the generator is a hub module
that ``loadtest``'s import boundary (DESIGN §2's faces) does not reach.

    python -m tests.bench.seed_analytics --database-url postgresql://postgres@127.0.0.1/analytics_bench
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from engines.venue_layout import SectionSpec, layout_sections
from hub import demo_history as history
from hub.db import Database
from hub.db import demo_history as history_db
from hub.db import venues as venues_db
from hub.db.migrate import migrate
from hub.services import rollups

# Venue sizes: a scale per venue for three sections (rows x seats per row), 1,900-8,000 seats.
SCALES = (0.8, 1.0, 1.2, 1.5, 1.8, 2.2, 2.6, 3.0, 1.1, 1.4, 2.0, 3.4)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--database-url", required=True, help="the database to fill (made if missing)")
    p.add_argument("--bookings", type=int, default=1_000_000)
    p.add_argument("--customers", type=int, default=None, help="default: bookings / 5")
    p.add_argument("--events", type=int, default=None, help="past events; default bookings / 600")
    p.add_argument("--venues", type=int, default=len(SCALES))
    p.add_argument("--seed", type=int, default=2015)


@dataclass
class SeedReport:
    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def lines(self) -> list[str]:
        rows = ", ".join(f"{name} {n:,}" for name, n in self.rows.items())
        steps = ", ".join(f"{name} {s:.1f} s" for name, s in self.seconds.items())
        return [f"  rows: {rows}", f"  time: {steps}"]


async def ensure_database(url: str) -> None:
    """Create the database named in ``url`` unless it exists."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")))
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


def _venue_sections(scale: float) -> list[SectionSpec]:
    return [
        SectionSpec("Stalls", max(1, round(20 * scale)), 40),
        SectionSpec("Circle", max(1, round(10 * scale)), 40),
        SectionSpec("Gallery", max(1, round(8 * scale)), 36),
    ]


async def _venues(db: Database, count: int) -> tuple[history.VenuePlan, ...]:
    plans = []
    async with db.transaction() as con:
        for i in range(count):
            scale = SCALES[i % len(SCALES)]
            venue_id = await venues_db.insert(
                con,
                f"Bench hall {i + 1}",
                "Lisbon",
                [("Stalls", 6000), ("Circle", 4500), ("Gallery", 2500)],
                layout_sections(_venue_sections(scale)),
            )
            plans.append(history.venue_plan(venue_id, *await history_db.venue_seats(con, venue_id)))
    return tuple(plans)


async def seed(
    url: str,
    *,
    bookings: int = 1_000_000,
    customers: int | None = None,
    events: int | None = None,
    venues: int = len(SCALES),
    seed: int = 2015,
    now: int | None = None,
    say: Callable[[str], None] = print,
) -> SeedReport:
    """Fill the (empty) database at ``url``; see the module docstring.

    Raises:
        RuntimeError: the database has bookings already.
    """
    report = SeedReport()
    await ensure_database(url)
    await migrate(url)
    # No command timeout (the hub's pool has 30 s): a COPY of millions of rows, an index
    # build or the rollups' rebuild may take longer on a busy machine.
    db = Database(await asyncpg.create_pool(url, min_size=1, max_size=2))
    try:
        async with db.connection() as con:
            if await con.fetchval("SELECT EXISTS (SELECT 1 FROM bookings)"):
                raise RuntimeError(f"{url} has bookings already: give an empty database")
        began = time.perf_counter()
        plans = await _venues(db, venues)
        plan = history.Plan(
            now=now if now is not None else int(time.time()),
            bookings=bookings,
            customers=customers if customers is not None else max(1, bookings // 5),
            past_events=events if events is not None else max(1, bookings // 600),
            seed=seed,
            venues=plans,
        )
        started = time.perf_counter()
        generated = await asyncio.to_thread(history.generate, plan)
        report.seconds["generate"] = time.perf_counter() - started
        say(f"generated in {report.seconds['generate']:.1f} s: {_counts(generated)}")
        started = time.perf_counter()
        async with db.transaction() as con:
            written = await history_db.write(con, generated.tables(), defer_checks=True)
        report.rows = written.rows
        report.seconds["write"] = time.perf_counter() - started
        steps = ", ".join(f"{name} {s:.1f} s" for name, s in written.seconds.items())
        say(f"written in {report.seconds['write']:.1f} s ({steps}, commit included)")
        started = time.perf_counter()
        async with db.connection() as con:
            await con.execute("ANALYZE")
        report.seconds["analyze"] = time.perf_counter() - started
        started = time.perf_counter()
        await rollups.rebuild(db)
        report.seconds["rollup rebuild"] = time.perf_counter() - started
        say(f"rollups rebuilt in {report.seconds['rollup rebuild']:.1f} s")
        # The rollup tables were empty at the first ANALYZE: their plans need statistics.
        started = time.perf_counter()
        async with db.connection() as con:
            await con.execute("ANALYZE")
        report.seconds["analyze"] += time.perf_counter() - started
        report.seconds["total"] = time.perf_counter() - began
    finally:
        await db.close()
    return report


def _counts(generated: history.History) -> str:
    return ", ".join(f"{name} {len(t[next(iter(t))]):,}" for name, t in generated.tables().items())


async def run(args: argparse.Namespace) -> int:
    report = await seed(
        args.database_url,
        bookings=args.bookings,
        customers=args.customers,
        events=args.events,
        venues=args.venues,
        seed=args.seed,
    )
    print(f"seeded {args.database_url}")
    for line in report.lines():
        print(line)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.seed_analytics")
    add_arguments(parser)
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
