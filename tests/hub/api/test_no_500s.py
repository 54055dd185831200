"""Bad input never produces a 500: every endpoint of the table gets malformed and random
bodies, queries and ids, as an admin (so authentication lets them through to validation)."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.api.catalog import build_api
from tests.conftest import Account

ENDPOINTS = build_api().endpoints

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
FIXED_BODIES: list[bytes] = [
    b"",
    b"null",
    b"[]",
    b'"text"',
    b"{}",
    b'{"unknown": 1}',
    b"{bad json",
    b"\xff\xfe",
    json.dumps({"a": [[[[[[[[[[1]]]]]]]]]]}).encode(),
    json.dumps({"quantity": 10**30, "seat_ids": ["not-a-uuid"], "email": 5}).encode(),
]


def _path(template: str) -> str:
    return re.sub(r"{[a-z_]+}", lambda _: str(uuid.uuid4()), template)


async def _send(
    client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str], body: bytes
) -> httpx.Response:
    return await client.request(
        method, path, content=body, headers={**headers, "content-type": "application/json"}
    )


async def test_fixed_bad_bodies_never_500(client: httpx.AsyncClient, admin: Account) -> None:
    for endpoint in ENDPOINTS:
        for body in FIXED_BODIES:
            response = await _send(
                client, endpoint.method, _path(endpoint.path), admin.headers, body
            )
            assert response.status_code < 500, (endpoint.method, endpoint.path, body, response.text)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    index=st.integers(min_value=0, max_value=len(ENDPOINTS) - 1),
    body=json_values,
    query=st.dictionaries(
        st.sampled_from(
            [
                "page",
                "size",
                "search",
                "category",
                "date_from",
                "min_price",
                "available_only",
                "user_id",
                "period",
            ]
        ),
        st.text(max_size=20),
        max_size=4,
    ),
)
async def test_random_input_never_500(
    client: httpx.AsyncClient, admin: Account, index: int, body: Any, query: dict[str, str]
) -> None:
    endpoint = ENDPOINTS[index]
    response = await client.request(
        endpoint.method, _path(endpoint.path), params=query, json=body, headers=admin.headers
    )
    assert response.status_code < 500, (endpoint.method, endpoint.path, body, query, response.text)
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json"
