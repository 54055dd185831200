"""The leader's admission loop: lets waiters in, ends sessions, declares sell-outs.

Every ``TICK_SECONDS``, for each event with a waiting room on that has opened:

1. Sold out for the queue (no seat free and none held, read from the event's live seat
   state) → every waiter's status becomes ``sold_out`` (``queue_sold_out.lua``) and the
   room admits no one more.
2. Sessions whose time ran out end (``queue_session_end.lua``): one whose user neither
   holds nor owns a seat of the event (the inventory's ``owned`` count) and never booked
   one (PostgreSQL's bookings, cancelled ones included) was never used, becomes
   ``expired``, and is given back to the flow (one extra admission). Sessions still running
   whose user holds, owns and booked nothing yet are *idle*: load on its way that the p99
   has not seen, which the controller counts against raising the rate. (A buyer who booked
   and cancelled is not idle: counting them held the seats they gave back from the queue
   until their session ran out, ten minutes by default. While PostgreSQL cannot be asked,
   the seats alone decide, as before.)
3. The rate: the room's fixed ``admit_per_second``, or the adaptive controller
   (``engines.admission``) fed with the hold p99 of the last ``P99_WINDOW_SECONDS`` and the
   idle count, steering to ``SETPOINT_SHARE`` of ``EVENTLY_WAITING_ROOM_TARGET_P99_MS``.
   The p99 is of whole hold requests as the hub answers them (the request histogram of
   the hold route: authentication, the wait for an in-flight slot, the service, the
   answer) — what a buyer waits for, where the service's own hold timer leaves out the
   queueing that grows first under load. It is read across every worker's
   files when the hub runs several (``EVENTLY_METRICS_DIR``), else this process's: the
   request path already pays for it, so measuring costs it nothing. Its resolution is the
   histogram's buckets (a p99 between 50 and 100 ms reads as 100 ms).
4. Admissions: whole units of the budget (``admit_count``) admit the first waiters in queue
   order, each with a signed token (``waiting_room.admit``) — but never more than there are
   free seats beyond one for each idle session. The seat state is here, beside the queue: a
   buyer let in when every seat is held would only meet conflicts (in an on-sale's last
   seconds, thousands of 409s a second that slowed everyone else's requests), so while no
   seat is free and some are held the queue waits, positions kept, for held seats to come
   back.

After any change the processes are nudged to push queue messages at once.

The controller's state (its rate, slow-start threshold and admission credit) is kept in the
room's hash (``ctl_rate``, ``ctl_threshold``, ``ctl_credit``), read with the room at the
start of each step and written with ``current_rate`` at its end, so a new leader continues
from the last rate instead of starting again from the start rate. A room turned on afresh
(``waiting_room.configure``) deletes its hash and so starts from the start rate. Only the
step's clock (``_Control.last``) is the leader's own: a new leader's first step has a dt of
about zero, so the time without a leader admits no one late in a burst.
"""

from __future__ import annotations

import asyncio
import collections
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from engines.admission import (
    Budget,
    ControllerConfig,
    ControllerState,
    Observation,
    admit_count,
    initial_state,
    next_state,
    p99_from_buckets,
)
from hub import metrics, waiting_rooms
from hub.context import Hub
from hub.db import bookings as bookings_db
from hub.errors import ServiceUnavailable
from hub.leader import Fence, StaleLeader, current_fence
from hub.services import waiting_room
from hub.services.waiting_room import Room, RoomKeys

log = structlog.get_logger(__name__)

TICK_SECONDS = 0.5
P99_WINDOW_SECONDS = 2.0
# How long a step waits for PostgreSQL's answer on who booked before going on without it.
BOOKINGS_READ_SECONDS = 1.0
# The request histogram's series of a hold (hub.api.holds).
HOLD_REQUESTS = {"method": "POST", "route": "/api/v1/events/{event_id}/holds"}

Reading = tuple[tuple[float, ...], tuple[float, ...]]


