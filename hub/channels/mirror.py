"""The local mirror of one event's seat state, and the tick that conflates its changes.

Idea: Redis publishes every seat change as ``{seq, changes}`` where the message covers the
sequence numbers ``(seq - len(changes), seq]``. The mirror applies messages strictly in
that order; anything else is a decision the caller acts on (stale: ignore; gap: re-read).
Changes applied since the last flush are kept as "last code per seat" (``pending``) plus
the code each seat had before the tick (``undo``), so the state *as of the last flush*
is always recoverable. That is what a joining or recovering client gets as a snapshot, so
the next ``seats`` message's ``from`` equals its snapshot's ``seq``, exactly.

Invariants:
- ``seats`` is the state at ``seq``; ``flushed_state()`` is the state at ``flushed_seq``.
- ``pending`` is empty iff ``flushed_seq == seq``.
- a flushed tick covers ``(flushed_seq_before, seq]`` with each changed seat's last code.
Never awaits, never reads the clock.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from engines.seats import count_seats


class Applied(enum.Enum):
    APPLIED = "applied"  # the first change of a new tick (caller schedules a flush)
    MORE = "more"  # added to a tick already pending
    STALE = "stale"  # already covered by the state (seq at or below ours)
    GAP = "gap"  # something between our seq and the message is missing


@dataclass(frozen=True, slots=True)
class Tick:
    """One conflated ``seats`` message: changes covering ``(from_seq, seq]``."""

    from_seq: int
    seq: int
    changes: list[list[int]]


class Mirror:
    __slots__ = ("flushed_seq", "pending", "seats", "seq", "undo")

    def __init__(self, seq: int, seats: bytes) -> None:
        self.seq = seq
        self.flushed_seq = seq
        self.seats = bytearray(seats)
        self.pending: dict[int, int] = {}
        self.undo: dict[int, int] = {}

    def apply(self, seq: int, changes: Sequence[Sequence[int]]) -> Applied:
        """Apply one published message ``{seq, changes}`` if it follows our state."""
        if seq <= self.seq:
            return Applied.STALE
        if seq - len(changes) != self.seq:
            return Applied.GAP
        seats, pending, undo = self.seats, self.pending, self.undo
        n = len(seats)
        for change in changes:
            idx, code = int(change[0]), int(change[1])
            if not 0 <= idx < n:
                return Applied.GAP  # the seat map changed under us: re-read it
        first = not pending
        for change in changes:
            idx, code = int(change[0]), int(change[1])
            if idx not in undo:
                undo[idx] = seats[idx]
            seats[idx] = code
            pending[idx] = code
        self.seq = seq
        return Applied.APPLIED if first else Applied.MORE

    def take_tick(self) -> Tick | None:
        """The conflated changes since the last flush (None if none), and mark them flushed.

        A seat that changed and changed back still appears (with its last code): the
        client's map may have been built at any point of the tick.
        """
        if not self.pending:
            return None
        tick = Tick(self.flushed_seq, self.seq, [[i, c] for i, c in self.pending.items()])
        self.pending = {}
        self.undo = {}
        self.flushed_seq = self.seq
        return tick

    def flushed_state(self) -> tuple[int, bytes]:
        """``(flushed_seq, seats at flushed_seq)``: what a snapshot carries."""
        if not self.undo:
            return self.flushed_seq, bytes(self.seats)
        seats = bytearray(self.seats)
        for idx, code in self.undo.items():
            seats[idx] = code
        return self.flushed_seq, bytes(seats)

    def counts(self) -> dict[str, int]:
        """Counts (``engines.seats.count_seats``) as of the last flush."""
        _, seats = self.flushed_state() if self.undo else (0, self.seats)
        return count_seats(seats)
