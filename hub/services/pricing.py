"""Dynamic pricing: the leader's tick, on-demand updates and the price history.

Idea. A pricing run reads the state of every on-sale section (``hub.db.pricing``: one query
per batch of events, plus the held seats from Redis in one pipelined round trip per
chunk of events), prices every row at once with the pure engine
(``engines.pricing.quote_prices``), writes the applied prices and their history rows in one
statement per batch, then, for each event whose price moved, bumps the event's version
(from then on no process holds seats at the old price, and every read shows the new one)
and publishes a ``price`` message on its channel: ``events.changed_and_announced``, again
one pipelined round trip per chunk of events, never one per event. The write's batches run
`WRITE_CONNECTIONS` at a time while the messages and the answer are built (yielding to the
event loop every `YIELD_EVERY` events, so the process keeps serving meanwhile).

Velocity. The leader owns a `VelocityTracker` for as long as it leads (``pricing_loop``
creates it; nothing else holds it): each tick advances it by the seats booked since the
previous tick, so the normal rate is the EWMA of the engine. On-demand updates
(``update_event``, ``update_all``) never advance that state, and do not read it either:
they may run in any process, and the tracker lives only in the leader's loop. They take
both figures from PostgreSQL instead: recent = seats booked in the velocity window; normal
= what `normal_rate` estimates from the seats booked in the `BASELINE_SECONDS` before it.
The leader seeds each event it starts to track with that same estimate, so a new leader
(or a restart) starts from the event's recent history instead of a blank prior, and the
two paths agree on an event with a steady pace.

Invariants: a price is written only where the current price is still the one it was
computed from (a concurrent admin edit or another run wins; its change is not reported as
applied); the version is bumped after the commit and before the ``price`` message, so a
watcher who sees a new price and holds gets that price; a held seat keeps the price
quoted at hold time (holds store their prices). Nothing here touches the hold path.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import structlog

from engines import pricing as engine
from engines.money import cents_to_decimal
from engines.seats import SeatCode
from hub import jsonenc
from hub.context import Hub
from hub.db import events as events_db
from hub.db import fence as leader_fence
from hub.db import pricing as pricing_db
from hub.errors import Conflict, NotFound
from hub.leader import Fence, StaleLeader, current_fence
from hub.services import events, live_seats

log = structlog.get_logger(__name__)

#: Events per batch: one state query and one write statement each.
BATCH_EVENTS = 2_000
#: Write statements in flight at once, each on its own connection and in its own
#: transaction (batches are whole events, so no event is split between two).
WRITE_CONNECTIONS = 2
#: Events between two yields to the event loop while the messages and the answer are built:
#: the process keeps serving (holds) meanwhile, and the write's batches keep going.
YIELD_EVERY = 500
#: The history before the velocity window that estimates an event's normal rate.
BASELINE_SECONDS = 2 * engine.VELOCITY_HALF_LIFE_SECONDS
#: The weight of that history against the prior: what an EWMA started at the prior
#: `BASELINE_SECONDS` ago gives the intervals since.
BASELINE_WEIGHT = 1.0 - 0.5 ** (BASELINE_SECONDS / engine.VELOCITY_HALF_LIFE_SECONDS)

HistoryFilters = pricing_db.HistoryFilters

_NIL = uuid.UUID(int=0)
_HELD = int(SeatCode.HELD)


@dataclass(frozen=True, slots=True, eq=False)
class PricingState:
    """The state of every priced row of one run, as engine columns and the names they map to."""

    event_ids: list[uuid.UUID]  # per event
    venue_ids: list[uuid.UUID]  # per event
    sections: list[str]  # per row
    event: np.ndarray  # per row: index into the event lists
    base_cents: np.ndarray
    current_cents: np.ndarray
    capacity: np.ndarray
    sold: np.ndarray
    seconds_to_start: np.ndarray  # per event
    recent: np.ndarray  # per event: seats booked in the span asked for
    baseline: np.ndarray  # per event: seats booked in the baseline before the window
    waitlisted: np.ndarray  # per event
    until: dt.datetime | None  # PostgreSQL's "now" of the read (None: nothing on sale)

    def event_capacity(self) -> np.ndarray:
        out: np.ndarray = np.bincount(
            self.event, weights=self.capacity, minlength=len(self.event_ids)
        )
        return out


def normal_rate(
    capacity: np.ndarray, baseline: np.ndarray, *, interval_seconds: float
) -> np.ndarray:
    """Seats an event normally sells per interval, estimated from PostgreSQL's history.

    A blend of the pace of the `BASELINE_SECONDS` before the velocity window and the
    engine's cold-start prior (selling out evenly over a month), weighted as an EWMA with
    the engine's half-life would weigh them.
    """
    prior = engine.velocity_prior(capacity, interval_seconds=interval_seconds)
    observed = np.asarray(baseline, dtype=np.float64) * (interval_seconds / BASELINE_SECONDS)
    out: np.ndarray = BASELINE_WEIGHT * observed + (1.0 - BASELINE_WEIGHT) * prior
    return out


class VelocityTracker:
    """The leader's booking velocity across ticks: one `engines.pricing.VelocityState`, the
    order of the events in it and the end of the last interval counted."""

    def __init__(self, interval_seconds: float) -> None:
        self.interval_seconds = interval_seconds
        self.state = engine.start_velocity(np.zeros(0), interval_seconds=interval_seconds)
        self.order: dict[uuid.UUID, int] = {}
        self.since: dt.datetime | None = None

    def advance(self, state: PricingState) -> tuple[np.ndarray, np.ndarray]:
        """Follow the events now on sale and count ``state.recent`` as one interval.

        Returns:
            ``(recent_bookings, normal_bookings)`` per event of ``state``.
        """
        source = np.array([self.order.get(e, -1) for e in state.event_ids], dtype=np.int64)
        prior = normal_rate(
            state.event_capacity(), state.baseline, interval_seconds=self.interval_seconds
        )
        velocity = engine.realign_velocity(self.state, source, prior)
        self.state = engine.update_velocity(velocity, state.recent)
        self.order = {event_id: i for i, event_id in enumerate(state.event_ids)}
        if state.until is not None:
            self.since = state.until
        return self.state.recent_bookings(), self.state.normal_bookings()


def history_velocity(state: PricingState) -> tuple[np.ndarray, np.ndarray]:
    """``(recent_bookings, normal_bookings)`` from PostgreSQL alone (on-demand updates)."""
    normal = normal_rate(
        state.event_capacity(),
        state.baseline,
        interval_seconds=engine.VELOCITY_WINDOW_SECONDS,
    )
    return state.recent.astype(np.float64), normal


# --- use cases -----------------------------------------------------------------------------


async def pricing_loop(hub: Hub) -> None:
    """Leader loop: a pricing tick every ``pricing_interval_seconds`` over every on-sale
    event. The velocity state lives here, for as long as this process leads."""
    interval = hub.settings.pricing_interval_seconds
    tracker = VelocityTracker(interval)
    fence = current_fence()  # the token of the lease this loop was started under
    while True:
        # A new leader waits one interval: its first tick then has an interval to count.
        await asyncio.sleep(interval)
        try:
            if hub.settings.pricing_offload:
                # The tracker travels with the run (a few arrays) and comes back advanced:
                # the child keeps no state, so a replaced child loses nothing.
                tracker = await hub.offload.run(_tick_in_child, tracker, fence)
            else:
                await run_tick(hub, tracker, fence)
        except asyncio.CancelledError:
            raise
        except StaleLeader as exc:
            log.warning("pricing_tick_fenced", token=exc.token, current=exc.current)
        except Exception:
            log.exception("pricing_tick_failed")


async def _tick_in_child(
    hub: Hub, tracker: VelocityTracker, fence: Fence | None
) -> VelocityTracker:
    await run_tick(hub, tracker, fence)
    return tracker


async def run_tick(
    hub: Hub, tracker: VelocityTracker, fence: Fence | None = None
) -> list[dict[str, Any]]:
    """One leader tick: advance the velocity state by the seats booked since the last tick,
    reprice every on-sale event, apply and announce the changes.

    Args:
        fence: the leader's fencing token (``hub.leader``), checked in each write's
            transaction: a tick of a superseded leader writes and announces nothing.

    Raises:
        StaleLeader: a newer leader has written.

    Returns:
        The quotes, as `update_all` returns them.
    """
    window = pricing_db.Window(
        window_seconds=engine.VELOCITY_WINDOW_SECONDS,
        baseline_seconds=BASELINE_SECONDS,
        since=tracker.since,
    )
    state = await read_state(hub, window)
    recent, normal = tracker.advance(state)
    return await _reprice(hub, state, recent, normal, source="tick", fence=fence)


async def update_all(hub: Hub) -> list[dict[str, Any]]:
    """Reprice every on-sale event now (velocity from PostgreSQL; see the module docstring).

    Returns:
        One ``{event_id, sections: [{section, old_price, new_price, applied, factors}]}``
        per event priced.
    """
    state = await read_state(hub, _history_window())
    recent, normal = history_velocity(state)
    return await _reprice(hub, state, recent, normal, source="update_all")


async def reprice_all(hub: Hub) -> bytes:
    """``POST /advanced/pricing/update-all``: `update_all`, answered as encoded JSON.

    The run and the encoding of its answer (seconds of Python over 10,000 events) happen in
    the niced child (``hub.offload``) unless ``pricing_offload`` is off, so a serving
    process only waits for the bytes and keeps selling meanwhile.
    """
    if hub.settings.pricing_offload:
        return await hub.offload.run(_answer_all)
    return await _answer_all(hub)


async def _answer_all(hub: Hub) -> bytes:
    return jsonenc.dumps({"events": await update_all(hub)})


async def update_event(hub: Hub, event_id: uuid.UUID) -> list[dict[str, Any]]:
    """Reprice one event now, as `update_all` does.

    Raises:
        NotFound: no such event.
        Conflict: the event is cancelled or has started: it is not on sale.
    """
    state = await read_state(hub, _history_window(), only=[event_id])
    if not state.event_ids:
        async with hub.db.connection() as con:
            row = await events_db.by_id(con, event_id)
        if row is None:
            raise NotFound(f"No such event: {event_id}")
        raise Conflict("The event is not on sale (cancelled or started): it is not priced")
    recent, normal = history_velocity(state)
    return await _reprice(hub, state, recent, normal, source="update_event")


async def price_history(
    hub: Hub,
    event_id: uuid.UUID,
    filters: HistoryFilters,
    *,
    page: int,
    size: int,
) -> dict[str, Any]:
    """The event's applied price changes, oldest first: ``{items, page, size, total}``.

    A price set by an admin (``PATCH /events``) sets the base price too, so it shows with
    every factor 0: nothing moved it away from its base.

    Raises:
        NotFound: no such event.
    """
    async with hub.db.connection() as con:
        if await events_db.by_id(con, event_id) is None:
            raise NotFound(f"No such event: {event_id}")
        rows, total = await pricing_db.history(
            con, event_id, filters, limit=size, offset=(page - 1) * size
        )
    items = [
        {
            "section": row["section"],
            "old_price": cents_to_decimal(row["old_cents"]),
            "new_price": cents_to_decimal(row["new_cents"]),
            "factors": {name: float(row["factors"].get(name, 0.0)) for name in engine.FACTOR_NAMES},
            "created_at": jsonenc.isoformat(row["created_at"]),
        }
        for row in rows
    ]
    return {"items": items, "page": page, "size": size, "total": total}


# --- reading the state -------------------------------------------------------------------


def _history_window() -> pricing_db.Window:
    return pricing_db.Window(
        window_seconds=engine.VELOCITY_WINDOW_SECONDS, baseline_seconds=BASELINE_SECONDS
    )


async def read_state(
    hub: Hub, window: pricing_db.Window, *, only: Sequence[uuid.UUID] | None = None
) -> PricingState:
    """The state of every on-sale section (of the events ``only`` names, if given): one
    PostgreSQL query per `BATCH_EVENTS` events (a record per event), every batch read at
    the first one's time."""
    records: list[Any] = []
    after, until = _NIL, window.until
    async with hub.db.connection() as con:
        while True:
            batch = await pricing_db.state_batch(
                con,
                after=after,
                limit=BATCH_EVENTS,
                window=pricing_db.Window(
                    window.window_seconds, window.baseline_seconds, window.since, until
                ),
                only=only,
            )
            records.extend(batch)
            if not batch:
                break
            until = batch[0]["until"]
            after = batch[-1]["event_id"]
            # Every event has a price per section (event creation sees to it), so a batch of
            # fewer events than asked for is the last.
            if len(batch) < BATCH_EVENTS:
                break
    return _state_of(records, until)


