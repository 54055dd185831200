"""The channel mirror: messages applied strictly in seq order, ticks conflated, and the state
as of the last flush always recoverable (what a joining client's snapshot carries)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from engines.seats import SeatCode, count_seats
from hub.channels.mirror import Applied, Mirror, Tick

FREE, HELD, SOLD = SeatCode.FREE, SeatCode.HELD, SeatCode.SOLD


def test_messages_in_order_are_applied_and_open_one_tick() -> None:
    mirror = Mirror(10, bytes(5))
    assert mirror.apply(11, [[0, HELD]]) is Applied.APPLIED
    assert mirror.apply(13, [[1, HELD], [2, SOLD]]) is Applied.MORE
    assert (mirror.seq, bytes(mirror.seats)) == (13, bytes([HELD, HELD, SOLD, FREE, FREE]))


def test_a_message_at_or_below_our_seq_is_stale_and_changes_nothing() -> None:
    mirror = Mirror(10, bytes(3))
    assert mirror.apply(10, [[0, SOLD]]) is Applied.STALE
    assert mirror.apply(9, [[0, SOLD]]) is Applied.STALE
    assert (mirror.seq, bytes(mirror.seats), mirror.take_tick()) == (10, bytes(3), None)


def test_a_missing_message_is_a_gap_and_changes_nothing() -> None:
    mirror = Mirror(10, bytes(3))
    # covers (11, 12]: the change with seq 11 was never seen
    assert mirror.apply(12, [[0, HELD]]) is Applied.GAP
    assert (mirror.seq, bytes(mirror.seats), mirror.take_tick()) == (10, bytes(3), None)


def test_a_seat_outside_the_map_is_a_gap_and_changes_nothing() -> None:
    mirror = Mirror(10, bytes(3))
    # The first change is valid: it must not be applied either (all or nothing).
    assert mirror.apply(12, [[0, HELD], [3, HELD]]) is Applied.GAP
    assert mirror.apply(11, [[-1, HELD]]) is Applied.GAP
    assert (mirror.seq, bytes(mirror.seats), mirror.take_tick()) == (10, bytes(3), None)


def test_a_tick_carries_each_changed_seat_once_with_its_last_code() -> None:
    mirror = Mirror(0, bytes(4))
    mirror.apply(1, [[0, HELD]])
    mirror.apply(3, [[0, SOLD], [1, HELD]])
    mirror.apply(4, [[1, FREE]])  # changed and changed back: still sent
    tick = mirror.take_tick()
    assert tick == Tick(0, 4, [[0, SOLD], [1, FREE]])
    assert mirror.take_tick() is None
    assert mirror.flushed_seq == 4


def test_the_snapshot_is_the_state_at_the_last_flush_while_a_tick_is_pending() -> None:
    mirror = Mirror(5, bytes([FREE, HELD, FREE]))
    assert mirror.flushed_state() == (5, bytes([FREE, HELD, FREE]))
    mirror.apply(7, [[0, SOLD], [1, FREE]])
    assert mirror.flushed_state() == (5, bytes([FREE, HELD, FREE]))
    # counts too are as of the last flush
    assert mirror.counts() == {"total": 3, "available": 2, "held": 1, "sold": 0}
    mirror.take_tick()
    assert mirror.flushed_state() == (7, bytes([SOLD, FREE, FREE]))
    assert mirror.counts() == {"total": 3, "available": 2, "held": 0, "sold": 1}


@dataclass
class World:
    """The truth the mirror follows: every state by seq, as Redis published it."""

    states: dict[int, bytes]
    seq: int
    published: list[tuple[int, list[list[int]]]] = field(default_factory=list)

    def publish(self, changes: list[list[int]]) -> None:
        seats = bytearray(self.states[self.seq])
        for idx, code in changes:
            seats[idx] = code
        self.seq += len(changes)
        self.states[self.seq] = bytes(seats)
        self.published.append((self.seq, changes))


N_SEATS = 6
change = st.lists(
    st.tuples(st.integers(0, N_SEATS - 1), st.sampled_from([FREE, HELD, SOLD])).map(list),
    min_size=1,
    max_size=4,
)
# deliver the next message / drop it (a gap follows) / deliver an old one again / flush
step: st.SearchStrategy[tuple[str, list[list[int]]]] = st.one_of(
    st.tuples(st.just("deliver"), change),
    st.tuples(st.just("drop"), change),
    st.tuples(st.just("replay"), st.just([])),
    st.tuples(st.just("flush"), st.just([])),
)


@settings(max_examples=300, deadline=None)
@given(start=st.binary(min_size=N_SEATS, max_size=N_SEATS), steps=st.lists(step, max_size=40))
def test_invariants_hold_and_ticks_rebuild_the_state_for_a_client(
    start: bytes, steps: list[tuple[str, list[list[int]]]]
) -> None:
    start = bytes(b % 3 for b in start)
    world = World({3: start}, 3)
    mirror = Mirror(3, start)
    # A client that joined with the snapshot and applies every tick sent since.
    client_seq, client_seats = mirror.flushed_state()
    for kind, changes in steps:
        if kind == "flush":
            tick = mirror.take_tick()
            if tick is not None:
                assert tick.from_seq == client_seq, "each tick starts where the last ended"
                seats = bytearray(client_seats)
                for idx, code in tick.changes:
                    seats[idx] = code
                client_seq, client_seats = tick.seq, bytes(seats)
        elif kind == "replay":  # a message the mirror already covers arrives again
            seen = [message for message in world.published if message[0] <= mirror.seq]
            if seen:
                assert mirror.apply(*seen[-1]) is Applied.STALE
        else:
            world.publish(changes)
            if kind == "deliver":
                outcome = mirror.apply(*world.published[-1])
                if outcome is Applied.GAP:
                    # What the channel does on a gap: re-read, and joiners get that snapshot.
                    mirror = Mirror(world.seq, world.states[world.seq])
                    client_seq, client_seats = mirror.flushed_state()
                else:
                    assert outcome in (Applied.APPLIED, Applied.MORE)
        # The invariants of the module docstring.
        assert bytes(mirror.seats) == world.states[mirror.seq]
        flushed_seq, flushed = mirror.flushed_state()
        assert flushed == world.states[flushed_seq]
        assert (not mirror.pending) == (mirror.flushed_seq == mirror.seq)
        assert (client_seq, client_seats) == (flushed_seq, flushed)
        assert mirror.counts() == count_seats(flushed)
