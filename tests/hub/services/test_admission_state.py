"""The adaptive admission controller's state outlives its leader: it is kept in Redis with
the room, so a step taken by another hub (a new leader) continues from the last rate.

Two ``Hub`` objects of their own (``open_hub``) on a key prefix no app's leader uses, so
only the steps driven here touch the room.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from types import SimpleNamespace

import httpx
import pytest

from engines.admission import ControllerState, Observation, initial_state, next_state
from hub.context import Hub, open_hub
from hub.services import admission, waiting_room
from hub.settings import Settings
from tests.conftest import Account
from tests.factories import make_event


def _opened() -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)


def _same(a: ControllerState, b: ControllerState) -> bool:
    """Equal up to the few milliseconds a step's dt runs over its one second."""
    return a.rate == pytest.approx(b.rate, abs=0.5) and a.threshold == pytest.approx(
        b.threshold, abs=0.5
    )


async def _step(
    hub: Hub, event_id: uuid.UUID, control: admission._Control, p99: float | None
) -> None:
    control.last = time.monotonic() - 1.0  # a step of about one second
    await admission.step(hub, event_id, control, p99, admission.controller_config(hub))


async def test_a_new_leader_continues_from_the_last_rate(
    client: httpx.AsyncClient, settings: Settings, admin: Account
) -> None:
    event_id = uuid.UUID((await make_event(client, admin))["id"])
    own = settings.replace(redis_prefix=f"{settings.redis_prefix}ctl{uuid.uuid4().hex[:6]}:")
    async with open_hub(own) as first, open_hub(own) as second:
        await waiting_room.configure(first, event_id, _opened(), None, None)
        config = admission.controller_config(first)
        start = initial_state(config)

        # The first leader: two quiet steps grow the rate (slow start).
        control = admission._Control(initial_state(config))
        for _ in range(2):
            await _step(first, event_id, control, None)
        grown = control.state.rate
        assert grown > start.rate
        kept = await waiting_room.read_room(second, event_id)
        assert kept is not None and kept.current_rate == grown

        # A new leader, with nothing in memory: a p99 over target cuts the kept rate,
        # not the start rate, and the slow-start threshold comes down with it.
        fresh = admission._Control(initial_state(config))
        assert fresh.state.rate == start.rate
        over = config.target_p99_s * 2
        await _step(second, event_id, fresh, over)
        expected = next_state(ControllerState(rate=grown), Observation(over, 0), 1.0, config)
        assert _same(fresh.state, expected)
        assert fresh.state.rate > start.rate  # from scratch it would be below the start

        # And back to the first hub, which still remembers its own older state: it reads
        # the newer one from Redis and goes on additively above the new threshold.
        await _step(first, event_id, control, 0.0)
        assert _same(control.state, next_state(expected, Observation(0.0, 0), 1.0, config))
        room = await waiting_room.read_room(first, event_id)
        assert room is not None and room.current_rate == control.state.rate

        # A room turned on afresh starts again from the start rate.
        room_key = waiting_room.RoomKeys.of(first, event_id).room
        await first.store.client.hset(room_key, "state", "closed")
        await waiting_room.configure(first, event_id, _opened(), None, None)
        again = admission._Control(initial_state(config))
        await _step(second, event_id, again, None)
        assert _same(again.state, next_state(start, Observation(None, 0), 1.0, config))


def test_the_controller_steers_to_half_the_rooms_target(settings: Settings) -> None:
    """Its probing above the set-point must stay under the target buyers were promised."""
    hub = SimpleNamespace(settings=settings.replace(waiting_room_target_p99_ms=100))
    assert admission.controller_config(hub).target_p99_s == pytest.approx(0.050)  # type: ignore[arg-type]
