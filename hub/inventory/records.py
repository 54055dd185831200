"""The inventory's vocabulary: hold kinds and states, refusals, and the records calls return."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass


class HoldKind(enum.StrEnum):
    SINGLE = "single"  # counted against max_tickets_per_user
    GROUP = "group"  # bulk group booking: exempt from the per-user cap
    OFFER = "offer"  # a waitlist offer made in the user's name


class HoldStatus(enum.StrEnum):
    """A live hold's state (the ``status`` field of its hash); a hold that ended is gone."""

    HELD = "held"
    CONFIRMING = "confirming"


class ReleaseMode(enum.StrEnum):
    """How ``release`` treats a hold: the ``mode`` argument of ``release.lua``."""

    RELEASE = "release"  # its owner lets go: refused while confirming
    EXPIRE = "expire"  # the sweeper: refused while confirming or before the hold is due
    FORCE = "force"  # PostgreSQL decided (reconciler, cancelled event): always


class Refusal(enum.StrEnum):
    """Why a script changed nothing; the values are the words the Lua scripts return.

    A ``StrEnum`` so that a member equals its word, but compare with ``is``: every method
    returns the member itself.
    """

    NOT_LOADED = "not_loaded"  # hold: the event's seat state is not in Redis
    BAD_SEAT = "bad_seat"  # hold: a seat index outside the venue
    TAKEN = "taken"  # hold: a seat is held or sold
    LIMIT = "limit"  # hold: over the user's max_tickets_per_user
    EXISTS = "exists"  # hold: the hold id is in use
    MISSING = "missing"  # no such live hold (or not the caller's)
    CONFIRMING = "confirming"  # the hold is being confirmed
    NOT_DUE = "not_due"  # expire: the hold has time left
    EXPIRED = "expired"  # begin_confirm, extend: the hold is past its expiry
    ALREADY = "already"  # extend: extended once already
    MAX_LIFETIME = "max_lifetime"  # extend: no time left within the hold's maximum lifetime
    STALE = "stale"  # hold: the event changed since the caller read it (see ``version``)


class AssignmentBusy(Exception):
    """The event's seat-assignment lock was not free in time."""


@dataclass(frozen=True, slots=True)
class HoldRecord:
    hold_id: uuid.UUID
    event_id: uuid.UUID
    user_id: uuid.UUID
    kind: HoldKind
    status: HoldStatus
    seats: tuple[int, ...]
    prices: tuple[int, ...]
    created_ms: int
    expires_ms: int
    extended: bool
    confirming_since_ms: int | None


@dataclass(frozen=True, slots=True)
class HoldRequest:
    """What one hold-script call asks for.

    ``seats`` (at the quoted ``prices``) if all are free, else the first of the
    ``alternatives`` ``(seats, prices)`` whose seats all are. ``limit`` caps the user's held
    plus owned seats (None: no cap). With ``index_ttl_s`` the hold's index entry is written
    in the same round trip. With ``version`` the script refuses (``Refusal.STALE``) unless
    the event's version in Redis still equals it: the caller's copy of the event (status,
    prices) is then known to be current at the moment the seats are held.
    """

    hold_id: uuid.UUID
    user_id: uuid.UUID
    kind: HoldKind
    seats: Sequence[int]
    prices: Sequence[int]
    ttl_ms: int
    limit: int | None
    index_ttl_s: int | None = None
    alternatives: Sequence[tuple[Sequence[int], Sequence[int]]] = ()
    version: int | None = None


@dataclass(frozen=True, slots=True)
class HoldPlaced:
    seq: int
    expires_ms: int
    seats: tuple[int, ...]  # the candidate that was held


@dataclass(frozen=True, slots=True)
class HoldRefused:
    reason: Refusal  # taken | limit | not_loaded | bad_seat | exists | stale
    taken: tuple[int, ...] = ()
    current: int = 0
    due: bool = False  # taken: a hold past its expiry holds one of the taken seats


@dataclass(frozen=True, slots=True)
class Released:
    seq: int
    hold_id: uuid.UUID
    user_id: uuid.UUID
    seats: tuple[int, ...]
    kind: HoldKind
    waitlist: int = 0  # the event's waitlist mark when it was released (0: nobody waits)


@dataclass(frozen=True, slots=True)
class ConfirmStarted:
    seats: tuple[int, ...]
    prices: tuple[int, ...]
    kind: HoldKind
    expires_ms: int
