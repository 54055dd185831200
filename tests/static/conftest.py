"""Browser-test fixtures: a real hub over HTTP and WebSocket, and Debian's headless Chromium.

The hub runs in its own uvicorn process (``tests.live.hub_process``, the CLI's options) on
a free port, on this test run's PostgreSQL database and Redis prefix, so the pages talk
to it as in production (uvicorn, the channel's transport writes, the leader loops). It
is stopped by PID when the session ends.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.settings import Settings
from tests.conftest import Account
from tests.live import hub_process

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
ADMIN_PASSWORD = "browser admin password 1"


@dataclass
class LiveHub:
    base_url: str
    admin_email: str


@pytest.fixture(scope="session")
async def live_hub(settings: Settings) -> AsyncIterator[LiveHub]:
    """A hub process on this run's database, Redis prefix and secret, with an admin."""
    admin_email = f"browser-admin-{uuid.uuid4().hex[:8]}@example.com"
    async with hub_process(
        settings,
        rate_limits="off",
        admin_email=admin_email,
        admin_password=ADMIN_PASSWORD,
    ) as process:
        yield LiveHub(process.base, admin_email)


@pytest.fixture
async def http(live_hub: LiveHub) -> AsyncIterator[httpx.AsyncClient]:
    """A real HTTP client to the live hub (factories accept it like the ASGI client)."""
    async with httpx.AsyncClient(base_url=live_hub.base_url, timeout=30) as client:
        yield client


@pytest.fixture
async def live_admin(http: httpx.AsyncClient, live_hub: LiveHub) -> Account:
    response = await http.post(
        "/api/v1/auth/login", json={"email": live_hub.admin_email, "password": ADMIN_PASSWORD}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    return Account(body["user"]["id"], live_hub.admin_email, ADMIN_PASSWORD, body["access_token"])


def chromium_missing() -> bool:
    return not os.path.exists(CHROMIUM)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    if chromium_missing():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture
async def new_page(browser: Any, live_hub: LiveHub) -> AsyncIterator[Any]:
    """A factory of pages, each in its own context (own localStorage: its own user).

    Console errors and uncaught exceptions are collected on ``page.problems``.
    """
    contexts: list[Any] = []

    async def make(width: int = 1400, height: int = 1000) -> Any:
        context = await browser.new_context(
            base_url=live_hub.base_url, viewport={"width": width, "height": height}
        )
        contexts.append(context)
        page = await context.new_page()
        page.problems = []
        page.on("pageerror", lambda exc: page.problems.append(f"pageerror: {exc}"))
        page.on(
            "console",
            lambda msg: (
                page.problems.append(f"console: {msg.text}") if msg.type == "error" else None
            ),
        )
        return page

    yield make
    for context in contexts:
        await context.close()


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name
