"""The authorization matrix (issue 19, item 1), generated from the app's own route table.

Every HTTP route and WebSocket path the app serves is read from ``app.routes``; a route
that is neither exercised here nor listed in ``PUBLIC`` with a reason fails the test, so a
new route cannot escape it. The actors are anonymous, user A, user B and an admin:

- anonymous on every route that needs a token → 401 ``unauthorized`` (generated);
- A and B on every admin route → 403 ``forbidden`` (generated), also with real ids;
- B on A's object by id (holds, bookings, receipts, cancels) → 404 ``not_found``, and on
  the caller's own place (waitlist, queue) → 404 and A's place untouched (DESIGN §4:
  ids cannot be probed);
- another user's ``user_id`` in a query or body → 403 ``forbidden``;
- the admin → allowed (bookings, receipts and another's ``user_id`` included).

A route with an id in its path or an admin-only route must have been tried by all four
actors; any other signed-in route by anonymous and a user. Cross-user (or cross-role)
attempts that succeed are counted apart: there must be none. A second test sends every
body the route table declares with fields a client may not set (price, status, owner,
``user_id`` where the body has none, role on registration, discount amounts, total) → 422
naming each of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
import typing
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import BaseModel
from starlette.routing import Mount, Route, WebSocketRoute
from websockets.exceptions import ConnectionClosed

from hub.api import catalog
from hub.api.routing import PREFIX, Auth
from hub.settings import Settings
from loadtest.client import WatchClient
from tests.conftest import Account, register
from tests.factories import make_event, make_venue
from tests.live import serve
from tests.waiting import eventually

ACTORS = ("anonymous", "A", "B", "admin")

# Routes anyone may call, each with the reason it is public. Everything else needs a token.
PUBLIC: dict[str, str] = {
    f"POST {PREFIX}/auth/register": "creating an account is how a caller gets a token",
    f"POST {PREFIX}/auth/login": "signing in is how a caller gets a token",
    f"GET {PREFIX}/venues": "the venue catalogue is public",
    f"GET {PREFIX}/venues/{{venue_id}}": "the venue catalogue is public",
    f"GET {PREFIX}/events": "the event catalogue is public",
    f"GET {PREFIX}/events/{{event_id}}": "the event catalogue is public",
    f"GET {PREFIX}/events/{{event_id}}/seats": "anyone may see a seat map (DESIGN §4)",
    f"GET {PREFIX}/events/{{event_id}}/prices/history": "anyone may chart a price (DESIGN §4)",
    f"GET {PREFIX}/openapi.json": "the API's own description",
    "GET /healthz": "liveness probe: says only that the process is up",
    "GET /readyz": "readiness probe: says only whether PostgreSQL and Redis answer",
    "GET /metrics": "Prometheus scrape target: route templates and counts, no user data",
    "GET /": "page shell listing public events",
    "GET /admin": "page shell only: its data come over /ws/admin, which is admin-only",
    "GET /events/{event_id}": "page shell of the public seat map",
    "MOUNT /static": "static assets (scripts, styles) of the pages",
}
WS_PUBLIC: dict[str, str] = {
    "/ws/events/{event_id}": "anyone may watch a seat map (DESIGN §5); personal messages "
    "go only to the user of the hello's token (tried below by all four actors)",
}
# Stated here, not read from the declarations: the test checks that they agree.
ADMIN_ONLY: set[str] = {
    f"PATCH {PREFIX}/users/{{user_id}}",
    f"POST {PREFIX}/venues",
    f"POST {PREFIX}/events",
    f"PATCH {PREFIX}/events/{{event_id}}",
    f"POST {PREFIX}/events/{{event_id}}/cancel",
    f"PUT {PREFIX}/events/{{event_id}}/waiting-room",
    f"GET {PREFIX}/events/{{event_id}}/waiting-room",
    f"DELETE {PREFIX}/events/{{event_id}}/waiting-room",
    f"POST {PREFIX}/advanced/pricing/update/{{event_id}}",
    f"POST {PREFIX}/advanced/pricing/update-all",
    f"POST {PREFIX}/discount-codes",
    f"GET {PREFIX}/discount-codes",
    f"DELETE {PREFIX}/discount-codes/{{code}}",
    f"GET {PREFIX}/advanced/analytics/trends",
    f"GET {PREFIX}/advanced/analytics/user-behavior",
    f"GET {PREFIX}/advanced/analytics/predictions",
    f"GET {PREFIX}/advanced/analytics/dashboard",
    f"GET {PREFIX}/advanced/health/comprehensive",
    f"GET {PREFIX}/advanced/health/monitoring",
}

_PARAM = re.compile(r"\{([^}:]+)(:[^}]*)?\}")


def http_routes(app: Any) -> set[str]:
    """``METHOD path`` of every HTTP route of the app (HEAD aside), and ``MOUNT path``."""
    keys: set[str] = set()
    for route in app.routes:
        if isinstance(route, Route):
            keys |= {f"{m} {route.path}" for m in route.methods or () if m != "HEAD"}
        elif isinstance(route, Mount):
            keys.add(f"MOUNT {route.path}")
        elif not isinstance(route, WebSocketRoute):
            raise AssertionError(f"a route of an unknown kind: {route!r}")
    return keys


def websocket_paths(app: Any) -> set[str]:
    return {route.path for route in app.routes if isinstance(route, WebSocketRoute)}


def fill(path: str, ids: dict[str, str]) -> str:
    """The path with each parameter replaced by the id given for it, or a fresh one."""
    return _PARAM.sub(lambda m: ids.get(m.group(1), str(uuid.uuid4())), path)


def has_params(key: str) -> bool:
    return _PARAM.search(key) is not None


@dataclass
class Matrix:
    client: httpx.AsyncClient
    actors: dict[str, dict[str, str]]
    tried: dict[str, set[str]] = field(default_factory=dict)
    requests: int = 0
    failures: list[str] = field(default_factory=list)
    cross_attempts: int = 0
    cross_successes: list[str] = field(default_factory=list)

    async def probe(
        self,
        route: str,
        actor: str,
        expect: int,
        *,
        ids: dict[str, str] | None = None,
        json: Any = None,
        params: dict[str, str] | None = None,
        code: str | None = None,
        cross: bool = False,
        check: Callable[[Any], str | None] | None = None,
    ) -> httpx.Response:
        """Call ``route`` as ``actor`` and record what came back against ``expect``.

        ``cross``: the call reaches for another user's object or a role the actor lacks,
        so any success is a hole (counted apart). ``check``: a look at a success's body that
        returns what is wrong with it, or None.
        """
        method, template = route.split(" ", 1)
        url = fill(template, ids or {})
        response = await self.client.request(
            method, url, json=json, params=params, headers=self.actors[actor]
        )
        self.requests += 1
        self.tried.setdefault(route, set()).add(actor)
        what = f"{actor} {method} {url}{'?' + str(params) if params else ''}"
        if cross:
            self.cross_attempts += 1
            if response.is_success:
                self.cross_successes.append(f"{what} -> {response.status_code}")
        if response.status_code != expect:
            self.failures.append(
                f"{what} -> {response.status_code} (expected {expect}): {response.text[:300]}"
            )
        elif code is not None and response.json().get("code") != code:
            self.failures.append(f"{what} -> code {response.json().get('code')!r}, not {code!r}")
        elif check is not None:
            wrong = check(response.json())
            if wrong is not None:
                self.failures.append(f"{what}: {wrong}")
        return response


def _owned_by(user_id: str, *, present: str | None = None) -> Callable[[Any], str | None]:
    """A check of a booking page: every item is ``user_id``'s (and ``present`` is there)."""

    def check(body: Any) -> str | None:
        owners = {item["user_id"] for item in body["items"]}
        if owners - {user_id}:
            return f"items of other users listed: {sorted(owners - {user_id})}"
        if present is not None and present not in {item["id"] for item in body["items"]}:
            return f"booking {present} missing"
        return None

    return check


