"""What the admin stream shows that needs the hub: the events on sale with their live fill
and current prices (``SalesBoard``), and the hooks for the other panels' figures.

The lifespan attaches these to the process's admin feed (``hub.channels.admin``), which
reads them once a second while an admin watches, so each is built to be cheap per second:

- ``SalesBoard``: every ``REFRESH_SECONDS`` two PostgreSQL queries pick the candidates,
  at most ``CANDIDATES``: the upcoming scheduled events with the most holds in the last
  ``ACTIVE_SECONDS`` (from the hold log, an index range scan of at most ``ACTIVE_SCAN``
  rows; so an event far in the future that is selling is one), then the soonest upcoming
  ones; one pipelined Redis round trip reads each one's ``seq``; the board is the
  ``LIMIT`` events whose seats changed most since the previous refresh (ties: the
  candidates' order, most recently held first), and their
  prices are read then (prices move only on a pricing tick or an admin's edit). Each
  second in between costs one pipelined Redis round trip: the seat bytes of the board's
  events, counted in C (``engines.seats.count_seats``). An event Redis does not hold yet is
  loaded from PostgreSQL once, as any reader of its seats would.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engines.money import cents_to_decimal
from engines.seats import count_seats
from hub.channels.admin import Source
from hub.context import Hub
from hub.db import events as events_db
from hub.db import holds as holds_db
from hub.services import health, live_seats, waiting_room

REFRESH_SECONDS = 5.0
CANDIDATES = 200
# The events held in the last ACTIVE_SECONDS come first among the candidates, counted over
# at most the ACTIVE_SCAN newest holds (hub.db.holds.recently_held).
ACTIVE_SECONDS = 300.0
ACTIVE_SCAN = 20_000
LIMIT = 12


@dataclass(frozen=True, slots=True)
class BoardEvent:
    id: uuid.UUID
    name: str
    starts_at: dt.datetime
    capacity: int
    prices: Mapping[str, float]


class SalesBoard:
    """The events on sale the admin panel shows, with live fill and current prices.

    Call it (a ``hub.channels.admin.Source``) for ``{"events": [{event_id, name,
    starts_at, total, available, held, sold, fill, prices{section: price}}]}``, most active
    first; ``fill`` is the sold fraction of the seats.
    """

    def __init__(self, hub: Hub, *, limit: int = LIMIT) -> None:
        self.hub = hub
        self.limit = limit
        self.board: list[BoardEvent] = []
        self._seqs: dict[uuid.UUID, int] = {}
        self._refreshed = -REFRESH_SECONDS

    async def __call__(self) -> dict[str, Any]:
        if time.monotonic() - self._refreshed >= REFRESH_SECONDS:
            await self.refresh()
        board = self.board
        snapshots = await self.hub.inventory.snapshots([event.id for event in board])
        items = []
        for event, snapshot in zip(board, snapshots, strict=True):
            if snapshot is None:  # not in Redis yet: load it, as any reader of its seats
                _, states = await live_seats.seat_states(self.hub, event.id, event.capacity)
            else:
                states = snapshot[1]
            counts = count_seats(states)
            total = counts["total"]
            items.append(
                {
                    "event_id": str(event.id),
                    "name": event.name,
                    "starts_at": event.starts_at.isoformat(),
                    **counts,
                    "fill": round(counts["sold"] / total, 4) if total else None,
                    "prices": dict(event.prices),
                }
            )
        return {"events": items}

    async def refresh(self) -> None:
        """Choose the board's events again and read their prices."""
        now = dt.datetime.now(dt.UTC)
        async with self.hub.db.connection() as con:
            active = await holds_db.recently_held(
                con, seconds=ACTIVE_SECONDS, scan=ACTIVE_SCAN, limit=CANDIDATES
            )
            soonest, _ = await events_db.search(
                con, events_db.Filters(date_from=now), limit=CANDIDATES
            )
            rows = candidates(active, soonest, CANDIDATES)
            seqs = await self._read_seqs([row["id"] for row in rows])
            chosen = choose(rows, seqs, self._seqs, self.limit)
            prices = await events_db.prices_of(con, [row["id"] for row in chosen])
        by_event: dict[uuid.UUID, dict[str, float]] = {}
        for price in prices:
            cents = price["current_price_cents"]
            by_event.setdefault(price["event_id"], {})[price["section"]] = float(
                cents_to_decimal(cents)
            )
        self.board = [
            BoardEvent(
                row["id"],
                row["name"],
                row["starts_at"],
                row["capacity"],
                by_event.get(row["id"], {}),
            )
            for row in chosen
        ]
        self._seqs = seqs
        self._refreshed = time.monotonic()

    async def _read_seqs(self, event_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
        keys = self.hub.store.keys
        async with self.hub.store.client.pipeline(transaction=False) as pipe:
            for event_id in event_ids:
                pipe.get(keys.event(event_id, "seq"))
            values = await pipe.execute()
        return {
            event_id: int(value)
            for event_id, value in zip(event_ids, values, strict=True)
            if value is not None
        }


def candidates(active: Sequence[Any], soonest: Sequence[Any], limit: int) -> list[Any]:
    """The board's candidates, at most ``limit``: the events held most recently (in that
    order), then the soonest upcoming scheduled ones not among them."""
    rows = list(active[:limit])
    seen = {row["id"] for row in rows}
    for row in soonest:
        if len(rows) >= limit:
            break
        if row["status"] == "scheduled" and row["id"] not in seen:
            rows.append(row)
            seen.add(row["id"])
    return rows


def choose(
    rows: Sequence[Any],
    seqs: Mapping[uuid.UUID, int],
    before: Mapping[uuid.UUID, int],
    limit: int,
) -> list[Any]:
    """The ``limit`` rows whose ``seq`` grew most since ``before`` (an event first seen
    counts as unchanged), ties in the rows' order (``candidates``); returned in that order
    of activity."""

    def activity(item: tuple[int, Any]) -> tuple[int, int]:
        position, row = item
        now, then = seqs.get(row["id"]), before.get(row["id"])
        grown = now - then if now is not None and then is not None else 0
        return (-max(grown, 0), position)

    ranked = sorted(enumerate(rows), key=activity)
    return [row for _, row in ranked[:limit]]


class BreakerStates:
    """``{"breakers": hub.breakers.states()}``: free each second; the openings other
    processes shared through Redis are folded in every ``REFRESH_SECONDS`` (one GET per
    breaker), so a remote opening shows within that time (a local one at once)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._refreshed = -REFRESH_SECONDS

    async def __call__(self) -> dict[str, Any]:
        if time.monotonic() - self._refreshed >= REFRESH_SECONDS:
            self._refreshed = time.monotonic()
            await self.hub.breakers.refresh()
        return {"breakers": self.hub.breakers.states()}


async def hub_summary(hub: Hub) -> dict[str, Any]:
    """``{"hub": health.live_summary(hub), "alerts": [...]}``: the figures over every hub
    process and the current alerts (two Redis round trips, no PostgreSQL; see
    ``live_summary``)."""
    summary = await health.live_summary(hub)
    return {"hub": summary, "alerts": summary.get("alerts", [])}


def sources(hub: Hub) -> dict[str, Source]:
    """Every source of the admin stream's hub-wide fields, by name, for the lifespan to
    attach to the admin feed. This is the one place a new panel figure is wired in.

    """
    return {
        "sales": SalesBoard(hub),
        "breakers": BreakerStates(hub),
        "hub": functools.partial(hub_summary, hub),
        "waiting_rooms": functools.partial(waiting_rooms, hub),
    }


async def waiting_rooms(hub: Hub) -> dict[str, Any]:
    """``{"waiting_rooms": [{event_id, name, status, waiting, admitted, admission_rate}]}``
    for every room that is on, longest queue first (empty when none is): free while no
    room is on, else one pipelined Redis round trip (``waiting_room.queues``)."""
    return {"waiting_rooms": await waiting_room.queues(hub)}
