"""Input limits (DESIGN.md §4): a body over 1 MiB is refused before it is read in full (413),
a body that is not JSON, or has no Content-Type, is 415, one that is not UTF-8 is 400,
deep or huge JSON is a quick 422, every text, list, number and map of every input model is
bounded, and a time in a query is ISO 8601 text. Each refusal changes nothing."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from hub.api.catalog import build_api
from hub.api.inputs import MAX_BODY_BYTES
from tests.conftest import Account
from tests.factories import make_event

REGISTER = "/api/v1/auth/register"


def _registration() -> dict[str, str]:
    email = f"limits-{uuid.uuid4().hex[:10]}@example.com"
    return {"email": email, "password": "correct horse battery", "name": "Limits"}


async def _can_log_in(client: httpx.AsyncClient, body: dict[str, str]) -> bool:
    login = {"email": body["email"], "password": body["password"]}
    return (await client.post("/api/v1/auth/login", json=login)).status_code == 200


async def _raw(
    app: Any, headers: list[tuple[bytes, bytes]], chunks: Iterator[bytes]
) -> tuple[int, int]:
    """POST /auth/register straight through the ASGI app, the body from ``chunks`` one
    receive() at a time. Returns the status and how many chunks the app asked for."""
    asked = 0
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal asked
        asked += 1
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": REGISTER,
        "raw_path": REGISTER.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    return status, asked


def _endless(size: int = 64 * 1024) -> Iterator[bytes]:
    while True:
        yield b" " * size


async def test_a_declared_length_over_the_cap_is_413_before_any_read(app: Any) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(MAX_BODY_BYTES + 1).encode()),
    ]
    status, asked = await _raw(app, headers, _endless())
    assert status == 413
    assert asked == 0


async def test_a_streamed_body_is_cut_off_just_past_the_cap(app: Any) -> None:
    # No Content-Length (chunked): counted while it arrives, refused after 1 MiB of 64 KiB
    # chunks, never read to its (endless) end.
    status, asked = await _raw(app, [(b"content-type", b"application/json")], _endless())
    assert status == 413
    assert asked == MAX_BODY_BYTES // (64 * 1024) + 1


async def test_a_body_over_the_cap_is_problem_json_413(client: httpx.AsyncClient) -> None:
    response = await client.post(
        REGISTER, content=b" " * (MAX_BODY_BYTES + 1), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "payload_too_large"


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"],
)
async def test_a_body_that_is_not_declared_json_is_415_and_changes_nothing(
    client: httpx.AsyncClient, content_type: str | None
) -> None:
    body = _registration()
    request = client.build_request("POST", REGISTER, content=json.dumps(body).encode())
    request.headers.pop("content-type", None)
    if content_type is not None:
        request.headers["content-type"] = content_type
    response = await client.send(request)
    assert response.status_code == 415, response.text
    assert response.json()["code"] == "unsupported_media_type"
    assert not await _can_log_in(client, body)


async def test_json_media_types_are_all_accepted(client: httpx.AsyncClient) -> None:
    for content_type in (
        "application/json",
        "application/json; charset=UTF-8",
        "application/vnd.x+json",
    ):
        body = _registration()
        response = await client.post(
            REGISTER, content=json.dumps(body).encode(), headers={"content-type": content_type}
        )
        assert response.status_code == 201, (content_type, response.text)


async def test_a_body_that_is_not_utf8_is_400_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    body = _registration()
    raw = (
        b'{"email": "' + body["email"].encode() + b'", "password": "correct horse battery", '
        b'"name": "Caf\xe9"}'  # Latin-1, not UTF-8
    )
    response = await client.post(
        REGISTER, content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "bad_request"
    assert not await _can_log_in(client, body)


async def test_deep_and_huge_json_is_a_quick_422(
    client: httpx.AsyncClient, admin: Account, user: Account
) -> None:
    event = await make_event(client, admin)
    path = f"/api/v1/events/{event['id']}/holds"
    json_head = {**user.headers, "content-type": "application/json"}
    deep = b'{"seat_ids": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    huge = b'{"seat_ids": [' + b'"00000000-0000-4000-8000-000000000000",' * 25_000 + b'"x"]}'
    assert len(deep) < MAX_BODY_BYTES and len(huge) < MAX_BODY_BYTES
    for body in (deep, huge):
        started = time.perf_counter()
        response = await client.post(path, content=body, headers=json_head)
        assert response.status_code == 422, response.text[:300]
        assert time.perf_counter() - started < 2.0
    assert response.json()["errors"][0]["field"] == "seat_ids"
    seats = (await client.get(f"/api/v1/events/{event['id']}/seats")).json()["seats"]
    assert {seat["status"] for seat in seats} == {"free"}


@pytest.mark.parametrize("value", ["0.5", "1700000000", "-1", "1e9"])
@pytest.mark.parametrize("name", ["date_from", "date_to"])
async def test_a_number_is_not_a_date_in_a_query(
    client: httpx.AsyncClient, name: str, value: str
) -> None:
    response = await client.get("/api/v1/events", params={name: value})
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [name]


async def test_iso_dates_still_work_in_a_query(client: httpx.AsyncClient) -> None:
    for value in ("2031-03-20", "2031-03-20T20:00:00Z", "2031-03-20T20:00:00+02:00"):
        response = await client.get("/api/v1/events", params={"date_to": value})
        assert response.status_code == 200, (value, response.text)


async def test_page_sizes_are_bounded(client: httpx.AsyncClient) -> None:
    for size in ("0", "101", "1000000"):
        response = await client.get("/api/v1/events", params={"size": size})
        assert response.status_code == 422
        assert [e["field"] for e in response.json()["errors"]] == ["size"]


# ---------------------------------------------------------------- every model, generated


def _unbounded(
    schema: dict[str, Any], defs: dict[str, Any], where: str, seen: set[str]
) -> Iterator[str]:
    """Where ``schema`` has a string, list, map or number without an upper bound."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name not in seen:
            seen.add(name)
            yield from _unbounded(defs[name], defs, f"{where}->{name}", seen)
        return
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in schema.get(key, []):
            yield from _unbounded(branch, defs, where, seen)
    kind = schema.get("type")
    bounded_text = "maxLength" in schema or "enum" in schema or "const" in schema
    if (
        kind == "string"
        and not bounded_text
        and schema.get("format") not in ("uuid", "date-time", "date")
    ):
        yield f"{where}: string without maxLength"
    if kind == "array":
        if "maxItems" not in schema:
            yield f"{where}: array without maxItems"
        yield from _unbounded(schema.get("items", {}), defs, f"{where}[]", seen)
    if kind == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            if "maxProperties" not in schema:
                yield f"{where}: map without maxProperties"
            yield from _unbounded(extra, defs, f"{where}{{}}", seen)
        for name, prop in schema.get("properties", {}).items():
            yield from _unbounded(prop, defs, f"{where}.{name}", seen)
    if kind in ("integer", "number") and not {"maximum", "exclusiveMaximum"} & set(schema):
        yield f"{where}: {kind} without maximum"


def test_every_input_of_every_route_is_bounded() -> None:
    found: list[str] = []
    models = 0
    for endpoint in build_api().endpoints:
        for model in (endpoint.body, endpoint.query):
            if model is not None:
                models += 1
                schema = model.model_json_schema()
                where = f"{endpoint.method} {endpoint.path} {model.__name__}"
                found += _unbounded(schema, schema.get("$defs", {}), where, set())
    assert models > 20
    assert found == []


def test_the_bound_check_finds_an_unbounded_field() -> None:
    from pydantic import BaseModel

    class Loose(BaseModel):
        text: str
        items: list[int]

    schema = Loose.model_json_schema()
    found = list(_unbounded(schema, {}, "Loose", set()))
    assert found == [
        "Loose.text: string without maxLength",
        "Loose.items: array without maxItems",
        "Loose.items[]: integer without maximum",
    ]
