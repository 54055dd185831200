"""Shared fixtures: real PostgreSQL and Redis, one isolated database and key prefix per run."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from hub.app import create_app
from hub.context import Hub
from hub.services import accounts
from hub.settings import Settings
from tests.servers import TestServers, find_servers, run_token, scratch_database

SECRET = "test-secret-key-that-is-long-enough-for-hs256"


@pytest.fixture(scope="session")
def servers() -> Iterator[TestServers]:
    found = find_servers()
    yield found
    found.stop()


@pytest.fixture(scope="session")
async def database_url(servers: TestServers) -> AsyncIterator[str]:
    async with scratch_database(servers) as url:
        yield url


@pytest.fixture(scope="session")
async def redis_prefix(servers: TestServers) -> AsyncIterator[str]:
    prefix = f"evently:t{run_token()}:"
    yield prefix
    client = aioredis.Redis.from_url(servers.redis_url)
    async for key in client.scan_iter(match=f"{prefix}*", count=1000):
        await client.delete(key)
    await client.aclose()


@pytest.fixture(scope="session")
def settings(database_url: str, redis_prefix: str, servers: TestServers) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=servers.redis_url,
        secret_key=SECRET,
        redis_prefix=redis_prefix,
        log_format="json",
        log_level="warning",
        rate_limits=False,
        # Several apps and hub processes run at once in a test run; keep each pool small
        # so the run stays well inside the server's connection limit.
        db_pool_min=1,
        db_pool_max=8,
        # The leader's pricing tick would move every event's prices under tests that check
        # them; the pricing tests run ticks themselves.
        pricing_interval_seconds=86_400.0,
    )


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[Any]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
def hub(app: Any) -> Hub:
    return app.state.hub


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@dataclass
class Account:
    id: str
    email: str
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def register(client: httpx.AsyncClient, name: str = "Test User") -> Account:
    email = f"user-{uuid.uuid4().hex[:12]}@example.com"
    password = "correct horse battery"
    response = await client.post(
        "/api/v1/auth/register", json={"email": email, "password": password, "name": name}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return Account(body["user"]["id"], email, password, body["access_token"])


@pytest.fixture
async def user(client: httpx.AsyncClient) -> Account:
    return await register(client)


@pytest.fixture
async def other_user(client: httpx.AsyncClient) -> Account:
    return await register(client, "Other User")


@pytest.fixture(scope="session")
async def admin_credentials(hub: Hub) -> tuple[str, str]:
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    await accounts.ensure_admin(hub, email, "admin password 1")
    return email, "admin password 1"


@pytest.fixture
async def admin(client: httpx.AsyncClient, admin_credentials: tuple[str, str]) -> Account:
    email, password = admin_credentials
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body = response.json()
    return Account(body["user"]["id"], email, password, body["access_token"])
