"""Rate limits: a moving window per caller (no double burst across a boundary), counted in
Redis for every process, 429 with Retry-After, off when told."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from hub import ratelimit
from hub.app import create_app
from hub.context import Hub
from hub.errors import RateLimited
from hub.ratelimit import RateLimits
from hub.settings import Settings
from tests.conftest import Account, register


async def _accepted(limits: RateLimits, limit: ratelimit.Limit, caller: str, n: int) -> int:
    accepted = 0
    for _ in range(n):
        try:
            await limits.hit(limit, caller)
            accepted += 1
        except RateLimited:
            pass
    return accepted


def _seconds_until(phase: float, period: float) -> float:
    """Seconds until the clock is ``phase`` seconds into a multiple of ``period``."""
    return (phase - time.time() % period) % period


async def test_a_burst_across_a_window_boundary_gets_the_limit_not_twice(hub: Hub) -> None:
    limits = RateLimits(hub.store, enabled=True)
    limit = ratelimit.Limit(f"burst-{uuid.uuid4().hex[:8]}", 5, 2)
    # Start late in a 2 s span, as a fixed window would count it, and burst again just
    # after its boundary: fixed windows let 10 through here.
    await asyncio.sleep(_seconds_until(1.6, 2))
    started = time.monotonic()
    first = await _accepted(limits, limit, "alice", 5)
    await asyncio.sleep(_seconds_until(0.05, 2))
    assert time.monotonic() - started < 1  # the second burst is within the same 2 s
    second = await _accepted(limits, limit, "alice", 5)
    assert (first, second) == (5, 0)
    # Other callers are counted apart.
    assert await _accepted(limits, limit, "bob", 5) == 5


async def test_a_refusal_says_when_a_call_is_allowed_again(hub: Hub) -> None:
    limits = RateLimits(hub.store, enabled=True)
    limit = ratelimit.Limit(f"retry-{uuid.uuid4().hex[:8]}", 3, 60)
    started = time.time()
    assert await _accepted(limits, limit, "alice", 3) == 3
    with pytest.raises(RateLimited) as refused:
        await limits.hit(limit, "alice")
    retry_after = int(refused.value.headers["Retry-After"])
    # The oldest accepted call leaves the window 60 s after it was made.
    assert 59 <= retry_after <= 60 + int(time.time() - started) + 1
    # A refused call is not counted; the window moves on: the slot of the oldest frees.
    short = ratelimit.Limit(f"slide-{uuid.uuid4().hex[:8]}", 2, 1)
    assert await _accepted(limits, short, "alice", 3) == 2
    await asyncio.sleep(1.05)
    assert await _accepted(limits, short, "alice", 3) == 2


async def test_ensure_left_refuses_only_once_spent_and_counts_nothing(hub: Hub) -> None:
    limits = RateLimits(hub.store, enabled=True)
    limit = ratelimit.Limit(f"peek-{uuid.uuid4().hex[:8]}", 2, 60)
    for _ in range(5):
        await limits.ensure_left(limit, "carol")  # counts nothing
    assert await _accepted(limits, limit, "carol", 2) == 2
    with pytest.raises(RateLimited):
        await limits.ensure_left(limit, "carol")


async def test_off_touches_nothing(hub: Hub) -> None:
    limits = RateLimits(hub.store, enabled=False)
    limit = ratelimit.Limit(f"off-{uuid.uuid4().hex[:8]}", 1, 60)
    assert await _accepted(limits, limit, "dave", 20) == 20
    keys = [k async for k in hub.store.client.scan_iter(match=f"*{limit.name}*")]
    assert keys == []


def _limited_app(settings: Settings) -> Any:
    return create_app(settings.replace(rate_limits=True), leader_loops=())


@pytest.fixture(scope="module")
async def two_limited(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, ...]]:
    """Two hub apps with limits on (two processes' worth of state) on the same Redis, each
    seen from the same address."""
    apps = [_limited_app(settings), _limited_app(settings)]
    async with apps[0].router.lifespan_context(apps[0]):
        async with apps[1].router.lifespan_context(apps[1]):
            clients = [
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app, client=("203.0.113.7", 1234)),
                    base_url="http://limited",
                )
                for app in apps
            ]
            yield tuple(clients)
            for c in clients:
                await c.aclose()


async def test_sign_in_attempts_are_limited_per_address(
    two_limited: tuple[httpx.AsyncClient, ...], client: httpx.AsyncClient
) -> None:
    limited = two_limited[0]
    codes = []
    for i in range(21):  # each a different account: only the address limit applies
        body = {"email": f"nobody-{i}-{uuid.uuid4().hex[:6]}@example.com", "password": "wrong"}
        codes.append((await limited.post("/api/v1/auth/login", json=body)).status_code)
    assert codes[:20] == [401] * 20
    assert codes[20] == 429
    body = {"email": "nobody@example.com", "password": "wrong password"}
    refused = await limited.post("/api/v1/auth/login", json=body)
    assert refused.json()["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
    # The test app (limits off) is not limited at all.
    assert (await client.post("/api/v1/auth/login", json=body)).status_code == 401


async def test_failed_sign_ins_lock_the_account_not_the_others(
    hub: Hub, client: httpx.AsyncClient, settings: Settings
) -> None:
    victim = await register(client)
    bystander = await register(client)
    app = _limited_app(settings)
    async with app.router.lifespan_context(app):
        codes = []
        for i in range(11):
            # From a new address each time: the account's own limit is what stops them.
            transport = httpx.ASGITransport(app=app, client=(f"198.51.100.{i + 1}", 1))
            async with httpx.AsyncClient(transport=transport, base_url="http://x") as c:
                body = {"email": victim.email, "password": f"guess {i}"}
                codes.append((await c.post("/api/v1/auth/login", json=body)).status_code)
        assert codes == [401] * 10 + [429]
        transport = httpx.ASGITransport(app=app, client=("198.51.100.99", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as c:
            # Even the right password waits now: the guesses cannot go on.
            right = {"email": victim.email, "password": victim.password}
            locked = await c.post("/api/v1/auth/login", json=right)
            assert locked.status_code == 429 and locked.json()["code"] == "rate_limited"
            assert 14 * 60 <= int(locked.headers["Retry-After"]) <= 15 * 60 + 1
            other = {"email": bystander.email, "password": bystander.password}
            assert (await c.post("/api/v1/auth/login", json=other)).status_code == 200


async def test_registration_is_limited_per_address(
    two_limited: tuple[httpx.AsyncClient, ...],
) -> None:
    first, second = two_limited
    codes = []
    for i in range(ratelimit.REGISTRATIONS.count + 1):
        body = {
            "email": f"reg-{uuid.uuid4().hex[:10]}@example.com",
            "password": "long enough password",
            "name": f"R{i}",
        }
        client = first if i % 2 == 0 else second  # both processes count the same window
        codes.append((await client.post("/api/v1/auth/register", json=body)).status_code)
    assert codes == [201] * ratelimit.REGISTRATIONS.count + [429]


async def test_holds_are_limited_per_user_across_two_processes(
    two_limited: tuple[httpx.AsyncClient, ...], client: httpx.AsyncClient
) -> None:
    first, second = two_limited
    account: Account = await register(client)
    missing = f"/api/v1/events/{uuid.uuid4()}/holds"  # the limit comes before the lookup
    codes = []
    for i in range(ratelimit.HOLDS.count + 2):
        c = first if i % 2 == 0 else second
        codes.append(await c.post(missing, json={"quantity": 1}, headers=account.headers))
    statuses = [r.status_code for r in codes]
    assert statuses == [404] * ratelimit.HOLDS.count + [429, 429]
    assert int(codes[-1].headers["Retry-After"]) >= 1
    # Another user is not affected.
    other = await register(client)
    response = await second.post(missing, json={"quantity": 1}, headers=other.headers)
    assert response.status_code == 404


async def test_queue_joins_are_limited_per_user_and_per_address(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    from hub.api.waiting_room import QUEUE_JOIN

    joiner, bystander = await register(client), await register(client)
    crowd = [await register(client) for _ in range(3)]
    missing = f"/api/v1/events/{uuid.uuid4()}/queue"  # the limits come before the lookup
    app = _limited_app(settings)
    async with app.router.lifespan_context(app):

        async def join(who: Account, address: str) -> httpx.Response:
            transport = httpx.ASGITransport(app=app, client=(address, 1))
            async with httpx.AsyncClient(transport=transport, base_url="http://x") as c:
                return await c.post(missing, headers=who.headers)

        # One user from a new address each time: only the user's own limit can stop them.
        replies = [
            await join(joiner, f"192.0.2.{10 + i}") for i in range(ratelimit.QUEUE_JOINS.count + 1)
        ]
        assert [r.status_code for r in replies] == [404] * ratelimit.QUEUE_JOINS.count + [429]
        assert replies[-1].json()["code"] == "rate_limited"
        assert int(replies[-1].headers["Retry-After"]) >= 1
        # Another user from one of those addresses is not affected.
        assert (await join(bystander, "192.0.2.10")).status_code == 404
        # The per-address limit still holds: several users from one address, none of them
        # near their own limit, are stopped together.
        statuses = [
            (await join(crowd[i % len(crowd)], "192.0.2.99")).status_code
            for i in range(QUEUE_JOIN.count + 1)
        ]
        assert statuses == [404] * QUEUE_JOIN.count + [429]
