"""The input layer's rules for every model: no NUL in any text (422 naming the field, never
the 500 PostgreSQL's refusal would be), and strict bodies (no booleans or strings as
numbers) that still take every valid client's UUIDs, datetimes and decimals."""

from __future__ import annotations

import datetime as dt
import json
import types
import typing
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pydantic
import pytest
from pydantic import BaseModel

from hub.api.catalog import build_api
from hub.api.inputs import Input, QueryInput
from tests.conftest import Account, register
from tests.factories import make_event
from tests.hub.api.booking_helpers import hold_ok

API = "/api/v1"
# Texts with a NUL that are otherwise valid for some field (the first valid one is used, so
# only the NUL can be the reason for a refusal): short labels, emails, passwords.
NUL_TEXTS = ("a\x00b", "a\x00b@example.com", "pass\x00word")


# ---------------------------------------------------------------- every model, generated


def _input_models() -> list[type[BaseModel]]:
    """Every body and query model of the route table, and the input models nested in them."""
    found: dict[str, type[BaseModel]] = {}

    def visit(model: type[BaseModel]) -> None:
        if model.__qualname__ in found:
            return
        found[model.__qualname__] = model
        for field in model.model_fields.values():
            for inner in _leaves(field.annotation):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    visit(inner)

    for endpoint in build_api().endpoints:
        for model in (endpoint.body, endpoint.query):
            if model is not None:
                visit(model)
    return list(found.values())


def _leaves(annotation: Any) -> Iterator[Any]:
    """The types inside ``annotation`` (through unions, Annotated, lists and dicts)."""
    origin = typing.get_origin(annotation)
    if origin is None:
        yield annotation
        return
    if origin is typing.Annotated:
        yield from _leaves(typing.get_args(annotation)[0])
        return
    for arg in typing.get_args(annotation):
        yield from _leaves(arg)


