"""Revocations reach every serving process as they happen; checking a token then costs no
round trip, and a process whose feed is down asks Redis (or PostgreSQL) again."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from hub.app import create_app
from hub.context import AppHub
from hub.settings import Settings
from hub.tokens import RevokedTokens
from tests.conftest import Account


@pytest.fixture(scope="module")
async def other_process(settings: Settings) -> AsyncIterator[tuple[AppHub, httpx.AsyncClient]]:
    """A second serving hub on the same servers, with its own revocation feed and caches."""
    app = create_app(settings, leader_loops=())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://other") as client:
            yield app.state.hub, client


async def test_a_logout_is_refused_by_every_process_when_it_returns(
    client: httpx.AsyncClient,
    user: Account,
    other_process: tuple[AppHub, httpx.AsyncClient],
) -> None:
    other_hub, other = other_process
    assert (await other.get("/api/v1/users/me", headers=user.headers)).status_code == 200
    assert other_hub.revoked.live  # its feed is up: no round trip per check
    out = await client.post("/api/v1/auth/logout", headers=user.headers)
    assert out.status_code == 204, out.text
    refused = await other.get("/api/v1/users/me", headers=user.headers)
    assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"


def test_the_set_answers_only_while_live_and_forgets_expired_tokens() -> None:
    revoked = RevokedTokens()
    jti = uuid.uuid4()
    assert revoked.check(jti) is None  # not live: the caller must ask Redis
    revoked.replace({jti: time.time() + 60})
    assert revoked.check(jti) is True
    assert revoked.check(uuid.uuid4()) is False
    revoked.add(jti, time.time() - 1)
    assert revoked.check(jti) is False and len(revoked) == 0
    revoked.live = False
    assert revoked.check(jti) is None
