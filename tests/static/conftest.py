"""Browser-test fixtures: a real hub over HTTP and WebSocket, and Debian's headless Chromium.

The hub runs as ``evently serve`` in a subprocess on a free port, on this test run's
PostgreSQL database and Redis prefix, so the pages talk to it exactly as in production
(uvicorn, the channel's raw transport writes, the leader loops). It is stopped by PID.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.settings import Settings
from tests.conftest import Account

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
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@pytest.fixture(scope="session")
def live_hub(settings: Settings) -> Iterator[LiveHub]:
    """``evently serve`` on a free port with this run's database, Redis prefix and secret."""
    assert settings.database_url and settings.redis_url and settings.secret_key
    port = _free_port()
    home = Path(tempfile.mkdtemp(prefix="evently-browser-"))
    admin_email = f"browser-admin-{uuid.uuid4().hex[:8]}@example.com"
    env = {
        **os.environ,
        "EVENTLY_DATABASE_URL": settings.database_url,
        "EVENTLY_REDIS_URL": settings.redis_url,
        "EVENTLY_SECRET_KEY": settings.secret_key,
        "EVENTLY_REDIS_PREFIX": settings.redis_prefix,
        "EVENTLY_HOME": str(home),
        "EVENTLY_RATE_LIMITS": "off",
        "EVENTLY_ADMIN_EMAIL": admin_email,
        "EVENTLY_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "EVENTLY_LOG_LEVEL": "warning",
        "EVENTLY_LOG_FORMAT": "json",
    }
    log_path = home / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    hub = LiveHub(f"http://127.0.0.1:{port}", admin_email, process, log_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"evently serve exited with {process.returncode}:\n{hub.log_tail()}")
            try:
                if httpx.get(f"{hub.base_url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"evently serve did not become ready:\n{hub.log_tail()}")
            time.sleep(0.2)
        yield hub
    finally:
        _stop(process)


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
