"""The app factory and its lifespan, which owns every pool, client and background task
(through ``hub.assembly``). Routes and leader loops come from ``hub.api.catalog``."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from hub import logs
from hub.api import catalog, problems
from hub.api.ops import ops_routes
from hub.assembly import LeaderLoop, serving_hub
from hub.errors import HubError
from hub.middleware import Admission, RequestObserver
from hub.settings import Settings

log = structlog.get_logger(__name__)

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"


def create_app(
    settings: Settings, *, leader_loops: Sequence[LeaderLoop] | None = None
) -> Starlette:
    """Build the ASGI app. Resources are created by the lifespan, not here.

    Args:
        leader_loops: the loops this process runs while it leads; the catalog's by default.
            A test's second app passes none, so that it does not campaign.
    """
    if settings.secret_key is None:
        raise ValueError("settings.secret_key must be set before the app is created")
    logs.configure(settings.log_format, settings.log_level)
    api = catalog.build_api()
    routes: list[BaseRoute] = [
        *ops_routes(api),
        *api.routes(),
        *catalog.websocket_routes(),
        *catalog.page_routes(),
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
        lifespan=_lifespan(
            settings, catalog.leader_loops() if leader_loops is None else leader_loops
        ),
    )
    app.state.settings = settings
    return app


def _lifespan(
    settings: Settings, loops: Sequence[LeaderLoop]
) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with serving_hub(settings, loops) as hub:
            app.state.hub = hub
            # Objects alive after start-up are long-lived: keep full collections off them.
            gc.collect()
            gc.freeze()
            log.info("hub_started")
            yield
            log.info("hub_stopping")

    return lifespan
