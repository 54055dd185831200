"""A waiting-room buyer against a served hub: it waits on its socket, or polls when the
socket fails (and says so), and buys with the admission token it was given."""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import AsyncIterator

import aiohttp
import httpx
import pytest

from hub.settings import Settings
from loadtest.buyers import Buyer, ClientPlan, Shop
from loadtest.client import SeatMirror
from loadtest.records import FREE, Http, Phase
from loadtest.waiters import ADMITTED, Wait, wait_and_buy
from tests.conftest import Account, register
from tests.factories import make_event
from tests.live import WsServer, free_port, serve


@pytest.fixture(scope="module")
async def served(settings: Settings) -> AsyncIterator[WsServer]:
    async with serve(settings.replace(rate_limits=False)) as server:
        yield server


async def _waiter(
    served: WsServer, admin: Account, opens_in: float, ws_url: str | None
) -> tuple[Wait, Buyer, Phase]:
    """One buyer through a room opening ``opens_in`` seconds from now (100 admissions a
    second); ``ws_url`` None: the event's own socket."""
    async with httpx.AsyncClient(base_url=served.base) as client:
        event = await make_event(client, admin, max_tickets_per_user=2)
        user = await register(client)
        opens = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=opens_in)
        room = await client.put(
            f"/api/v1/events/{event['id']}/waiting-room",
            json={"opens_at": opens.isoformat(), "admit_per_second": 100},
            headers=admin.headers,
        )
        assert room.status_code == 200, room.text
        seats = (await client.get(f"/api/v1/events/{event['id']}/seats")).json()["seats"]
    plan = ClientPlan(
        index=0,
        base_url=served.base,
        ws_url=served.base.replace("http://", "ws://"),
        event_id=event["id"],
        run_token="t",
        buyer_ids=(0,),
        total_buyers=1,
        watchers=0,
        probes=0,
        mix=(0.0, 1.0, 0.0),  # best available: no seat map needed
        cancel_rate=0.0,
        lapse_rate=0.0,
        think_ms=10.0,
        profile="flat",
        max_per_user=2,
    )
    mirror = SeatMirror(seq=0, seats=bytearray([FREE]) * len(seats))
    shop = Shop(plan, random.Random(1), [str(s["id"]) for s in seats], mirror)
    buyer = Buyer(0, user.email, user.token)
    wait = Wait(0, late=False)
    phase = Phase(time.monotonic(), 20.0)
    async with aiohttp.ClientSession() as session:
        url = ws_url or served.event_url(event["id"])
        await wait_and_buy(shop, Http(session, served.base), url, buyer, phase, wait, 0.0)
    return wait, buyer, phase


async def test_a_waiter_hears_its_place_on_the_socket_then_buys_with_its_token(
    served: WsServer, admin: Account
) -> None:
    wait, buyer, phase = await _waiter(served, admin, opens_in=2.5, ws_url=None)
    assert wait.outcome == ADMITTED and not wait.fallback
    assert wait.end_t is not None and wait.end_t > wait.join_t1
    assert len(wait.updates) >= 1  # queue messages while the room was not open yet
    assert buyer.admission is not None
    rec = phase.rec
    assert rec.live["joined"] == 1 and rec.live["admitted"] == 1
    assert rec.bookings and buyer.owned == 2
    assert not [code for code in rec.errors if "not_admitted" in code]


async def test_a_waiter_whose_socket_fails_polls_and_is_counted(
    served: WsServer, admin: Account
) -> None:
    nowhere = f"ws://127.0.0.1:{free_port()}/ws/events/x"
    wait, buyer, phase = await _waiter(served, admin, opens_in=0.5, ws_url=nowhere)
    assert wait.fallback and wait.outcome == ADMITTED and not wait.updates
    assert buyer.admission is not None and phase.rec.bookings
    assert not [code for code in phase.rec.errors if "not_admitted" in code]
