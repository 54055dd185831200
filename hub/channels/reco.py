"""Live seat recommendations on an event channel: the ``reco`` message (DESIGN §5).

Idea: a connection states a wish in ``hello.reco``; the channel keeps, per event, a
``RecoBoard`` that groups its wishing watchers by ``SeatPreferences.key()``. A *pass* runs
the non-personal search (``engines.seating.seat_candidates``: filters, value, location,
group) once per group over the channel's seat mirror, then the personal re-rank
(``rank_candidates``) once per distinct taste in the group — every watcher without a taste
(anonymous, or no past tickets) shares one ranking with a neutral similarity — and writes
``reco`` to the watchers whose blocks differ from the ones they were last sent. "Blocks"
are the recommended seat sets in order: a block taken, a better one freed, or the order
changed sends a message; scores that drift while the blocks stay send nothing.

When: seat changes and price changes make the board *dirty*. A pass starts no sooner than
``RECO_INTERVAL`` after the previous one started (changes in between are coalesced into it)
and, should passes grow long (many distinct tastes), no sooner than its own CPU time over
``RECO_DUTY``, so the live deltas always keep most of the core. The channel tells the board
right after a flush, so a pass usually starts in the quiet part of a tick; and a pass is
cut into steps (a group's search, then about ``STEP_SECONDS`` of re-ranking and writing),
each its own callback of the event loop, so a flush that falls due goes out between two
steps instead of waiting for the whole pass. A watcher's first ``reco`` is sent when it
states its wish, from its group's latest candidates (searched at once for a new group).

Invariants:
- a watcher is in at most one group, that of its latest wish; a group with no watcher is
  dropped;
- a pass reads one state of the seats (the mirror when the pass starts) for all its groups;
- a watcher is never sent the same blocks twice in a row; one that was skipped (behind, or
  its write refused) is served by the next pass even when its group's candidates did not
  move.
Never awaits.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import numpy as np
import structlog

from engines.seating import (
    Candidate,
    SeatPreferences,
    SeatRecommendation,
    SeatTable,
    Taste,
    rank_candidates,
    seat_candidates,
)
from engines.seats import SeatCode
from hub.channels import codec
from hub.channels.codec import Encoded, Subprotocol
from hub.channels.peers import Peer

log = structlog.get_logger(__name__)

RECO_INTERVAL = 0.25  # seconds between the starts of two passes, at least
RECO_DUTY = 0.25  # the most of the core passes take in the long run
STEP_SECONDS = 0.003  # a step of a pass re-ranks and writes for about this long
MAX_SECTIONS = 100

_PROTOS = tuple(Subprotocol)

# Turns recommendations into the items of the ``reco`` message (those of the HTTP seat
# recommendations), given the price of each seat in cents.
Render = Callable[[Sequence[SeatRecommendation], np.ndarray], list[dict[str, Any]]]
# The event's seats as the channel mirrors them (one ``SeatCode`` byte each) and its current
# prices by section (the channel's numbers); None while the channel is (re)loading.
StateSource = Callable[[], tuple[bytes | bytearray, Mapping[str, Any]] | None]
# Writes one message to one watcher unless it is behind; True when written.
Deliver = Callable[[Peer, Encoded], bool]
TasteKey = tuple[tuple[tuple[str, float], ...], float | None, float | None] | None
Blocks = tuple[tuple[int, ...], ...]


@dataclass(frozen=True, eq=False)
class RecoVenue:
    """What the board needs of the event's venue: its seating table and how to render."""

    table: SeatTable
    render: Render


@dataclass(frozen=True, eq=False)
class RecoWish:
    """One connection's wish: its preferences, its taste (None: neutral) and the venue."""

    prefs: SeatPreferences
    taste: Taste | None
    venue: RecoVenue


def read_prefs(raw: Any, max_quantity: int) -> SeatPreferences:
    """The canonical preferences of a ``hello.reco`` map.

    ``quantity`` is required (1 to ``max_quantity``); ``max_price`` (per seat, a number of
    the event's currency, null or absent for no limit), ``preferred_sections`` (a list of
    section names) and ``accessibility_required`` (a boolean) are optional.

    Raises:
        ValueError: naming the field that is missing or wrong.
    """
    if not isinstance(raw, dict):
        raise ValueError("reco must be a map")
    unknown = sorted(str(k) for k in raw if k not in _FIELDS)
    if unknown:
        raise ValueError(f"reco has unknown fields: {', '.join(unknown)}")
    quantity = raw.get("quantity")
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise ValueError("reco.quantity must be an integer")
    if not 1 <= quantity <= max_quantity:
        raise ValueError(f"reco.quantity must be from 1 to {max_quantity}")
    max_price = raw.get("max_price")
    cents = None
    if max_price is not None:
        if isinstance(max_price, bool) or not isinstance(max_price, int | float):
            raise ValueError("reco.max_price must be a number or null")
        if not 0 <= max_price < 10**9:
            raise ValueError("reco.max_price must be from 0 to 1e9")
        # the budget in whole cents, rounded down: a seat over it by a fraction is over it
        cents = int((Decimal(str(max_price)) * 100).to_integral_value(ROUND_FLOOR))
    sections = raw.get("preferred_sections")
    if sections is None:
        sections = []
    if not isinstance(sections, list) or not all(isinstance(s, str) for s in sections):
        raise ValueError("reco.preferred_sections must be a list of section names")
    if len(sections) > MAX_SECTIONS:
        raise ValueError(f"reco.preferred_sections names more than {MAX_SECTIONS} sections")
    accessible = raw.get("accessibility_required", False)
    if accessible is None:
        accessible = False
    if not isinstance(accessible, bool):
        raise ValueError("reco.accessibility_required must be a boolean")
    return SeatPreferences(quantity, cents, frozenset(sections), accessible)