def _state_of(records: Sequence[Any], until: dt.datetime | None) -> PricingState:
    """Engine columns from one record per event (its sections' figures as arrays)."""
    counts = [len(row["sections"]) for row in records]
    rows = sum(counts)

    def per_row(name: str) -> np.ndarray:
        values = itertools.chain.from_iterable(row[name] for row in records)
        return np.fromiter(values, dtype=np.int64, count=rows)

    def per_event(name: str, dtype: type) -> np.ndarray:
        return np.fromiter((row[name] for row in records), dtype=dtype, count=len(records))

    return PricingState(
        event_ids=[row["event_id"] for row in records],
        venue_ids=[row["venue_id"] for row in records],
        sections=list(itertools.chain.from_iterable(row["sections"] for row in records)),
        event=np.repeat(np.arange(len(records), dtype=np.int64), counts),
        base_cents=per_row("base_cents"),
        current_cents=per_row("current_cents"),
        # A section without seats cannot sell: capacity 1 keeps the engine's ratios finite.
        capacity=np.maximum(per_row("capacity"), 1),
        sold=per_row("sold"),
        seconds_to_start=per_event("seconds_to_start", np.float64),
        recent=per_event("recent", np.int64),
        baseline=per_event("baseline", np.int64),
        waitlisted=per_event("waitlisted", np.int64),
        until=until,
    )