def _field_is(name: str, value: Any) -> Callable[[Any], str | None]:
    def check(body: Any) -> str | None:
        return None if body.get(name) == value else f"{name} is {body.get(name)!r}, not {value!r}"

    return check


def _route(method: str, path: str) -> str:
    return f"{method} {PREFIX}{path}"


async def _login(client: httpx.AsyncClient, who: Account) -> Account:
    response = await client.post(
        f"{PREFIX}/auth/login", json={"email": who.email, "password": who.password}
    )
    assert response.status_code == 200, response.text
    return Account(who.id, who.email, who.password, response.json()["access_token"])


def test_the_matrix_lists_agree_with_the_declarations(app: Any) -> None:
    """The lists above agree with what the route table declares: an admin route declared
    for any user, or a route declared public that is not listed so, fails here."""
    declared = {f"{e.method} {e.path}": e.auth for e in catalog.build_api().endpoints}
    assert {k for k, auth in declared.items() if auth is Auth.ADMIN} == ADMIN_ONLY
    public_api = {k for k, auth in declared.items() if auth in (Auth.NONE, Auth.OPTIONAL)}
    served_apart = {f"GET {PREFIX}/openapi.json"}  # an operations route, not in the table
    assert public_api == {
        k for k in PUBLIC if k.split(" ", 1)[1].startswith(PREFIX) and k not in served_apart
    }
    routes = http_routes(app)
    assert set(PUBLIC) <= routes, set(PUBLIC) - routes
    assert ADMIN_ONLY <= routes, ADMIN_ONLY - routes
    assert all(reason.strip() for reason in (*PUBLIC.values(), *WS_PUBLIC.values()))