_FIELDS = frozenset({"quantity", "max_price", "preferred_sections", "accessibility_required"})


def unknown_sections(prefs: SeatPreferences, table: SeatTable) -> list[str]:
    """The preferred sections the venue does not have, sorted."""
    return sorted(prefs.preferred_sections - set(table.section_names))


def taste_key(taste: Taste | None) -> TasteKey:
    """Equal for tastes that rank alike: watchers with equal keys share one ranking."""
    if taste is None:
        return None
    return (tuple(sorted(taste.sections.items())), taste.row_rank, taste.price_cents)


@dataclass(eq=False, slots=True)
class _Watch:
    """One watcher's part in its group: its taste and the blocks it was sent last."""

    taste: Taste | None
    taste_key: TasteKey
    sent: Blocks | None = None


@dataclass(eq=False, slots=True)
class _Ranking:
    """One ranking of a group's candidates, encoded lazily once per subprotocol."""

    blocks: Blocks
    items: list[dict[str, Any]]
    encoded: list[Encoded | None]


@dataclass(eq=False, slots=True)
class _Group:
    """The watchers sharing one preference set, and their latest shared candidates."""

    prefs: SeatPreferences
    watchers: dict[Peer, _Watch] = field(default_factory=dict)
    candidates: tuple[Candidate, ...] | None = None
    prices: bytes = b""  # the per-seat prices the candidates were searched with
    # the rankings of the current candidates, by taste (None: the neutral one)
    rankings: dict[TasteKey, _Ranking] = field(default_factory=dict)
    # a watcher was skipped: serve the group in the next pass even if nothing moved
    owed: bool = False


