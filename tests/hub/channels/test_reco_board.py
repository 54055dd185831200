"""The reco board on its own: who shares a search and a message, who is sent what, and how
often passes run. Peers here are in-memory (they record what is written to them); the
board's seats are a byte array the test changes, as the channel's mirror would be."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np

from engines.seating import SeatPreferences, SeatRecommendation, SeatTable, Taste
from engines.seats import SeatCode, SeatSpec
from hub.channels import codec, reco
from hub.channels.codec import Encoded, Subprotocol
from hub.channels.peers import Peer
from tests.waiting import eventually

PRICES = {"Front": 80.0, "Back": 30.0}


class MemoryPeer(Peer):
    """A connection that keeps what it is sent; ``behind`` makes the board skip it."""

    def __init__(self, proto: Subprotocol = Subprotocol.MSGPACK) -> None:
        super().__init__(proto, "127.0.0.1")
        self.frames: list[Encoded] = []
        self.behind = False

    @property
    def open(self) -> bool:
        return True

    def write(self, message: Encoded) -> None:
        self.frames.append(message)

    def buffered(self) -> int:
        return 0

    def close(self, code: int, reason: str = "") -> None:
        pass

    def blocks(self, at: int = -1) -> list[list[int]]:
        message = _decode(self.frames[at])
        assert message["t"] == "reco"
        return [item["seats"] for item in message["recommendations"]]


def _decode(encoded: Encoded) -> dict[str, Any]:
    payload = encoded.payload.decode() if encoded.text else encoded.payload
    return codec.decode_client(payload)


def _table() -> SeatTable:
    """Two sections of 4 rows of 10; "Front" nearest the stage."""
    seats = [
        SeatSpec(name, f"R{row}", n + 1, float(n), float(row), n == 0, base + row + abs(n - 4.5))
        for name, base in (("Front", 5.0), ("Back", 20.0))
        for row in range(4)
        for n in range(10)
    ]
    return SeatTable.from_seats(seats)


def _render(recs: Sequence[SeatRecommendation], prices: np.ndarray) -> list[dict[str, Any]]:
    return [{"seats": list(r.seats), "similarity": r.similarity} for r in recs]


class Board:
    """A board over a test-owned seat state."""

    def __init__(self) -> None:
        self.table = _table()
        self.seats = bytearray(len(self.table))
        self.prices = dict(PRICES)
        self.delivered = 0
        self.board = reco.RecoBoard(reco.RecoVenue(self.table, _render), self.state, self.deliver)

    def state(self) -> tuple[bytearray, dict[str, Any]]:
        return self.seats, self.prices

    def deliver(self, peer: Peer, message: Encoded) -> bool:
        if isinstance(peer, MemoryPeer) and peer.behind:
            return False
        peer.write(message)
        self.delivered += 1
        return True

    def wish(self, quantity: int = 2, taste: Taste | None = None) -> reco.RecoWish:
        return reco.RecoWish(SeatPreferences(quantity), taste, self.board.venue)

    def take(self, *seats: int) -> None:
        for seat in seats:
            self.seats[seat] = SeatCode.HELD
        self.board.changed()

    async def settled(self) -> None:
        assert await eventually(lambda: not self.board.busy, within=5)


async def test_a_wish_is_answered_at_once_and_anonymous_watchers_share_one_message() -> None:
    b = Board()
    anonymous = [MemoryPeer() for _ in range(50)]
    for peer in anonymous:
        b.board.join(peer, b.wish())
    taste = Taste.from_history([("Back", 1.0, 3000)] * 3)
    tasted = MemoryPeer()
    b.board.join(tasted, b.wish(taste=taste))
    assert all(len(peer.frames) == 1 for peer in [*anonymous, tasted])
    assert len(b.board.groups) == 1  # one search for one preference set
    # one ranking, encoded once, for every anonymous watcher
    assert len({id(peer.frames[0]) for peer in anonymous}) == 1
    best = anonymous[0].blocks()
    assert best[0][0] < 40 and all(len(block) == 2 for block in best)  # in front
    items = _decode(anonymous[0].frames[0])["recommendations"]
    assert {item["similarity"] for item in items} == {0.5}
    # the watcher whose past tickets are at the back is ranked apart from them
    assert tasted.frames[0] is not anonymous[0].frames[0]
    assert _decode(tasted.frames[0])["recommendations"][0]["similarity"] != 0.5


async def test_only_watchers_whose_blocks_changed_are_sent_anything() -> None:
    b = Board()
    pairs, fours = MemoryPeer(), MemoryPeer(Subprotocol.JSON)
    b.board.join(pairs, b.wish(2))
    b.board.join(fours, b.wish(4))
    pair_blocks, four_blocks = pairs.blocks(), fours.blocks()
    # a seat in no recommended block and beside none: nobody hears of it
    used = {s for block in pair_blocks + four_blocks for s in block}
    near = {s + d for s in used for d in range(-2, 3)}
    unrelated = next(s for s in range(len(b.table) - 1, -1, -1) if s not in near)
    passes = b.board.passes
    b.take(unrelated)
    await b.settled()
    assert b.board.passes == passes + 1
    assert (len(pairs.frames), len(fours.frames)) == (1, 1)
    # the best pair taken: the pair watcher gets new blocks without it
    b.take(*pair_blocks[0])
    await b.settled()
    assert len(pairs.frames) == 2
    assert all(not set(block) & set(pair_blocks[0]) for block in pairs.blocks())
    # the four watcher had a block with one of those seats: it is sent new blocks too
    assert any(set(block) & set(pair_blocks[0]) for block in four_blocks)
    assert len(fours.frames) == 2
    assert all(set(block).isdisjoint(pair_blocks[0]) for block in fours.blocks())


async def test_passes_are_throttled_and_changes_between_them_coalesced() -> None:
    b = Board()
    peer = MemoryPeer()
    b.board.join(peer, b.wish())
    loop = asyncio.get_running_loop()
    started = loop.time()
    # a change every 10 ms for 0.6 s, each one taking the current best pair
    while loop.time() - started < 0.6:
        b.take(*peer.blocks()[0])
        await asyncio.sleep(0.01)
    await b.settled()
    elapsed = loop.time() - started
    most = int(elapsed / reco.RECO_INTERVAL) + 1
    assert 2 <= b.board.passes <= most, (b.board.passes, elapsed)
    assert len(peer.frames) <= 1 + b.board.passes
    # the last message shows the state after the last change
    taken = {i for i, code in enumerate(b.seats) if code}
    assert all(taken.isdisjoint(block) for block in peer.blocks())


async def test_a_watcher_skipped_while_behind_is_served_by_a_later_pass() -> None:
    b = Board()
    slow, fast = MemoryPeer(), MemoryPeer()
    b.board.join(slow, b.wish())
    b.board.join(fast, b.wish())
    slow.behind = True
    b.take(*fast.blocks()[0])
    assert await eventually(lambda: len(fast.frames) == 2)
    assert len(slow.frames) == 1 and b.board.busy  # it keeps trying
    slow.behind = False  # nothing moves meanwhile, yet it is served
    await b.settled()
    assert len(slow.frames) == 2 and slow.blocks() == fast.blocks()


async def test_a_new_wish_moves_the_watcher_and_an_empty_group_goes() -> None:
    b = Board()
    peer = MemoryPeer()
    b.board.join(peer, b.wish(2))
    b.board.join(peer, b.wish(3))
    assert len(b.board) == 1 and list(b.board.groups) == [SeatPreferences(3).key()]
    assert [len(block) for block in peer.blocks()] == [3] * len(peer.blocks())
    b.board.leave(peer)
    assert len(b.board) == 0 and not b.board.groups


def test_preferences_are_read_strictly_from_the_hello() -> None:
    prefs = reco.read_prefs(
        {
            "quantity": 2,
            "max_price": 45.559,
            "preferred_sections": ["Front", "Front"],
            "accessibility_required": True,
        },
        100,
    )
    assert prefs == SeatPreferences(2, 4555, frozenset({"Front"}), True)
    assert reco.read_prefs({"quantity": 100}, 100) == SeatPreferences(100)
    assert reco.read_prefs({"quantity": 1, "max_price": None}, 100).max_price_cents is None
    bad: list[tuple[Any, str]] = [
        ([2], "map"),
        ({}, "quantity"),
        ({"quantity": 0}, "quantity"),
        ({"quantity": 101}, "quantity"),
        ({"quantity": "2"}, "quantity"),
        ({"quantity": True}, "quantity"),
        ({"quantity": 2, "max_price": "10"}, "max_price"),
        ({"quantity": 2, "max_price": -1}, "max_price"),
        ({"quantity": 2, "preferred_sections": "Front"}, "preferred_sections"),
        ({"quantity": 2, "preferred_sections": [1]}, "preferred_sections"),
        ({"quantity": 2, "accessibility_required": "yes"}, "accessibility_required"),
        ({"quantity": 2, "seats": 3}, "seats"),
    ]
    for raw, field in bad:
        try:
            reco.read_prefs(raw, 100)
        except ValueError as exc:
            assert field in str(exc), (raw, str(exc))
        else:
            raise AssertionError(f"{raw!r} was accepted")