@dataclass(slots=True)
class _Control:
    state: ControllerState
    budget: Budget = field(default_factory=Budget)
    last: float = field(default_factory=time.monotonic)

    def load(self, raw: Mapping[Any, Any]) -> None:
        """Take the state kept in the room's hash ``raw``, where there is one."""
        get = {_s(k): _s(v) for k, v in raw.items() if _s(k).startswith("ctl_")}
        try:
            if get.get("ctl_rate"):
                self.state = ControllerState(
                    rate=float(get["ctl_rate"]),
                    threshold=float(get.get("ctl_threshold") or "inf"),
                )
            if get.get("ctl_credit"):
                self.budget = Budget(float(get["ctl_credit"]))
        except ValueError:
            log.warning("admission_state_unreadable", fields=get)

    def fields(self) -> dict[str, str]:
        """The state as kept in the room's hash."""
        return {
            "ctl_rate": repr(self.state.rate),
            "ctl_threshold": repr(self.state.threshold),
            "ctl_credit": repr(self.budget.credit),
        }


# The controller steers to this share of the room's p99 target: AIMD probes above its
# set-point by design, and the histogram reads a p99 of 50-100 ms as 100 ms, so steering to
# the target itself left the surge's hold p99 at 1.7-3.4x it; steering to half took the
# median of five runs from 257 to 151 ms with no slower sell-out (BENCHMARKS.md, issue 17).
SETPOINT_SHARE = 0.5


def controller_config(hub: Hub) -> ControllerConfig:
    settings = hub.settings
    return ControllerConfig(
        target_p99_s=settings.waiting_room_target_p99_ms / 1000 * SETPOINT_SHARE,
        start_rate=settings.waiting_room_start_rate,
    )


class HoldP99:
    """The hold p99 over a sliding window, from successive readings of the histogram."""

    def __init__(self, hub: Hub, window_s: float = P99_WINDOW_SECONDS) -> None:
        self.hub = hub
        self.readings: collections.deque[tuple[float, Reading]] = collections.deque()
        self.window_s = window_s

    def read(self) -> float | None:
        now = time.monotonic()
        reading = metrics.histogram_buckets(
            metrics.HTTP_LATENCY, self.hub.settings.metrics_dir, HOLD_REQUESTS
        )
        if not reading[0]:  # no hold answered yet since the start: no series
            return None
        self.readings.append((now, reading))
        while len(self.readings) > 1 and now - self.readings[1][0] >= self.window_s:
            self.readings.popleft()
        _, oldest = self.readings[0]
        bounds, after = reading
        if oldest[0] != bounds or len(self.readings) < 2:
            return None
        return p99_from_buckets(bounds, oldest[1], after)


async def admission_loop(hub: Hub) -> None:
    """Leader loop: one admission step for every open room each tick, until cancelled."""
    config = controller_config(hub)
    controls: dict[uuid.UUID, _Control] = {}
    p99 = HoldP99(hub)
    fence = current_fence()  # the token of the lease this loop was started under
    while True:
        await asyncio.sleep(TICK_SECONDS)
        try:
            rooms = await waiting_rooms.rooms_on(hub.store)
            if not rooms:  # nothing to admit: no histogram to read (its files, every tick)
                p99.readings.clear()
                continue
            seen = p99.read()
            for gone in set(controls) - rooms:
                del controls[gone]
            for event_id in rooms:
                control = controls.get(event_id)
                if control is None:
                    control = controls[event_id] = _Control(initial_state(config))
                await step(hub, event_id, control, seen, config, fence=fence)
        except asyncio.CancelledError:
            raise
        except StaleLeader as exc:
            log.warning("admission_step_fenced", token=exc.token)
        except Exception:
            log.exception("admission_step_failed")