async def test_authorization_matrix(app: Any, client: httpx.AsyncClient, admin: Account) -> None:
    a = await register(client, "User A")
    b = await register(client, "User B")
    m = Matrix(client, {"anonymous": {}, "A": a.headers, "B": b.headers, "admin": admin.headers})
    routes = http_routes(app)
    event = await make_event(client, admin, rows=3, seats_per_row=10)
    ev = event["id"]
    seats = (await client.get(f"{PREFIX}/events/{ev}/seats")).json()["seats"]
    seat = [s["id"] for s in seats]

    # Generated from the route table: a token is needed, and an admin's role, before
    # anything else is looked at (random ids: the object need not exist).
    for key in sorted(routes - set(PUBLIC)):
        await m.probe(key, "anonymous", 401, code="unauthorized", cross=True)
        if key in ADMIN_ONLY:
            for actor in ("A", "B"):
                await m.probe(key, actor, 403, code="forbidden", cross=True)
    # Public routes are public: anonymous reads succeed with real ids.
    public_ids = {"event_id": ev, "venue_id": event["venue_id"]}
    for key in sorted(PUBLIC):
        if key.startswith("GET "):
            await m.probe(key, "anonymous", 200, ids=public_ids)

    # Accounts.
    await m.probe(
        _route("POST", "/auth/register"),
        "anonymous",
        201,
        json={
            "email": f"m-{uuid.uuid4().hex[:10]}@example.com",
            "password": "long enough pw",
            "name": "M",
        },
    )
    await m.probe(
        _route("POST", "/auth/login"),
        "anonymous",
        200,
        json={"email": a.email, "password": a.password},
    )
    me = _route("GET", "/users/me")
    await m.probe(me, "A", 200, check=_field_is("id", a.id))
    await m.probe(me, "B", 200, check=_field_is("id", b.id))
    await m.probe(me, "admin", 200, check=_field_is("role", "admin"))
    role = _route("PATCH", "/users/{user_id}")
    promote = {"role": "admin"}
    await m.probe(role, "A", 403, ids={"user_id": a.id}, json=promote, code="forbidden", cross=True)
    await m.probe(role, "B", 403, ids={"user_id": a.id}, json=promote, code="forbidden", cross=True)
    await m.probe(role, "admin", 200, ids={"user_id": b.id}, json={"role": "user"})
    await m.probe(me, "A", 200, check=_field_is("role", "user"))

    # Venues and events (admin writes, tried with real ids too).
    venue_body = {
        "name": f"V {uuid.uuid4().hex[:6]}",
        "city": "Porto",
        "sections": [{"name": "Main", "rows": 2, "seats_per_row": 5, "base_price": "10.00"}],
    }
    await m.probe(_route("POST", "/venues"), "admin", 201, json=venue_body)
    event_body = {
        "name": "Matrix",
        "description": "d",
        "category": "concert",
        "keywords": [],
        "venue_id": event["venue_id"],
        "starts_at": (dt.datetime.now(dt.UTC) + dt.timedelta(days=20)).isoformat(),
        "section_prices": {"Orchestra": "50.00"},
    }
    spare = await m.probe(_route("POST", "/events"), "admin", 201, json=event_body)
    patch = _route("PATCH", "/events/{event_id}")
    for actor in ("A", "B"):
        await m.probe(
            patch,
            actor,
            403,
            ids={"event_id": ev},
            json={"description": "x"},
            code="forbidden",
            cross=True,
        )
    await m.probe(patch, "admin", 200, ids={"event_id": ev}, json={"description": "patched"})
    cancel_event = _route("POST", "/events/{event_id}/cancel")
    spare_ids = {"event_id": spare.json()["id"]}
    await m.probe(cancel_event, "A", 403, ids=spare_ids, code="forbidden", cross=True)
    await m.probe(cancel_event, "admin", 200, ids=spare_ids)

    # Holds: another user's hold is not found, and its seats are not takeable.
    place = _route("POST", "/events/{event_id}/holds")
    at_ev = {"event_id": ev}
    held = await m.probe(place, "A", 201, ids=at_ev, json={"seat_ids": [seat[0]]})
    hold_a = {"hold_id": held.json()["hold_id"]}
    await m.probe(
        place,
        "B",
        409,
        ids=at_ev,
        json={"seat_ids": [seat[0]]},
        code="seat_unavailable",
        cross=True,
    )
    await m.probe(place, "B", 201, ids=at_ev, json={"seat_ids": [seat[1]]})
    await m.probe(place, "admin", 201, ids=at_ev, json={"quantity": 1})
    get_hold = _route("GET", "/holds/{hold_id}")
    extend = _route("POST", "/holds/{hold_id}/extend")
    release = _route("DELETE", "/holds/{hold_id}")
    for key in (get_hold, extend, release):
        await m.probe(key, "B", 404, ids=hold_a, code="not_found", cross=True)
        # A hold is its holder's alone (DESIGN §4: "one of the caller's holds"); an admin
        # is another caller here and gets the same 404.
        await m.probe(key, "admin", 404, ids=hold_a, code="not_found")
    await m.probe(get_hold, "A", 200, ids=hold_a, check=_field_is("hold_id", hold_a["hold_id"]))
    await m.probe(extend, "A", 200, ids=hold_a)
    await m.probe(release, "A", 204, ids=hold_a)

    # Bookings: B cannot book A's hold, read, receipt or cancel A's bookings, nor list them.
    held = await m.probe(place, "A", 201, ids=at_ev, json={"seat_ids": [seat[2]]})
    create = _route("POST", "/bookings")
    a_hold = held.json()["hold_id"]
    await m.probe(create, "B", 404, json={"hold_id": a_hold}, code="not_found", cross=True)
    booked = await m.probe(
        create, "A", 201, json={"hold_id": a_hold}, check=_field_is("user_id", a.id)
    )
    booked2 = await m.probe(create, "A", 201, json={"event_id": ev, "quantity": 1})
    await m.probe(
        create,
        "admin",
        201,
        json={"event_id": ev, "quantity": 1},
        check=_field_is("user_id", admin.id),
    )
    first = {"booking_id": booked.json()["id"]}
    second = {"booking_id": booked2.json()["id"]}
    listing = _route("GET", "/bookings")
    await m.probe(listing, "A", 200, check=_owned_by(a.id, present=first["booking_id"]))
    await m.probe(listing, "B", 200, check=_owned_by(b.id))
    await m.probe(listing, "B", 403, params={"user_id": a.id}, code="forbidden", cross=True)
    await m.probe(listing, "A", 200, params={"user_id": a.id}, check=_owned_by(a.id))
    await m.probe(
        listing,
        "admin",
        200,
        params={"user_id": a.id},
        check=_owned_by(a.id, present=first["booking_id"]),
    )
    for key in (
        _route("GET", "/bookings/{booking_id}"),
        _route("GET", "/bookings/{booking_id}/receipt"),
    ):
        await m.probe(key, "B", 404, ids=first, code="not_found", cross=True)
        await m.probe(key, "A", 200, ids=first)
        await m.probe(key, "admin", 200, ids=first)
    cancel = _route("POST", "/bookings/{booking_id}/cancel")
    await m.probe(cancel, "B", 404, ids=first, code="not_found", cross=True)
    await m.probe(
        _route("GET", "/bookings/{booking_id}"),
        "A",
        200,
        ids=first,
        check=_field_is("status", "confirmed"),
    )
    await m.probe(cancel, "admin", 200, ids=first, check=_field_is("status", "cancelled"))
    await m.probe(cancel, "A", 200, ids=second, check=_field_is("status", "cancelled"))

    # The waitlist: a place is the caller's own; B neither sees nor removes A's.
    line = {"event_id": ev}
    join_wl = _route("POST", "/events/{event_id}/waitlist")
    read_wl = _route("GET", "/events/{event_id}/waitlist")
    leave_wl = _route("DELETE", "/events/{event_id}/waitlist")
    await m.probe(join_wl, "A", 201, ids=line, json={"quantity": 1})
    await m.probe(read_wl, "B", 404, ids=line, code="not_found", cross=True)
    await m.probe(leave_wl, "B", 404, ids=line, code="not_found", cross=True)
    await m.probe(read_wl, "A", 200, ids=line)
    await m.probe(join_wl, "B", 201, ids=line, json={"quantity": 1})
    await m.probe(join_wl, "admin", 201, ids=line, json={"quantity": 1})
    await m.probe(read_wl, "admin", 200, ids=line)
    await m.probe(leave_wl, "admin", 204, ids=line)
    await m.probe(leave_wl, "A", 204, ids=line)
    await m.probe(leave_wl, "B", 204, ids=line)

    # The waiting room (admin) and its queue (a place is the caller's own).
    roomed = await make_event(client, admin, rows=1, seats_per_row=5)
    room = {"event_id": roomed["id"]}
    put_room = _route("PUT", "/events/{event_id}/waiting-room")
    opens = {"opens_at": (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()}
    for actor in ("A", "B"):
        await m.probe(put_room, actor, 403, ids=room, json=opens, code="forbidden", cross=True)
    await m.probe(put_room, "admin", 200, ids=room, json=opens)
    await m.probe(_route("GET", "/events/{event_id}/waiting-room"), "admin", 200, ids=room)
    join_q = _route("POST", "/events/{event_id}/queue")
    read_q = _route("GET", "/events/{event_id}/queue")
    leave_q = _route("DELETE", "/events/{event_id}/queue")
    queued = await m.probe(join_q, "A", 201, ids=room)
    await m.probe(read_q, "B", 404, ids=room, code="not_found", cross=True)
    await m.probe(leave_q, "B", 404, ids=room, code="not_found", cross=True)
    await m.probe(
        read_q, "A", 200, ids=room, check=_field_is("queue_id", queued.json()["queue_id"])
    )
    other = await m.probe(join_q, "B", 201, ids=room)
    if other.json().get("queue_id") == queued.json()["queue_id"]:
        m.failures.append("B was given A's queue place")
    await m.probe(join_q, "admin", 201, ids=room)
    await m.probe(read_q, "admin", 200, ids=room)
    await m.probe(leave_q, "admin", 204, ids=room)
    await m.probe(leave_q, "A", 204, ids=room)
    await m.probe(leave_q, "B", 204, ids=room)
    await m.probe(_route("DELETE", "/events/{event_id}/waiting-room"), "admin", 200, ids=room)

    # Pricing and discount codes (admin).
    reprice = _route("POST", "/advanced/pricing/update/{event_id}")
    await m.probe(reprice, "A", 403, ids=at_ev, code="forbidden", cross=True)
    await m.probe(reprice, "admin", 200, ids=at_ev)
    await m.probe(_route("POST", "/advanced/pricing/update-all"), "admin", 200)
    code_name = f"MX{uuid.uuid4().hex[:8].upper()}"
    await m.probe(
        _route("POST", "/discount-codes"),
        "admin",
        201,
        json={"code": code_name, "percent": 10, "max_uses": 5},
    )
    await m.probe(_route("GET", "/discount-codes"), "admin", 200)
    disable = _route("DELETE", "/discount-codes/{code}")
    for actor in ("A", "B"):
        await m.probe(disable, actor, 403, ids={"code": code_name}, code="forbidden", cross=True)
    await m.probe(disable, "admin", 204, ids={"code": code_name})

    # Another user's user_id in a body: 403 for a user, allowed for an admin.
    bulk = _route("POST", "/advanced/bookings/bulk")
    group = {"event_id": ev, "quantity": 2, "group_name": "Matrix group"}
    await m.probe(bulk, "B", 403, json={**group, "user_id": a.id}, code="forbidden", cross=True)
    await m.probe(bulk, "A", 201, json={**group, "user_id": a.id}, check=_field_is("user_id", a.id))
    await m.probe(
        bulk, "admin", 201, json={**group, "user_id": a.id}, check=_field_is("user_id", a.id)
    )
    seat_recs = _route("POST", "/advanced/seats/recommendations")
    wanted = {"event_id": ev, "quantity": 2}
    await m.probe(
        seat_recs, "B", 403, json={**wanted, "user_id": a.id}, code="forbidden", cross=True
    )
    await m.probe(seat_recs, "A", 200, json={**wanted, "user_id": a.id})
    await m.probe(seat_recs, "admin", 200, json={**wanted, "user_id": a.id})
    event_recs = _route("POST", "/advanced/events/recommendations")
    await m.probe(event_recs, "B", 403, json={"user_id": a.id}, code="forbidden", cross=True)
    await m.probe(event_recs, "A", 200, json={"user_id": a.id})
    await m.probe(event_recs, "admin", 200, json={"user_id": a.id})

    # Analytics and health (admin).
    for path in (
        "/advanced/analytics/trends",
        "/advanced/analytics/user-behavior",
        "/advanced/analytics/predictions",
        "/advanced/analytics/dashboard",
        "/advanced/health/comprehensive",
        "/advanced/health/monitoring",
    ):
        await m.probe(_route("GET", path), "admin", 200)

    # The caller's own session and password, last: each ends A's token.
    await m.probe(_route("POST", "/auth/logout"), "A", 204)
    await m.probe(me, "A", 401, code="unauthorized")
    m.actors["A"] = (await _login(client, a)).headers
    await m.probe(_route("POST", "/auth/logout-all"), "A", 204)
    await m.probe(me, "A", 401, code="unauthorized")
    m.actors["A"] = (await _login(client, a)).headers
    await m.probe(
        _route("POST", "/users/me/password"),
        "A",
        204,
        json={"current_password": a.password, "new_password": "another long password"},
    )

    # Coverage, from the app's own table: every route exercised or listed as public.
    missing: list[str] = []
    for key in sorted(routes):
        if key in PUBLIC:
            continue
        actors = m.tried.get(key, set())
        needed = set(ACTORS) if (has_params(key) or key in ADMIN_ONLY) else {"anonymous"}
        if not needed <= actors or not actors & {"A", "B", "admin"}:
            missing.append(f"{key}: tried by {sorted(actors)}, needs {sorted(needed)} and a user")
    stale = sorted(set(m.tried) - routes)
    pairs = sum(len(actors) for actors in m.tried.values())
    print(
        f"\nauthorization matrix: {len(routes)} HTTP routes ({len(routes) - len(PUBLIC)} "
        f"needing a token, {len(ADMIN_ONLY)} admin-only); {pairs} route x actor pairs tried "
        f"in {m.requests} requests; cross-user/role attempts {m.cross_attempts}, successes "
        f"{len(m.cross_successes)}; failures found {len(m.failures)}"
    )
    for line_ in (*m.cross_successes, *m.failures, *missing, *stale):
        print("  ", line_)
    assert not missing, "routes neither exercised by every actor nor listed as public"
    assert not stale, "the matrix names routes the app does not have"
    assert m.cross_successes == []
    assert m.failures == []


# Fields a client may never set in a request body: server-computed or privileged values.
FORBIDDEN_FIELDS = (
    "price",
    "prices",
    "status",
    "owner",
    "owner_id",
    "user_id",
    "role",
    "is_admin",
    "discount",
    "discount_rate",
    "discount_amount",
    "amount",
    "total",
    "subtotal",
    "refund",
    "id",
    "reference",
    "created_at",
    "uses",
)


def _models_in(model: type[BaseModel]) -> list[type[BaseModel]]:
    """``model`` and every model nested in its fields."""
    found = [model]
    for info in model.model_fields.values():
        stack: list[Any] = [info.annotation]
        while stack:
            tp = stack.pop()
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                found += [nested for nested in _models_in(tp) if nested not in found]
            stack.extend(typing.get_args(tp))
    return found


async def test_bodies_refuse_fields_a_client_may_not_set(
    client: httpx.AsyncClient, admin: Account
) -> None:
    user = await register(client, "Body Prober")
    tried = 0
    failures: list[str] = []
    for endpoint in catalog.build_api().endpoints:
        if endpoint.body is None:
            continue
        for model in _models_in(endpoint.body):
            if model.model_config.get("extra") != "forbid":
                failures.append(f"{model.__name__} ({endpoint.path}) accepts unknown fields")
        smuggled = [name for name in FORBIDDEN_FIELDS if name not in endpoint.body.model_fields]
        headers = {Auth.ADMIN: admin.headers, Auth.USER: user.headers}.get(endpoint.auth, {})
        response = await client.request(
            endpoint.method,
            fill(endpoint.path, {"code": "NOSUCHCODE"}),
            json=dict.fromkeys(smuggled, "1"),
            headers=headers,
        )
        tried += 1
        if response.status_code != 422:
            failures.append(f"{endpoint.method} {endpoint.path} -> {response.status_code}")
            continue
        named = {e["field"] for e in response.json()["errors"] if e["message"] == "unknown field"}
        if set(smuggled) - named:
            failures.append(f"{endpoint.method} {endpoint.path}: {set(smuggled) - named} let in")
    # A valid body with one such field is refused as well, not served without it.
    event = await make_event(client, admin, rows=1, seats_per_row=5)
    register_body = {
        "email": f"r-{uuid.uuid4().hex[:10]}@example.com",
        "password": "long enough pw",
        "name": "R",
        "role": "admin",
    }
    valid_plus = [
        ("POST", f"{PREFIX}/auth/register", register_body, {}),
        (
            "POST",
            f"{PREFIX}/events/{event['id']}/holds",
            {"quantity": 1, "price": "0.01"},
            user.headers,
        ),
        (
            "POST",
            f"{PREFIX}/bookings",
            {"event_id": event["id"], "quantity": 1, "total": "0.00"},
            user.headers,
        ),
        (
            "POST",
            f"{PREFIX}/bookings",
            {"event_id": event["id"], "quantity": 1, "user_id": admin.id},
            user.headers,
        ),
        (
            "POST",
            f"{PREFIX}/bookings",
            {"event_id": event["id"], "quantity": 1, "discount_rate": "1"},
            user.headers,
        ),
        (
            "POST",
            f"{PREFIX}/events/{event['id']}/waitlist",
            {"quantity": 1, "status": "offered"},
            user.headers,
        ),
        (
            "POST",
            f"{PREFIX}/advanced/bookings/bulk",
            {"event_id": event["id"], "quantity": 2, "group_name": "G", "discount": "50.00"},
            user.headers,
        ),
        (
            "POST",
            f"{PREFIX}/discount-codes",
            {"code": f"Z{uuid.uuid4().hex[:8]}", "percent": 5, "max_uses": 1, "uses": 0},
            admin.headers,
        ),
    ]
    for method, path, body, headers in valid_plus:
        response = await client.request(method, path, json=body, headers=headers)
        tried += 1
        if response.status_code != 422:
            failures.append(f"{method} {path} with {body} -> {response.status_code}")
    seats = (await client.get(f"{PREFIX}/events/{event['id']}/seats")).json()["seats"]
    assert all(s["status"] == "free" for s in seats), "a refused body changed the seats"
    print(f"\nbodies with fields a client may not set: {tried} tried, failures {len(failures)}")
    assert failures == []


async def _admin_channel_answer(url: str, token: str | None) -> str:
    """What ``/ws/admin`` does with a hello carrying ``token``: its first message's type,
    or the close code it ends with."""
    conn = await WatchClient.open(url, subprotocol="json")
    try:
        await conn.send({"t": "hello", **({"token": token} if token else {})})
        try:
            message = await asyncio.wait_for(conn.recv(), 10)
        except ConnectionClosed as closed:
            return f"close {closed.rcvd.code if closed.rcvd else None}"
        return str(message.get("t"))
    finally:
        await conn.close()


PERSONAL = ("queue", "admitted", "offer", "sold_out")


async def _personal_messages_stay_personal(
    server: Any, event_id: str, a: Account, b: Account, admin: Account
) -> list[str]:
    """A queues for the event's waiting room; A, B, the admin and an anonymous watcher all
    watch it. A hears its ``queue`` updates and its ``admitted`` token; the others hear
    seat traffic only: no one else's place, and no one else's admission token."""
    failures: list[str] = []
    async with httpx.AsyncClient(base_url=server.base) as http:
        room = f"{PREFIX}/events/{event_id}/waiting-room"
        opens_later = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)).isoformat()
        put = await http.put(room, json={"opens_at": opens_later}, headers=admin.headers)
        assert put.status_code == 200, put.text
        joined = await http.post(f"{PREFIX}/events/{event_id}/queue", headers=a.headers)
        assert joined.status_code == 201, joined.text
        heard: dict[str, list[dict[str, Any]]] = {}
        watchers: dict[str, WatchClient] = {}
        tokens = {"anonymous": None, "A": a.token, "B": b.token, "admin": admin.token}
        for actor, token in tokens.items():
            conn = await WatchClient.open(server.event_url(event_id), subprotocol="json")
            await conn.send({"t": "hello", **({"token": token} if token else {})})
            watchers[actor] = conn
            heard[actor] = []

        async def listen(actor: str) -> None:
            with contextlib.suppress(ConnectionClosed):
                while True:
                    heard[actor].append(await watchers[actor].recv())

        def a_heard(kind: str, count: int = 1) -> bool:
            return sum(m["t"] == kind for m in heard["A"]) >= count

        listeners = [asyncio.ensure_future(listen(actor)) for actor in watchers]
        try:
            # two queue messages: at least one 2 s period in which the others may hear them
            assert await eventually(lambda: a_heard("queue", 2), within=15), heard["A"][-5:]
            now = dt.datetime.now(dt.UTC).isoformat()
            opened = await http.put(
                room, json={"opens_at": now, "admit_per_second": 100}, headers=admin.headers
            )
            assert opened.status_code == 200, opened.text
            assert await eventually(lambda: a_heard("admitted"), within=15), heard["A"][-5:]
            await asyncio.sleep(0.5)  # anything sent to the others at the same time arrives
        finally:
            for task in listeners:
                task.cancel()
            for conn in watchers.values():
                await conn.close()
        await http.delete(room, headers=admin.headers)
    for actor in ("anonymous", "B", "admin"):
        leaked = [m for m in heard[actor] if m["t"] in PERSONAL]
        if leaked:
            failures.append(f"/ws/events as {actor} heard A's personal messages: {leaked[:3]}")
        if not any(m["t"] == "snapshot" for m in heard[actor]):
            failures.append(f"/ws/events as {actor}: no snapshot")
    return failures