async def held_seats(hub: Hub, state: PricingState) -> np.ndarray:
    """Seats held per row of ``state``, from each event's live seat bytes in Redis (an event
    Redis has not loaded has nothing held). Mapped to sections with the venue's cached
    layout, read only for events that hold something."""
    held = np.zeros(len(state.sections), dtype=np.int64)
    first_row = np.searchsorted(state.event, np.arange(len(state.event_ids)))
    snapshots = await hub.inventory.snapshots(state.event_ids)
    for i, snapshot in enumerate(snapshots):
        if snapshot is None or _HELD not in snapshot[1]:
            continue
        layout = await live_seats.layout_of(hub, state.venue_ids[i])
        codes = np.frombuffer(snapshot[1], dtype=np.uint8)
        if codes.size != len(layout):
            continue  # a venue changed under a stale cache: count nothing held
        names = layout.table.section_names
        counts = np.bincount(layout.table.section[codes == _HELD], minlength=len(names))
        by_name = dict(zip(names, counts.tolist(), strict=True))
        row = int(first_row[i])
        while row < len(state.sections) and state.event[row] == i:
            held[row] = by_name.get(state.sections[row], 0)
            row += 1
    return held


# --- pricing, writing, announcing ----------------------------------------------------------


async def _reprice(
    hub: Hub,
    state: PricingState,
    recent: np.ndarray,
    normal: np.ndarray,
    *,
    source: str,
    fence: Fence | None = None,
) -> list[dict[str, Any]]:
    if not state.event_ids:
        return []
    inputs = engine.PricingInputs(
        event=state.event,
        base_cents=state.base_cents,
        current_cents=state.current_cents,
        capacity=state.capacity,
        sold=state.sold,
        held=await held_seats(hub, state),
        seconds_to_start=state.seconds_to_start,
        recent_bookings=recent,
        normal_bookings=normal,
        waitlisted=state.waitlisted,
    )
    result = engine.quote_prices(inputs)
    # Each row's factors keyed by name, made once for the messages and the answer both.
    factors = [dict(zip(engine.FACTOR_NAMES, f, strict=True)) for f in result.factors.tolist()]
    expected = set(np.flatnonzero(result.applied).tolist())
    # The messages and the answer are built while PostgreSQL writes, for the rows the engine
    # applied, and built again in the rare run where a concurrent change kept some of them
    # from being written. Nothing is announced before the write has committed.
    writing = asyncio.ensure_future(_write(hub, state, result, fence))
    try:
        messages = await _messages(state, result, factors, expected)
        quotes = await _quotes(state, result, factors, expected)
    finally:
        # Never left half done: whatever happened here, the batches run to their end.
        applied = await writing
    if applied != expected:
        await _reread_lost(hub, state, expected - applied)
        messages = await _messages(state, result, factors, applied)
        quotes = await _quotes(state, result, factors, applied)
    await events.changed_and_announced(hub, messages)
    log.info(
        "prices_updated",
        source=source,
        events=len(state.event_ids),
        rows=len(state.sections),
        applied=len(applied),
        events_changed=len(messages),
    )
    return quotes


