"""``python -m tests.bench.pricing``: end-to-end ``update-all`` over many events.

Seeds a scratch database (created on the given PostgreSQL server, migrated, dropped after)
directly in SQL: venues with sections and seats, ``--events`` on-sale events with a price
per section, and a few bookings per event spread over the last four hours (so the velocity
figures have rows to count). Then times what ``POST /advanced/pricing/update-all`` does —
the pricing service call and the encoding of its answer — in two cases:

- ``every price moves``: every current price reset to its base first, so every row is
  applied, written to ``event_prices`` and ``price_history``, and every event gets its
  version bumped and a ``price`` message published (the worst case: a first tick);
- ``steady``: the same state again, so nothing is applied (every later tick).

Prints the median, min and max of ``--runs`` runs of each, the rows applied, and the median
time of each step of the run (read, held seats, engine, write, messages, answer, announce:
the write overlaps the messages and the answer) and of the encoding. With ``--loaded``
every event's seats are in Redis first (half of the events with ``--held`` seats held), so
reading the held seats has seat bytes to carry.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from engines import pricing as engine
from hub import jsonenc
from hub.context import Hub, open_hub
from hub.db.migrate import migrate
from hub.inventory import HoldKind, HoldRequest
from hub.services import events, pricing
from hub.settings import Settings
from loadtest.seeding import seed


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--database-url",
        required=True,
        help="a PostgreSQL server's admin DSN: a scratch database is made on it and dropped",
    )
    p.add_argument("--redis-url", required=True, help="a Redis (keys under a private prefix)")
    p.add_argument("--events", type=int, default=10_000)
    p.add_argument("--sections", type=int, default=6)
    p.add_argument("--venues", type=int, default=100)
    p.add_argument("--bookings", type=int, default=2, help="per event, 3 seats each")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument(
        "--loaded",
        action="store_true",
        help="load every event's seats into Redis first (else none is: nothing held to read)",
    )
    p.add_argument("--held", type=int, default=10, help="with --loaded: seats held per event")


#: The steps of a pricing run, each timed on its own: (phase, module, function name). The
#: write runs while the messages and the answer are built, so those times overlap.
_PHASES: tuple[tuple[str, Any, str], ...] = (
    ("read", pricing, "read_state"),
    ("held seats", pricing, "held_seats"),
    ("engine", engine, "quote_prices"),
    ("write", pricing, "_write"),
    ("messages", pricing, "_messages"),
    ("answer", pricing, "_quotes"),
    ("announce", events, "changed_and_announced"),
)


@contextlib.contextmanager
def _timed_phases(spent: dict[str, float]) -> Iterator[None]:
    """Add each phase's time (ms) to ``spent`` while inside: the steps are wrapped where
    the service looks them up (module attributes), and put back on the way out."""
    saved = [(phase, module, name, getattr(module, name)) for phase, module, name in _PHASES]

    def wrap(phase: str, step: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            out = step(*args, **kwargs)
            if not inspect.isawaitable(out):
                spent[phase] = spent.get(phase, 0.0) + (time.perf_counter() - started) * 1000
                return out

            async def waited() -> Any:
                try:
                    return await out
                finally:
                    spent[phase] = spent.get(phase, 0.0) + (time.perf_counter() - started) * 1000

            return waited()

        return timed

    for phase, module, name, step in saved:
        setattr(module, name, wrap(phase, step))
    try:
        yield
    finally:
        for _, module, name, step in saved:
            setattr(module, name, step)


async def _load_seats(hub: Hub, url: str, held_per_event: int) -> None:
    """Every event's seat state in Redis, with ``held_per_event`` seats held in some."""
    con = await asyncpg.connect(url)
    try:
        rows = await con.fetch(
            "SELECT e.id, v.capacity FROM events e JOIN venues v ON v.id = e.venue_id"
        )
    finally:
        await con.close()
    user = uuid.uuid4()
    for n, row in enumerate(rows):
        await hub.inventory.load(row["id"], row["capacity"], [], {})
        if held_per_event and n % 2 == 0:  # half of the events hold something
            seats = list(range(0, row["capacity"], row["capacity"] // held_per_event))
            seats = seats[:held_per_event]
            request = HoldRequest(
                uuid.uuid4(), user, HoldKind.SINGLE, seats, [1] * len(seats), 3_600_000, None
            )
            await hub.inventory.place_hold(row["id"], request)


async def _time_update_all(
    settings: Settings, url: str, args: argparse.Namespace
) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {"every price moves": [], "steady": []}
    phases: dict[str, list[dict[str, float]]] = {case: [] for case in figures}
    applied: dict[str, int] = {}
    async with open_hub(settings) as hub:
        if args.loaded:
            await _load_seats(hub, url, args.held)
        await pricing.update_all(hub)  # warm: connections, statements, caches
        for _ in range(args.runs):
            con = await asyncpg.connect(url)
            await con.execute("UPDATE event_prices SET current_price_cents = base_price_cents")
            await con.close()
            for case in ("every price moves", "steady"):
                spent: dict[str, float] = {}
                with _timed_phases(spent):
                    started = time.perf_counter()
                    quotes = await pricing.update_all(hub)
                    encoding = time.perf_counter()
                    jsonenc.dumps({"events": quotes})
                    ended = time.perf_counter()
                spent["encode"] = (ended - encoding) * 1000
                figures[case].append((ended - started) * 1000)
                phases[case].append(spent)
                applied[case] = sum(s["applied"] for q in quotes for s in q["sections"])
        keys = [key async for key in hub.store.client.scan_iter(f"{settings.redis_prefix}*")]
        if keys:
            await hub.store.client.delete(*keys)
    for case, ms in figures.items():
        print(
            f"update-all {case:18s} median {statistics.median(ms):7.1f} ms  "
            f"min {min(ms):7.1f}  max {max(ms):7.1f}  ({applied[case]} rows applied)"
        )
        names = [phase for phase, _, _ in _PHASES] + ["encode"]
        print(
            "    median ms: "
            + ", ".join(
                f"{name} {statistics.median(run.get(name, 0.0) for run in phases[case]):.0f}"
                for name in names
            )
        )
    return figures


async def run(args: argparse.Namespace) -> int:
    name = f"evently_bench_pricing_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(args.database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = urlunsplit(urlsplit(args.database_url)._replace(path=f"/{name}"))
    try:
        await migrate(url)
        started = time.perf_counter()
        await seed(url, args)
        print(
            f"seeded {args.events} events x {args.sections} sections, "
            f"{args.events * args.bookings} bookings in {time.perf_counter() - started:.1f} s"
        )
        settings = Settings(
            database_url=url,
            redis_url=args.redis_url,
            secret_key="bench-pricing",
            redis_prefix=f"evently:bench-pricing:{uuid.uuid4().hex[:8]}:",
            log_level="warning",
            log_format="json",
        )
        await _time_update_all(settings, url, args)
    finally:
        admin = await asyncpg.connect(args.database_url)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.pricing")
    add_arguments(parser)
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