async def test_websocket_matrix(
    app: Any, settings: Settings, client: httpx.AsyncClient, admin: Account
) -> None:
    a = await register(client, "WS A")
    b = await register(client, "WS B")
    event = await make_venue(client, admin)  # any id: the seat map channel is public
    paths = websocket_paths(app)
    tried: dict[str, set[str]] = {}
    failures: list[str] = []
    async with serve(settings.replace(ws_max_per_ip=10_000)) as server:
        tokens = {"anonymous": None, "A": a.token, "B": b.token, "admin": admin.token}
        expected = {
            "anonymous": "close 4403",
            "A": "close 4403",
            "B": "close 4403",
            "admin": "metrics",
        }
        for actor, token in tokens.items():
            answer = await _admin_channel_answer(server.url("/ws/admin"), token)
            tried.setdefault("/ws/admin", set()).add(actor)
            if answer != expected[actor]:
                failures.append(f"/ws/admin as {actor}: {answer}, expected {expected[actor]}")
        watched = await make_event(client, admin, venue_id=event["id"])
        failures += await _personal_messages_stay_personal(server, watched["id"], a, b, admin)
        tried["/ws/events/{event_id}"] = set(ACTORS)
    unexercised = sorted(p for p in paths if p not in WS_PUBLIC and tried.get(p) != set(ACTORS))
    print(
        f"\nwebsocket matrix: {len(paths)} paths, "
        f"{sum(len(v) for v in tried.values())} path x actor pairs tried, "
        f"failures found {len(failures)}"
    )
    assert not unexercised, f"WebSocket paths neither exercised nor public: {unexercised}"
    assert set(WS_PUBLIC) <= paths
    assert failures == []