class RecoBoard:
    """The ``reco`` watchers of one event channel. The channel creates it with the first
    wish, tells it of changes (``changed``) and departures (``leave``), and closes it when
    the channel goes."""

    def __init__(self, venue: RecoVenue, source: StateSource, deliver: Deliver) -> None:
        self.venue = venue
        self._source = source
        self._deliver = deliver
        self.groups: dict[tuple[Any, ...], _Group] = {}
        self._group_of: dict[Peer, _Group] = {}
        self._dirty = False
        self._handle: asyncio.Handle | None = None
        self._pass: Iterator[None] | None = None
        self._pass_started = float("-inf")  # loop time
        self._pass_busy = 0.0  # seconds of the current pass's steps so far
        self._next_due = float("-inf")
        self.passes = 0
        self.sent = 0

    def __len__(self) -> int:
        return len(self._group_of)

    @property
    def busy(self) -> bool:
        """A pass is due, scheduled or under way."""
        return self._dirty or self._handle is not None or self._pass is not None

    # -- watchers -------------------------------------------------------------------

    def join(self, peer: Peer, wish: RecoWish) -> None:
        """Add or move a watcher; it is sent its recommendations now if the seats are
        known, else by the pass that follows the channel's load."""
        self.leave(peer)
        key = wish.prefs.key()
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = _Group(wish.prefs)
        watch = _Watch(wish.taste, taste_key(wish.taste))
        group.watchers[peer] = watch
        self._group_of[peer] = group
        state = self._source()
        if state is None:
            return
        seats, prices = state
        prices_cents = self._prices_per_seat(prices)
        if group.candidates is None or group.prices != prices_cents.tobytes():
            self._search(group, _free(seats), prices_cents)
        self._send(group, peer, watch, self._ranking(group, watch, prices_cents))

    def leave(self, peer: Peer) -> None:
        group = self._group_of.pop(peer, None)
        if group is None:
            return
        group.watchers.pop(peer, None)
        if not group.watchers:
            self.groups.pop(group.prefs.key(), None)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._pass = None
        self.groups.clear()
        self._group_of.clear()

    # -- passes ---------------------------------------------------------------------

    def changed(self) -> None:
        """The seats or the prices changed: run a pass as soon as the throttle allows."""
        if not self.groups:
            return
        self._dirty = True
        if self._handle is not None or self._pass is not None:
            return  # a pass is scheduled or under way; its end looks at ``_dirty``
        loop = asyncio.get_running_loop()
        if self._next_due <= loop.time():
            self._handle = loop.call_soon(self._start)
        else:
            self._handle = loop.call_at(self._next_due, self._start)

    def _start(self) -> None:
        self._handle = None
        if not self._dirty or not self.groups:
            self._dirty = False
            return
        self._dirty = False
        self._pass_started = asyncio.get_running_loop().time()
        self._pass_busy = 0.0
        self._pass = self._steps()
        self._step()

    def _step(self) -> None:
        """Run one step of the pass, then let the loop run whatever is ready (a flush)."""
        self._handle = None
        steps = self._pass
        if steps is None:
            return
        began = time.perf_counter()
        try:
            done = next(steps, True) is True
        except Exception:
            log.exception("reco_pass_failed")
            done = True
        self._pass_busy += time.perf_counter() - began
        loop = asyncio.get_running_loop()
        if not done:
            self._handle = loop.call_soon(self._step)
            return
        self._pass = None
        self.passes += 1
        self._next_due = self._pass_started + max(RECO_INTERVAL, self._pass_busy / RECO_DUTY)
        if self._dirty:
            self._dirty = False
            self.changed()

    def _steps(self) -> Iterator[None]:
        state = self._source()
        if state is None:
            return  # loading: the load's end calls ``changed`` again
        seats, prices = state
        free = _free(seats)
        prices_cents = self._prices_per_seat(prices)
        price_key = prices_cents.tobytes()
        for key in list(self.groups):
            group = self.groups.get(key)
            if group is None:
                continue
            moved = self._search(group, free, prices_cents)
            if not moved and not group.owed:
                continue  # nobody's recommendations can have moved
            group.owed = False
            yield
            began = time.perf_counter()
            for peer, watch in list(group.watchers.items()):
                if time.perf_counter() - began > STEP_SECONDS:
                    yield
                    began = time.perf_counter()
                if group.watchers.get(peer) is not watch or group.prices != price_key:
                    continue  # it left or moved meanwhile, or the group was searched again
                self._send(group, peer, watch, self._ranking(group, watch, prices_cents))
            yield

    # -- one group ------------------------------------------------------------------

    def _search(self, group: _Group, free: np.ndarray, prices_cents: np.ndarray) -> bool:
        """Search the group's candidates again; True when they (or the prices) moved."""
        table = self.venue.table
        candidates = seat_candidates(table, free, prices_cents, table.section_names, group.prefs)
        prices = prices_cents.tobytes()
        if candidates == group.candidates and prices == group.prices:
            return False
        group.candidates, group.prices = candidates, prices
        group.rankings = {}
        return True

    def _ranking(self, group: _Group, watch: _Watch, prices_cents: np.ndarray) -> _Ranking:
        """The ranking of the group's current candidates for the watcher's taste (shared by
        every watcher of the group with an equal taste)."""
        ranking = group.rankings.get(watch.taste_key)
        if ranking is None:
            table = self.venue.table
            assert group.candidates is not None
            recs = rank_candidates(
                table, group.candidates, table.section_names, prices_cents, watch.taste
            )
            blocks = tuple(rec.seats for rec in recs)
            items = _plain(self.venue.render(recs, prices_cents))
            ranking = group.rankings[watch.taste_key] = _Ranking(
                blocks, items, [None] * len(_PROTOS)
            )
        return ranking

    def _send(self, group: _Group, peer: Peer, watch: _Watch, ranking: _Ranking) -> None:
        if watch.sent == ranking.blocks:
            return
        encoded = ranking.encoded[peer.proto]
        if encoded is None:
            message = {"t": "reco", "recommendations": ranking.items}
            encoded = ranking.encoded[peer.proto] = codec.encode(message, peer.proto)
        if self._deliver(peer, encoded):
            watch.sent = ranking.blocks
            self.sent += 1
        else:  # behind: try again with the next pass (and keep passing until it is served)
            group.owed = True
            self.changed()

    def _prices_per_seat(self, prices: Mapping[str, Any]) -> np.ndarray:
        """Each seat's current price in cents, from the channel's prices by section (a
        section without a price counts as free of charge: the channel knows none)."""
        names = self.venue.table.section_names
        by_code = np.array(
            [round(float(prices.get(name) or 0) * 100) for name in names], dtype=np.int64
        )
        return by_code[self.venue.table.section]


def _plain(value: Any) -> Any:
    """The channel's forms of rendered items: amounts as plain numbers, ids as strings (what
    both subprotocols carry, as in the channel's other messages)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _free(seats: bytes | bytearray) -> np.ndarray:
    """A fresh bool array, True for each free seat (a copy: the mirror changes under it)."""
    return np.frombuffer(seats, dtype=np.uint8) == SeatCode.FREE