async def _reread_lost(hub: Hub, state: PricingState, lost: set[int]) -> None:
    """Rows whose write lost to a price set meanwhile (an admin's edit): their current
    price is whatever that edit set, read again, so the events' ``price`` messages show it
    rather than the price this run started from."""
    for i in sorted({int(state.event[r]) for r in lost}):
        event = await events.load_event(hub, state.event_ids[i], fresh=True)
        for r in np.flatnonzero(state.event == i).tolist():
            state.current_cents[r] = event.current_cents.get(
                state.sections[r], int(state.current_cents[r])
            )


async def _write(
    hub: Hub, state: PricingState, result: engine.PricingResult, fence: Fence | None
) -> set[int]:
    """Write the applied rows, one statement per batch of events, `WRITE_CONNECTIONS` at a
    time; return the rows written. With a leader's ``fence``, each batch's transaction
    checks it first (`hub.db.fence.hold`), so a superseded leader's batches all fail."""
    rows = np.flatnonzero(result.applied)
    if rows.size == 0:
        return set()
    batch_of = state.event[rows] // BATCH_EVENTS
    slots = asyncio.Semaphore(WRITE_CONNECTIONS)

    async def write(part: np.ndarray) -> list[int]:
        factors = result.factors[part].T.tolist()
        prices = pricing_db.NewPrices(
            event_ids=[state.event_ids[i] for i in state.event[part].tolist()],
            sections=[state.sections[r] for r in part.tolist()],
            old_cents=state.current_cents[part].tolist(),
            new_cents=result.new_cents[part].tolist(),
            demand=factors[engine.Factor.DEMAND],
            time=factors[engine.Factor.TIME],
            velocity=factors[engine.Factor.VELOCITY],
            waitlist=factors[engine.Factor.WAITLIST],
            tags=part.tolist(),
        )
        async with slots, hub.db.transaction() as con:
            if fence is not None:
                await leader_fence.hold(con, fence)
            return await pricing_db.apply_prices(con, prices)

    batches = [rows[batch_of == b] for b in np.unique(batch_of).tolist()]
    done = await asyncio.gather(*(write(part) for part in batches))
    return set(itertools.chain.from_iterable(done))


