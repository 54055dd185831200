"""The waiting room over HTTP: every status code of the flow, the admission token on the
hold, one-call booking and bulk paths, and the leader's admissions."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any

import httpx

from hub.context import Hub
from tests.conftest import Account, register
from tests.factories import make_event
from tests.waiting import eventually

HEADER = "X-Admission-Token"


def _at(seconds: float) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)).isoformat()


async def _room(
    client: httpx.AsyncClient, admin: Account, event_id: str, **body: Any
) -> httpx.Response:
    return await client.put(
        f"/api/v1/events/{event_id}/waiting-room", json=body, headers=admin.headers
    )


async def test_room_lifecycle_and_its_status_codes(
    client: httpx.AsyncClient, admin: Account, user: Account
) -> None:
    event = await make_event(client, admin)
    path = f"/api/v1/events/{event['id']}/waiting-room"
    assert (await client.get(path, headers=admin.headers)).status_code == 404
    assert (await client.put(path, json={"opens_at": _at(60)})).status_code == 401
    forbidden = await client.put(path, json={"opens_at": _at(60)}, headers=user.headers)
    assert forbidden.status_code == 403 and forbidden.json()["code"] == "forbidden"
    for bad, field in (
        ({}, "opens_at"),
        ({"opens_at": "soon"}, "opens_at"),
        ({"opens_at": _at(60), "admit_per_second": 0}, "admit_per_second"),
        ({"opens_at": _at(60), "session_seconds": 1}, "session_seconds"),
        ({"opens_at": _at(60), "extra": 1}, "extra"),
    ):
        refused = await client.put(path, json=bad, headers=admin.headers)
        assert refused.status_code == 422, bad
        assert field in refused.text
    assert (await client.get(path, headers=admin.headers)).status_code == 404  # nothing changed
    missing = f"/api/v1/events/{uuid.uuid4()}/waiting-room"
    assert (
        await client.put(missing, json={"opens_at": _at(60)}, headers=admin.headers)
    ).status_code == 404

    made = await _room(client, admin, event["id"], opens_at=_at(60))
    assert made.status_code == 200, made.text
    room = made.json()
    assert room["event_id"] == event["id"] and room["status"] == "scheduled"
    assert room["admit_per_second"] is None and room["session_seconds"] == 600
    assert room["waiting"] == 0 and room["admitted"] == 0
    assert (await client.get(path, headers=admin.headers)).json()["status"] == "scheduled"
    assert (await client.get(path, headers=user.headers)).status_code == 403

    opened = await _room(
        client, admin, event["id"], opens_at=_at(-1), admit_per_second=2.5, session_seconds=120
    )
    assert opened.json()["status"] == "open"
    assert opened.json()["admit_per_second"] == 2.5 and opened.json()["session_seconds"] == 120

    off = await client.delete(path, headers=admin.headers)
    assert off.status_code == 200 and off.json()["status"] == "closed"
    assert (await client.get(path, headers=admin.headers)).status_code == 404
    assert (await client.delete(path, headers=admin.headers)).status_code == 404


async def test_queue_join_read_leave(
    client: httpx.AsyncClient, admin: Account, user: Account, other_user: Account
) -> None:
    event = await make_event(client, admin)
    queue = f"/api/v1/events/{event['id']}/queue"
    assert (await client.post(queue, headers=user.headers)).status_code == 404  # no room
    assert (await client.get(queue, headers=user.headers)).status_code == 404
    await _room(client, admin, event["id"], opens_at=_at(600))
    assert (await client.post(queue)).status_code == 401

    joined = await client.post(queue, headers=user.headers)
    assert joined.status_code == 201, joined.text
    place = joined.json()
    assert place["status"] == "waiting"
    assert place["position"] is None and place["ahead"] is None  # places drawn at opening
    assert place["token"] is None and place["expires_at"] is None
    again = await client.post(queue, headers=user.headers)
    assert again.status_code == 200 and again.json()["queue_id"] == place["queue_id"]
    assert (await client.get(queue, headers=user.headers)).json()["queue_id"] == place["queue_id"]
    assert (await client.get(queue, headers=other_user.headers)).status_code == 404
    assert (await client.delete(queue, headers=other_user.headers)).status_code == 404

    room = await client.get(f"/api/v1/events/{event['id']}/waiting-room", headers=admin.headers)
    assert room.json()["waiting"] == 1
    assert (await client.delete(queue, headers=user.headers)).status_code == 204
    assert (await client.get(queue, headers=user.headers)).status_code == 404
    rejoined = await client.post(queue, headers=user.headers)
    assert rejoined.status_code == 201 and rejoined.json()["queue_id"] != place["queue_id"]


async def _admitted(client: httpx.AsyncClient, account: Account, event_id: str) -> dict[str, Any]:
    queue = f"/api/v1/events/{event_id}/queue"
    joined = await client.post(queue, headers=account.headers)
    assert joined.status_code in (200, 201), joined.text
    seen: dict[str, Any] = {}

    async def admitted() -> bool:
        seen.update((await client.get(queue, headers=account.headers)).json())
        return seen["status"] == "admitted"

    assert await eventually(admitted, within=10), seen
    return seen


async def test_admission_token_gates_holds_bookings_and_bulk(
    client: httpx.AsyncClient, admin: Account, user: Account, other_user: Account
) -> None:
    event = await make_event(client, admin)
    other_event = await make_event(client, admin)
    holds = f"/api/v1/events/{event['id']}/holds"
    # No room: the header is ignored, whatever it holds.
    free = await client.post(
        holds, json={"quantity": 1}, headers={**user.headers, HEADER: "nonsense"}
    )
    assert free.status_code == 201, free.text
    # A hold placed before the room came on is confirmed without a token.
    await _room(client, admin, event["id"], opens_at=_at(-1), admit_per_second=100)
    await _room(client, admin, other_event["id"], opens_at=_at(-1), admit_per_second=100)
    booked = await client.post(
        "/api/v1/bookings", json={"hold_id": free.json()["hold_id"]}, headers=user.headers
    )
    assert booked.status_code == 201, booked.text

    mine = await _admitted(client, user, event["id"])
    assert mine["token"] and mine["expires_at"] and mine["position"] is None
    theirs = await _admitted(client, other_user, event["id"])
    elsewhere = await _admitted(client, user, other_event["id"])

    def with_token(account: Account, token: str | None) -> dict[str, str]:
        return {**account.headers, **({HEADER: token} if token is not None else {})}

    for token in (None, "", "x.y.z", theirs["token"], elsewhere["token"], user.token):
        refused = await client.post(holds, json={"quantity": 1}, headers=with_token(user, token))
        assert refused.status_code == 403, token
        assert refused.json()["code"] == "not_admitted"
        one_call = await client.post(
            "/api/v1/bookings",
            json={"event_id": event["id"], "quantity": 1},
            headers=with_token(user, token),
        )
        assert one_call.status_code == 403 and one_call.json()["code"] == "not_admitted"
        bulk = await client.post(
            "/api/v1/advanced/bookings/bulk",
            json={"event_id": event["id"], "quantity": 2, "group_name": "Friends"},
            headers=with_token(user, token),
        )
        assert bulk.status_code == 403 and bulk.json()["code"] == "not_admitted"
    seats = await client.get(f"/api/v1/events/{event['id']}")
    assert seats.json()["availability"]["held"] == 0  # nothing refused held a seat

    held = await client.post(holds, json={"quantity": 1}, headers=with_token(user, mine["token"]))
    assert held.status_code == 201, held.text
    confirmed = await client.post(
        "/api/v1/bookings", json={"hold_id": held.json()["hold_id"]}, headers=user.headers
    )
    assert confirmed.status_code == 201, confirmed.text  # the hold is the proof
    one_call = await client.post(
        "/api/v1/bookings",
        json={"event_id": event["id"], "quantity": 1},
        headers=with_token(user, mine["token"]),
    )
    assert one_call.status_code == 201, one_call.text
    bulk = await client.post(
        "/api/v1/advanced/bookings/bulk",
        json={"event_id": event["id"], "quantity": 2, "group_name": "Friends"},
        headers=with_token(other_user, theirs["token"]),
    )
    assert bulk.status_code == 201, bulk.text

    # Turned off: no token needed any more.
    await client.delete(f"/api/v1/events/{event['id']}/waiting-room", headers=admin.headers)
    after = await client.post(holds, json={"quantity": 1}, headers=user.headers)
    assert after.status_code == 201, after.text


async def test_an_expired_token_is_refused(
    client: httpx.AsyncClient, hub: Hub, admin: Account, user: Account
) -> None:
    event = await make_event(client, admin)
    await _room(client, admin, event["id"], opens_at=_at(-1), admit_per_second=100)
    stale = hub.admission_tokens.issue(
        uuid.UUID(user.id), uuid.UUID(event["id"]), int(time.time()) - 1
    )
    refused = await client.post(
        f"/api/v1/events/{event['id']}/holds",
        json={"quantity": 1},
        headers={**user.headers, HEADER: stale},
    )
    assert refused.status_code == 403 and refused.json()["code"] == "not_admitted"


async def test_turning_the_room_off_admits_everyone_waiting_in_order(
    client: httpx.AsyncClient, admin: Account
) -> None:
    event = await make_event(client, admin)
    await _room(client, admin, event["id"], opens_at=_at(600))
    people = [await register(client) for _ in range(3)]
    for person in people:
        assert (
            await client.post(f"/api/v1/events/{event['id']}/queue", headers=person.headers)
        ).status_code == 201
    off = await client.delete(f"/api/v1/events/{event['id']}/waiting-room", headers=admin.headers)
    assert off.json()["admitted"] == 3 and off.json()["waiting"] == 0
    # The room is gone for the queue too.
    gone = await client.get(f"/api/v1/events/{event['id']}/queue", headers=people[0].headers)
    assert gone.status_code == 404


async def test_joining_is_rate_limited_per_address(settings: Any, admin_credentials: Any) -> None:
    from hub.app import create_app

    limited = create_app(settings.replace(rate_limits=True), leader_loops=[])
    async with limited.router.lifespan_context(limited):
        transport = httpx.ASGITransport(app=limited)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            email, password = admin_credentials
            login = await c.post("/api/v1/auth/login", json={"email": email, "password": password})
            admin = Account("", email, password, login.json()["access_token"])
            event = await make_event(c, admin)
            await _room(c, admin, event["id"], opens_at=_at(600))
            people = [await register(c) for _ in range(3)]
            statuses = []
            for i in range(12):
                person = people[i % 3]
                reply = await c.post(f"/api/v1/events/{event['id']}/queue", headers=person.headers)
                statuses.append(reply.status_code)
            assert 429 in statuses
            first_429 = statuses.index(429)
            assert all(s in (200, 201) for s in statuses[:first_429])
            assert first_429 >= 5