def _unwrap(annotation: Any) -> Any:
    """``annotation`` without Annotated and without ``| None``."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _valid_json(annotation: Any) -> Any:
    """A JSON value valid for a simple type, to sit beside a NUL-bearing key."""
    annotation = _unwrap(annotation)
    samples: dict[Any, Any] = {str: "ok", int: 1, float: 1.0, Decimal: 1, bool: True}
    return samples[annotation]


def _with_nul(annotation: Any, text: str) -> Any | None:
    """A JSON value of ``annotation``'s shape with ``text`` as its string, or None if it has
    no text of its own (nested models are tested as models in their own right)."""
    annotation = _unwrap(annotation)
    origin = typing.get_origin(annotation)
    if annotation is str:
        return text
    if origin is list:
        inner = _with_nul(typing.get_args(annotation)[0], text)
        return None if inner is None else [inner]
    if origin is dict:
        key, value = typing.get_args(annotation)
        if _unwrap(key) is str:
            return {text: _valid_json(value)}
    return None


def _errors_at(model: type[BaseModel], name: str, value: Any) -> list[Any]:
    try:
        if issubclass(model, QueryInput):
            model.model_validate({name: value})
        else:
            model.model_validate_json(json.dumps({name: value}))
    except pydantic.ValidationError as exc:
        return [e for e in exc.errors() if e["loc"][:1] == (name,)]
    return []


def _case(model: type[BaseModel], name: str, annotation: Any) -> Any | None:
    """A value for the field that is valid but for its NUL, or None for a field without text."""
    for text in NUL_TEXTS:
        value = _with_nul(annotation, text)
        if value is None:
            return None
        if not _errors_at(model, name, _with_nul(annotation, text.replace("\x00", ""))):
            return value
    raise AssertionError(f"no sample text is valid for {model.__name__}.{name}")


TEXT_FIELDS = [
    pytest.param(model, name, value, id=f"{model.__name__}.{name}")
    for model in _input_models()
    for name, field in model.model_fields.items()
    if (value := _case(model, name, field.annotation)) is not None
]


def test_the_generated_cases_cover_bodies_queries_lists_and_dicts() -> None:
    ids = {case.id for case in TEXT_FIELDS}
    expected = {
        "RegisterIn.email",
        "RegisterIn.name",
        "LoginIn.password",
        "VenueIn.name",
        "SectionIn.name",
        "AccessibleSeatIn.row",
        "EventIn.description",
        "EventIn.keywords",
        "EventIn.section_prices",
        "EventPatch.name",
        "EventsQuery.search",
        "EventsQuery.category",
        "BookingIn.discount_code",
        "HoldIn.section",
    }
    assert expected <= ids, expected - ids


@pytest.mark.parametrize(("model", "name", "value"), TEXT_FIELDS)
def test_every_text_field_of_every_input_model_refuses_a_nul(
    model: type[BaseModel], name: str, value: Any
) -> None:
    # The same value without its NUL is valid for this field (see _case): only the NUL
    # can be refused here — by the shared rule, or first by a field whose pattern allows
    # only some characters (a discount code): either way a 422 naming the field.
    errors = _errors_at(model, name, value)
    assert [e["loc"] for e in errors] == [(name,)], errors
    assert errors[0]["type"] in ("nul_character", "string_pattern_mismatch"), errors


def test_every_input_model_shares_the_rules() -> None:
    for model in _input_models():
        assert issubclass(model, Input | QueryInput), model


# ---------------------------------------------------------------- the routes, over HTTP


def _fields(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "validation_error"
    return [error["field"] for error in body["errors"]]


@pytest.mark.parametrize("parameter", ["search", "category"])
async def test_a_nul_in_an_anonymous_query_is_a_422(
    client: httpx.AsyncClient, parameter: str
) -> None:
    response = await client.get(f"{API}/events?{parameter}=%00")
    assert _fields(response) == [parameter]
    response = await client.get(f"{API}/events?{parameter}=rock%00roll")
    assert _fields(response) == [parameter]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/auth/login", {"email": "a\x00@example.com", "password": "pw"}, "email"),
        ("/auth/login", {"email": "a@example.com", "password": "p\x00w"}, "password"),
        (
            "/auth/register",
            {"email": "new@example.com", "password": "long enough", "name": "N\x00"},
            "name",
        ),
        (
            "/auth/register",
            {"email": "new@example.com", "password": "long\x00enough", "name": "N"},
            "password",
        ),
    ],
)
async def test_a_nul_in_an_anonymous_body_is_a_422(
    client: httpx.AsyncClient, path: str, body: dict[str, str], field: str
) -> None:
    assert _fields(await client.post(f"{API}{path}", json=body)) == [field]


async def test_a_nul_in_a_discount_code_is_a_422(
    client: httpx.AsyncClient, admin: Account, user: Account
) -> None:
    event = await make_event(client, admin)
    held = await hold_ok(client, user, event["id"], quantity=1)
    response = await client.post(
        f"{API}/bookings",
        json={"hold_id": held["hold_id"], "discount_code": "SAVE\x0010"},
        headers=user.headers,
    )
    assert _fields(response) == ["discount_code"]


async def test_a_nul_in_a_venue_or_an_event_is_a_422(
    client: httpx.AsyncClient, admin: Account
) -> None:
    venue = {
        "name": "Hall\x00",
        "city": "Porto",
        "sections": [{"name": "A", "rows": 1, "seats_per_row": 2}],
    }
    response = await client.post(f"{API}/venues", json=venue, headers=admin.headers)
    assert _fields(response) == ["name"]
    venue = {
        "name": "Hall",
        "city": "Porto",
        "sections": [{"name": "A\x00", "rows": 1, "seats_per_row": 2}],
    }
    response = await client.post(f"{API}/venues", json=venue, headers=admin.headers)
    assert _fields(response) == ["sections.0.name"]

    event = await make_event(client, admin)
    for change, field in [
        ({"name": "Gala\x00"}, "name"),
        ({"description": "a\x00b"}, "description"),
        ({"keywords": ["ok", "x\x00"]}, "keywords"),
    ]:
        response = await client.patch(
            f"{API}/events/{event['id']}", json=change, headers=admin.headers
        )
        assert _fields(response) == [field]
    unchanged = (await client.get(f"{API}/events/{event['id']}")).json()
    assert unchanged["name"] == event["name"]
    assert unchanged["description"] == event["description"]


# ---------------------------------------------------------------- strict bodies


@pytest.mark.parametrize("quantity", [True, "2", 2.0, "1"])
async def test_a_quantity_must_be_a_json_integer(
    client: httpx.AsyncClient, admin: Account, quantity: Any
) -> None:
    event = await make_event(client, admin)
    buyer = await register(client)
    holds = f"{API}/events/{event['id']}/holds"
    response = await client.post(holds, json={"quantity": quantity}, headers=buyer.headers)
    assert _fields(response) == ["quantity"]
    response = await client.post(
        f"{API}/bookings",
        json={"event_id": event["id"], "quantity": quantity},
        headers=buyer.headers,
    )
    assert _fields(response) == ["quantity"]
    response = await client.post(
        f"{API}/events/{event['id']}/waitlist", json={"quantity": quantity}, headers=buyer.headers
    )
    assert _fields(response) == ["quantity"]
    # Nothing was held or booked on the way.
    seats = (await client.get(f"{API}/events/{event['id']}")).json()["availability"]
    assert seats["held"] == seats["sold"] == 0


async def test_strict_bodies_still_read_uuids_datetimes_and_decimals(
    client: httpx.AsyncClient, admin: Account
) -> None:
    venue_body = {
        "name": "Strict Hall",
        "city": "Porto",
        "sections": [
            {"name": "A", "rows": 2, "seats_per_row": 3, "base_price": 12.5},
            {"name": "B", "rows": 1, "seats_per_row": 3, "base_price": "7.25"},
        ],
    }
    venue = await client.post(f"{API}/venues", json=venue_body, headers=admin.headers)
    assert venue.status_code == 201, venue.text
    starts_at = (dt.datetime.now(dt.UTC) + dt.timedelta(days=9)).replace(microsecond=0)
    event = await client.post(
        f"{API}/events",
        json={
            "name": "Strict Night",
            "category": "concert",
            "venue_id": venue.json()["id"],
            "starts_at": starts_at.isoformat().replace("+00:00", "Z"),
            "section_prices": {"A": 30, "B": 19.99},
            "max_tickets_per_user": 4,
        },
        headers=admin.headers,
    )
    assert event.status_code == 201, event.text
    prices = {k: Decimal(str(v)) for k, v in event.json()["base_prices"].items()}
    assert prices == {"A": Decimal("30.00"), "B": Decimal("19.99")}
    assert dt.datetime.fromisoformat(event.json()["starts_at"]) == starts_at

    buyer = await register(client)
    seat_ids = [
        s["id"]
        for s in (await client.get(f"{API}/events/{event.json()['id']}/seats")).json()["seats"]
    ][:2]
    held = await client.post(
        f"{API}/events/{event.json()['id']}/holds",
        json={"seat_ids": seat_ids},
        headers=buyer.headers,
    )
    assert held.status_code == 201, held.text
    booked = await client.post(
        f"{API}/bookings", json={"hold_id": held.json()["hold_id"]}, headers=buyer.headers
    )
    assert booked.status_code == 201, booked.text
    assert uuid.UUID(booked.json()["id"])


def test_query_strings_are_still_parsed_into_numbers_and_booleans() -> None:
    query = next(
        e.query for e in build_api().endpoints if e.path == f"{API}/events" and e.method == "GET"
    )
    assert query is not None
    parsed = query.model_validate({"page": "2", "size": "5", "available_only": "true"})
    assert (parsed.page, parsed.size, parsed.available_only) == (2, 5, True)  # type: ignore[attr-defined]