async def _messages(
    state: PricingState,
    result: engine.PricingResult,
    factors: Sequence[dict[str, float]],
    applied: set[int],
) -> list[tuple[uuid.UUID, dict[str, object]]]:
    """The ``price`` message of each event with a row in ``applied``, in event order."""
    first_row = np.searchsorted(state.event, np.arange(len(state.event_ids) + 1)).tolist()
    written = sorted(applied)
    current = state.current_cents.copy()
    current[written] = result.new_cents[written]
    # Python floats and ints once for every row: indexing numpy arrays row by row would
    # make a numpy scalar per figure.
    prices = (current / 100).tolist()
    # The contract's {demand, time, velocity, waitlist}: the mean over the sections whose
    # price moved, each section's own factors beside it.
    moved_event = state.event[written]
    count = np.maximum(np.bincount(moved_event, minlength=len(state.event_ids)), 1)
    means = [
        (
            np.bincount(moved_event, result.factors[written, f], len(state.event_ids)) / count
        ).tolist()
        for f in engine.Factor
    ]
    items: list[tuple[uuid.UUID, dict[str, object]]] = []
    for n, i in enumerate(np.unique(moved_event).tolist()):
        if n % YIELD_EVERY == YIELD_EVERY - 1:
            await asyncio.sleep(0)
        rows = range(first_row[i], first_row[i + 1])
        message: dict[str, object] = {
            "t": "price",
            "prices": {state.sections[r]: prices[r] for r in rows},
            "factors": dict(zip(engine.FACTOR_NAMES, (m[i] for m in means), strict=True)),
            "section_factors": {state.sections[r]: factors[r] for r in rows if r in applied},
        }
        items.append((state.event_ids[i], message))
    return items


async def _quotes(
    state: PricingState,
    result: engine.PricingResult,
    factors: Sequence[dict[str, float]],
    applied: set[int],
) -> list[dict[str, Any]]:
    # Every column as Python objects once (numpy indexing per field makes a numpy scalar
    # each), and each amount's Decimal built once: prices repeat across rows.
    old, new = state.current_cents.tolist(), result.new_cents.tolist()
    event_of = state.event.tolist()
    amounts: dict[int, Decimal] = {}

    def money(cents: int) -> Decimal:
        amount = amounts.get(cents)
        if amount is None:
            amount = amounts[cents] = cents_to_decimal(cents)
        return amount

    out: list[dict[str, Any]] = []
    sections: list[dict[str, Any]] = []
    last = -1
    for row, section in enumerate(state.sections):
        if event_of[row] != last:
            last = event_of[row]
            if last % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)
            sections = []
            out.append({"event_id": state.event_ids[last], "sections": sections})
        sections.append(
            {
                "section": section,
                "old_price": money(old[row]),
                "new_price": money(new[row]),
                "applied": row in applied,
                "factors": factors[row],
            }
        )
    return out
