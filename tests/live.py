"""Real servers for tests that need sockets: the app under uvicorn in this event loop, or
a hub in its own process (stopped by PID when the test ends)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from hub.app import create_app
from hub.cli import uvicorn_options
from hub.context import AppHub
from hub.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_config(app: Any, port: int) -> uvicorn.Config:
    options = uvicorn_options("127.0.0.1", port, 1)
    for key in ("workers", "factory"):
        options.pop(key)
    options["lifespan"] = "off"  # the caller runs the app's lifespan itself
    return uvicorn.Config(app, **options)


@dataclass
class WsServer:
    hub: AppHub
    settings: Settings
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def event_url(self, event_id: uuid.UUID | str) -> str:
        return self.url(f"/ws/events/{event_id}")


@contextlib.asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[WsServer]:
    """An app with its lifespan, served by uvicorn on a free port of 127.0.0.1."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        port = free_port()
        server = uvicorn.Server(server_config(app, port))
        task = asyncio.get_running_loop().create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        try:
            yield WsServer(app.state.hub, settings, port)
        finally:
            server.should_exit = True
            await task


def hub_env(settings: Settings, **overrides: str) -> dict[str, str]:
    """The environment of a hub process on the test run's servers."""
    env = dict(os.environ)
    env.update(
        EVENTLY_DATABASE_URL=str(settings.database_url),
        EVENTLY_REDIS_URL=str(settings.redis_url),
        EVENTLY_SECRET_KEY=str(settings.secret_key),
        EVENTLY_REDIS_PREFIX=settings.redis_prefix,
        EVENTLY_LOG_LEVEL="warning",
        EVENTLY_LOG_FORMAT="json",
        EVENTLY_DB_POOL_MIN=str(settings.db_pool_min),
        EVENTLY_DB_POOL_MAX=str(settings.db_pool_max),
        EVENTLY_RATE_LIMITS="on" if settings.rate_limits else "off",
        EVENTLY_PRICING_INTERVAL_SECONDS=str(settings.pricing_interval_seconds),
    )
    env.update({f"EVENTLY_{key.upper()}": value for key, value in overrides.items()})
    return env


@dataclass
class HubProcess:
    proc: subprocess.Popen[bytes]
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.asynccontextmanager
async def hub_process(
    settings: Settings, *, stderr: Any = None, **overrides: str
) -> AsyncIterator[HubProcess]:
    """A hub in its own uvicorn process (the CLI's options), on a free port. ``overrides``
    set ``EVENTLY_*`` variables (``hold_ttl_seconds="1"``); ``stderr`` (a file) receives
    its log lines instead of the test run's stderr."""
    port = free_port()
    code = (
        "import uvicorn; from hub.cli import uvicorn_options; "
        f"uvicorn.run('hub.asgi:create', **uvicorn_options('127.0.0.1', {port}, 1))"
    )
    env = hub_env(settings, **overrides)
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=stderr)  # noqa: ASYNC220
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(300):
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                        break
                assert proc.poll() is None, "the hub process died"
                await asyncio.sleep(0.05)
        yield HubProcess(proc, port)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
