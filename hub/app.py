"""The app factory and its lifespan, which owns every pool, client and background task."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from pathlib import Path

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from hub import logs
from hub.api import problems
from hub.api.catalog import build_api, page_routes, websocket_routes
from hub.api.ops import ops_routes
from hub.context import Hub
from hub.db import UNAVAILABLE as DB_UNAVAILABLE
from hub.db import Database
from hub.errors import HubError
from hub.middleware import Admission, RequestObserver
from hub.services import accounts
from hub.settings import Settings
from hub.store import Store

log = structlog.get_logger(__name__)

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"

# Subsystems that run beside the API (leader loops, channel listeners, senders ...). Each is
# an async context manager factory taking the hub; the lifespan enters them in order and
# exits them in reverse, so every task they start is stopped with the app.
Part = Callable[[Hub], AbstractAsyncContextManager[None]]


def create_app(settings: Settings, parts: list[Part] | None = None) -> Starlette:
    """Build the ASGI app. Resources are created by the lifespan, not here."""
    if settings.secret_key is None:
        raise ValueError("settings.secret_key must be set before the app is created")
    logs.configure(settings.log_format, settings.log_level)
    api = build_api()
    routes: list[BaseRoute] = [
        *ops_routes(api),
        *api.routes(),
        *websocket_routes(),
        *page_routes(),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR, check_dir=False), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(RequestObserver),
            Middleware(Admission, limit=settings.max_inflight_requests),
        ],
        exception_handlers={
            HubError: problems.on_hub_error,
            HTTPException: problems.on_http_exception,
            Exception: problems.on_unexpected,
        },
        lifespan=_lifespan(settings, parts if parts is not None else default_parts()),
    )
    app.state.settings = settings
    return app


def default_parts() -> list[Part]:
    from hub.api.catalog import subsystem_parts

    return subsystem_parts()


def _lifespan(
    settings: Settings, parts: list[Part]
) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        assert settings.database_url and settings.redis_url
        db = await _connect_database(settings)
        store = Store.connect(
            settings.redis_url,
            prefix=settings.redis_prefix,
            max_connections=settings.redis_pool_max,
        )
        hub = Hub(settings=settings, db=db, store=store)
        app.state.hub = hub
        async with AsyncExitStack() as stack:
            stack.push_async_callback(db.close)
            stack.push_async_callback(store.close)
            await accounts.ensure_bootstrap_admin(hub)
            for part in parts:
                await stack.enter_async_context(part(hub))
            # Objects alive after start-up are long-lived: keep full collections off them.
            gc.collect()
            gc.freeze()
            log.info("hub_started")
            yield
            log.info("hub_stopping")

    return lifespan


async def _connect_database(settings: Settings) -> Database:
    assert settings.database_url
    delay = 0.2
    for attempt in range(8):
        try:
            return await Database.connect(
                settings.database_url, min_size=settings.db_pool_min, max_size=settings.db_pool_max
            )
        except DB_UNAVAILABLE as exc:
            log.warning("database_connect_retry", attempt=attempt, error=str(exc))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 3.0)
    return await Database.connect(
        settings.database_url, min_size=settings.db_pool_min, max_size=settings.db_pool_max
    )
