"""Live seat state in Redis. The Lua scripts of ``lua/`` are the only writers of seat state.

Keys of one event E (all carry the hash tag ``{E}``, see ``hub.store.Keys``):

- ``seats``  string, one byte per seat in seat-index order: a ``engines.seats.SeatCode``
             (0 free, 1 held, 2 sold)
- ``seq``    integer, bumped once per seat change (held, released, sold, expired)
- ``meta``   hash ``n`` (seat count); its presence means "loaded"
- ``holder`` hash seat index -> hold id, for every held seat
- ``hold:H`` hash of one hold: user, kind, status (``HoldStatus``), seats and prices
             (comma-separated), created/expires/confirming-since in ms, extended flag
- ``expiry`` sorted set hold id -> expiry ms (the leader's sweeper reads it)
- ``owned``  hash user -> seats held plus owned, counted against ``max_tickets_per_user``
- ``assign`` the short seat-assignment lock (``locks.py``)
- ``ver``    integer, the event's version: bumped after every committed change to the stored
             event (``bump_version``); the hold script refuses (``stale``) a hold priced
             and checked with an older copy. Not seat state: a reload keeps it.
- channel ``ch``: msgpack maps ``{t: "seats", seq, changes: [[index, code], ...]}`` and
  ``{t: "reset", seq}`` after a (re)load; ``seq`` is the value after the last change.
- global ``hold-event:H`` -> "E user": which event a hold id belongs to (``hold_ref``).

Invariants every script keeps: a refused call changes nothing and publishes nothing; a
seat is held iff ``holder`` names a live hold that lists it; ``seq`` grows by exactly the
number of seat changes published (a reload restarts it higher, never lower). Time is
Redis's own clock (``TIME``), one clock for every hub process.

Seat state table. Columns are a seat's state: FREE, HELD by a hold in state ``held``,
CONFIRMING (the seat is HELD, its hold is being confirmed), SOLD. Rows are events. A cell
in capitals is the next state; a lower-case cell is the ``Refusal`` the call returns, with
nothing changed or published; ``-`` means the call does nothing to this seat and publishes
nothing. The hold-directed events (release ... abort_confirm) address the hold on the seat;
a FREE or SOLD seat has none (a sold seat's hold went when it was sold)::

    event           FREE     HELD        CONFIRMING  SOLD
    hold            HELD     taken       taken       taken
    hold_stale      stale    stale       stale       stale
    release         missing  FREE        confirming  missing
    expire          missing  not_due     confirming  missing
    expire_due      missing  FREE        confirming  missing
    force           missing  FREE        FREE        missing
    begin_confirm   missing  CONFIRMING  confirming  missing
    begin_late      missing  expired     confirming  missing
    abort_confirm   -        -           HELD        -
    finish_confirm  SOLD     SOLD        SOLD        -
    set_sold        SOLD     SOLD        SOLD        -
    set_free        -        FREE        FREE        FREE
    rebuild_sold    SOLD     SOLD        SOLD        SOLD
    rebuild_free    FREE     HELD        CONFIRMING  FREE

Who may cause each event (script, ``Inventory`` method, callers):

- hold: ``hold.lua`` (``place_hold``), all or nothing over its seats. Buyers' named-seat
  and best-available holds, bulk assignment (under the assignment lock), waitlist offers.
  Also refused: not_loaded, bad_seat, limit, exists, whatever the seat.
- release: ``release.lua`` mode release (``release``): the hold's owner (``DELETE
  /holds/{id}``), and the release module for holds that ended without a booking.
- expire, expire_due: mode expire, before and after the hold's expiry: the leader's
  sweeper, or a read that finds a hold past its expiry.
- force: mode force: PostgreSQL decided (the reconciler of stuck confirmations, a
  cancelled event, a failed one-call booking, a lapsed waitlist offer).
- begin_confirm, begin_late: ``begin_confirm.lua`` by the hold's owner confirming a
  booking, before and after the hold's expiry.
- abort_confirm: ``abort_confirm.lua``: the confirmation failed (payment, PostgreSQL);
  the hold is kept, as it was.
- finish_confirm: ``finish_confirm.lua``: PostgreSQL committed the booking (the seats are
  what PostgreSQL wrote, so a hold reconciled away meanwhile still ends sold); also the
  reconciler finding tickets for a stuck confirmation.
- set_sold, set_free: ``set_seats.lua`` (``set_seats``) with a state PostgreSQL decided:
  sold after it refused seats Redis thought free, free after a cancellation.
- rebuild_sold, rebuild_free: ``load.lua`` with ``force`` (``load``), for a seat
  PostgreSQL has sold or not: ``evently rebuild-inventory``. Without ``force`` it builds
  only an event that is not loaded (first use, or Redis restarted empty), and every seat
  is then FREE or SOLD. A rebuild always publishes ``reset`` and moves ``seq`` forward.

Hold state table (the ``hold:H`` hash; "gone" is no hash, the hold id is unknown):

    event           (gone)   held                      confirming
    hold            held     exists                    exists
    release         missing  gone                      confirming
    expire          missing  gone if due, else not_due confirming
    force           missing  gone                      gone
    begin_confirm   missing  confirming, or expired    confirming
    abort_confirm   -        -                         held
    finish_confirm  -        gone                      gone
    extend          missing  held (once; else already, max_lifetime; or expired)  confirming

``tests/hub/inventory/test_state_table.py`` reads the seat state table above and walks
every cell against a real Redis.
"""

from __future__ import annotations

from hub.inventory.client import Inventory
from hub.inventory.records import (
    AssignmentBusy,
    ConfirmStarted,
    HoldKind,
    HoldPlaced,
    HoldRecord,
    HoldRefused,
    HoldRequest,
    HoldStatus,
    Refusal,
    Released,
    ReleaseMode,
)

__all__ = [
    "AssignmentBusy",
    "ConfirmStarted",
    "HoldKind",
    "HoldPlaced",
    "HoldRecord",
    "HoldRefused",
    "HoldRequest",
    "HoldStatus",
    "Inventory",
    "Refusal",
    "ReleaseMode",
    "Released",
]
