"""Live seat recommendations over a real server, in both subprotocols: a watcher that asks
in ``hello.reco`` is sent its blocks, new ones when its best block is taken by someone else,
none when an unrelated seat changes; anonymous watchers get a neutral similarity, a user
with past tickets a personal one; a wish that cannot be served is refused with ``error``."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from engines.seats import SeatCode
from loadtest.client import WatchClient
from tests.conftest import Account
from tests.factories import make_event
from tests.hub.api.booking_helpers import book, hold_ok, seat_map
from tests.hub.channels.conftest import WsServer, loaded_event
from tests.waiting import eventually

pytestmark = pytest.mark.parametrize("subprotocol", ["msgpack", "json"])

WISH = {"quantity": 2, "max_price": None, "preferred_sections": [], "accessibility_required": False}
SCORES = {"similarity", "value", "location", "group"}


class Inbox:
    """Every message a watcher receives, read as it comes (seat messages kept applied)."""

    def __init__(self, client: WatchClient) -> None:
        self.client = client
        self.messages: list[dict[str, Any]] = []
        self._task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        while True:
            message = await self.client.recv()
            self.client.mirror.on_message(message)
            self.messages.append(message)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["t"] == kind]

    async def drained(self) -> None:
        """Everything the hub wrote before now has arrived (a ping's pong comes after it)."""
        pongs = len(self.of("pong"))
        await self.client.send({"t": "ping"})
        assert await eventually(lambda: len(self.of("pong")) > pongs)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        await self.client.close()


@contextlib.asynccontextmanager
async def watching(ws: WsServer, event_id: str, subprotocol: str) -> AsyncIterator[Inbox]:
    inbox = Inbox(await WatchClient.open(ws.event_url(event_id), subprotocol=subprotocol))
    try:
        assert await eventually(lambda: bool(inbox.of("snapshot")))
        yield inbox
    finally:
        await inbox.close()


def _check_items(items: list[dict[str, Any]], quantity: int) -> None:
    """The items of the HTTP seat recommendations: seats, prices, scores in [0, 1]."""
    assert items
    seen: set[str] = set()
    for item in items:
        assert len(item["seats"]) == quantity
        for seat in item["seats"]:
            assert set(seat) >= {"id", "section", "row", "number", "price", "accessible"}
            assert seat["id"] not in seen  # no two blocks share a seat
            seen.add(seat["id"])
        assert set(item["scores"]) == SCORES
        assert all(0 <= item["scores"][name] <= 1 for name in SCORES)
        assert 0 <= item["score"] <= 1 and isinstance(item["together"], bool)
    scores = [item["score"] for item in items]
    assert scores == sorted(scores, reverse=True)  # best first


async def test_new_blocks_when_the_best_is_taken_and_none_for_an_unrelated_seat(
    ws: WsServer, client: httpx.AsyncClient, admin: Account, other_user: Account, subprotocol: str
) -> None:
    event = await make_event(client, admin)
    seats = await seat_map(client, event["id"])
    index_of = {seat["id"]: i for i, seat in enumerate(seats)}
    async with watching(ws, event["id"], subprotocol) as inbox:
        await inbox.client.send({"t": "hello", "reco": WISH})
        assert await eventually(lambda: len(inbox.of("reco")) == 1)
        first = inbox.of("reco")[0]["recommendations"]
        _check_items(first, 2)
        assert {item["scores"]["similarity"] for item in first} == {0.5}  # anonymous
        assert first[0]["seats"][0]["section"] == "Orchestra"  # nearest the stage
        board = ws.hub.channels.events[uuid.UUID(event["id"])].reco
        assert board is not None
        assert await eventually(lambda: not board.busy)

        # a seat in no recommended block and beside none, at the back: taken, nothing sent
        shown = {index_of[seat["id"]] for item in first for seat in item["seats"]}
        near = {i + d for i in shown for d in range(-2, 3)}
        unrelated = next(s for s in reversed(seats) if index_of[s["id"]] not in near)
        passes = board.passes
        await hold_ok(client, other_user, event["id"], seat_ids=[unrelated["id"]])
        at = index_of[unrelated["id"]]
        assert await eventually(lambda: inbox.client.mirror.seats[at] == SeatCode.HELD)
        assert await eventually(lambda: board.passes > passes and not board.busy)
        await inbox.drained()
        assert len(inbox.of("reco")) == 1

        # the best block taken by someone else: new blocks, none with its seats
        best = [seat["id"] for seat in first[0]["seats"]]
        await hold_ok(client, other_user, event["id"], seat_ids=best)
        assert await eventually(lambda: len(inbox.of("reco")) == 2)
        second = inbox.of("reco")[1]["recommendations"]
        _check_items(second, 2)
        assert all(seat["id"] not in best for item in second for seat in item["seats"])
        assert {item["scores"]["similarity"] for item in second} == {0.5}


async def test_a_user_with_past_tickets_gets_a_personal_similarity(
    ws: WsServer, client: httpx.AsyncClient, admin: Account, user: Account, subprotocol: str
) -> None:
    past = await make_event(client, admin)
    balcony = [s["id"] for s in await seat_map(client, past["id"]) if s["section"] == "Balcony"]
    held = await hold_ok(client, user, past["id"], seat_ids=balcony[-2:])
    booked = await book(client, user, hold_id=held["hold_id"])
    assert booked.status_code == 201, booked.text
    event = await make_event(client, admin)
    async with watching(ws, event["id"], subprotocol) as inbox:
        await inbox.client.send({"t": "hello", "token": user.token, "reco": WISH})
        assert await eventually(lambda: len(inbox.of("reco")) == 1)
        items = inbox.of("reco")[0]["recommendations"]
        _check_items(items, 2)
        assert {item["scores"]["similarity"] for item in items} != {0.5}
        # the similarity is to the Balcony seats the user booked before, which an anonymous
        # watcher's first block (in the Orchestra, nearer the stage) is not
        assert items[0]["seats"][0]["section"] == "Balcony"
        assert items[0]["scores"]["similarity"] > 0.5
        assert not inbox.of("error")


async def test_a_wish_that_cannot_be_served_is_refused_and_a_hello_without_one_stops(
    ws: WsServer, client: httpx.AsyncClient, admin: Account, subprotocol: str
) -> None:
    event = await make_event(client, admin)
    async with watching(ws, event["id"], subprotocol) as inbox:
        bad = [
            "two seats",
            {"quantity": 0},
            {"quantity": "2"},
            {**WISH, "max_price": "cheap"},
            {**WISH, "preferred_sections": "Orchestra"},
            {**WISH, "preferred_sections": ["Stalls"]},
            {**WISH, "accessibility_required": 1},
            {**WISH, "seats": 4},
        ]
        for n, reco in enumerate(bad, start=1):
            await inbox.client.send({"t": "hello", "reco": reco})
            assert await eventually(lambda n=n: len(inbox.of("error")) == n), reco
            error = inbox.of("error")[-1]
            assert (error["code"], error["refused"]) == ("bad_message", "hello"), error
        assert "Stalls" in inbox.of("error")[5]["detail"]
        await inbox.drained()
        assert not inbox.of("reco")  # none was accepted; the connection stays open

        await inbox.client.send({"t": "hello", "reco": WISH})
        assert await eventually(lambda: len(inbox.of("reco")) == 1)
        channel = ws.hub.channels.events[uuid.UUID(event["id"])]
        assert channel.reco is not None and len(channel.reco) == 1
        await inbox.client.send({"t": "hello"})  # no reco: no more of them
        assert await eventually(lambda: channel.reco is None)


async def test_an_event_without_a_seat_map_refuses_recommendations(
    ws: WsServer, subprotocol: str
) -> None:
    event_id = await loaded_event(ws.hub)  # in Redis only: no venue to recommend from
    async with watching(ws, str(event_id), subprotocol) as inbox:
        await inbox.client.send({"t": "hello", "reco": WISH})
        assert await eventually(lambda: bool(inbox.of("error")))
        error = inbox.of("error")[0]
        assert (error["code"], error["refused"]) == ("not_found", "hello")