async def step(
    hub: Hub,
    event_id: uuid.UUID,
    control: _Control,
    p99_s: float | None,
    config: ControllerConfig,
    *,
    fence: Fence | None = None,
) -> int:
    """One admission step for one room (see the module doc); returns how many it admitted.

    Raises:
        StaleLeader: ``fence``, the leader's fencing token, is superseded; the admissions
            script refused them (``waiting_room.admit``), and the step ends there.
    """
    now = time.monotonic()
    dt = min(now - control.last, 5 * TICK_SECONDS)
    control.last = now
    keys = RoomKeys.of(hub, event_id)
    client = hub.store.client
    raw = await client.hgetall(keys.room)
    room = Room.read(event_id, raw)
    if room is None or not room.on or waiting_room.now_ms() < room.opens_ms:
        return 0
    control.load(raw)
    seats = await _seat_counts(hub, event_id)
    if not room.sold_out and seats == (0, 0):
        waiting = int(await hub.queue_scripts.sold_out([keys.room, keys.queue, keys.users]))
        log.info("waiting_room_sold_out", event_id=str(event_id), waiting=waiting)
        await waiting_room.nudge(hub, event_id)
        return 0
    returned, idle = await _sessions(hub, room)
    if room.rate is not None:
        rate = room.rate
    else:
        control.state = next_state(control.state, Observation(p99_s, idle), dt, config)
        rate = control.state.rate
    admitted = 0
    users: list[uuid.UUID] = []
    if not room.sold_out:
        waiting = int(await client.zcard(keys.queue))
        if seats is not None:
            waiting = min(waiting, max(seats[0] - idle, 0))
        count, control.budget = admit_count(control.budget, rate, dt, waiting, returned=returned)
        if count:
            users = [uuid.UUID(_s(u)) for u in await client.zrange(keys.queue, 0, count - 1)]
            admitted = await waiting_room.admit(hub, room, users, fence)
    kept: dict[Any, Any] = {"current_rate": repr(rate), **control.fields()}
    await client.hset(keys.room, mapping=kept)
    if admitted:
        # Those admitted hear it at once; everyone's new position and the sessions given
        # back (``returned``) go out with the feed's next round, within a second.
        await waiting_room.nudge(hub, event_id, users)
    if admitted or returned:
        log.info(
            "waiting_room_admitted",
            event_id=str(event_id),
            admitted=admitted,
            returned=returned,
            idle=idle,
            rate=round(rate, 2),
            p99_ms=None if p99_s is None else round(p99_s * 1000),
        )
    return admitted


async def _seat_counts(hub: Hub, event_id: uuid.UUID) -> tuple[int, int] | None:
    """(free, held) seats of the event; None when it is not loaded into Redis (not judged)."""
    snapshot = await hub.inventory.snapshot(event_id)
    if snapshot is None or not snapshot[1]:
        return None
    states = snapshot[1]
    return states.count(0), states.count(1)


async def _sessions(hub: Hub, room: Room) -> tuple[int, int]:
    """End the sessions that ran out; returns (ended unused, still running and idle)."""
    keys = RoomKeys.of(hub, room.event_id)
    client = hub.store.client
    found: Any = await client.zrange(keys.sessions, 0, -1, withscores=True)
    sessions: list[tuple[Any, float]] = list(found)
    if not sessions:
        return 0, 0
    users = [_s(u) for u, _ in sessions]
    owned = await client.hmget(hub.store.keys.event(room.event_id, "owned"), users)
    owning = {user for user, count in zip(users, owned, strict=True) if int(count or 0) > 0}
    unowned = [user for user in users if user not in owning]
    used = owning | (await _booked(hub, room.event_id, unowned) if unowned else set())
    now = time.time()
    ended: list[str] = []
    idle = 0
    for user, (_, expires) in zip(users, sessions, strict=True):
        if expires <= now:
            ended += [user, "1" if user in used else "0"]
        elif user not in used:
            idle += 1
    returned = 0
    if ended:
        returned = int(await hub.queue_scripts.session_end([keys.sessions, keys.users], ended))
    return returned, idle


async def _booked(hub: Hub, event_id: uuid.UUID, users: list[str]) -> set[str]:
    """Which of ``users`` booked a seat of the event at some point; none while PostgreSQL
    cannot be asked (the seats they own decide alone meanwhile)."""
    try:
        async with asyncio.timeout(BOOKINGS_READ_SECONDS), hub.db.connection() as con:
            found = await bookings_db.users_who_booked(
                con, event_id, [uuid.UUID(user) for user in users]
            )
    except (ServiceUnavailable, TimeoutError) as exc:
        log.warning("admission_bookings_unread", event_id=str(event_id), error=repr(exc))
        return set()
    return {str(user) for user in found}


def _s(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
