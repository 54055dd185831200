"""The browser pages: the event list, the live seat map and the admin live panel, served as
static HTML files.

The pages are plain files (no templating): everything dynamic comes from the API and the
live channel, so a page can be cached and served by anything. What this module adds is
the security headers, above all a Content-Security-Policy that allows only the hub's own
scripts and styles (the pages have no inline script) and connections back to the hub
(HTTP and its WebSocket: CSP Level 3 ``'self'`` covers ``ws:``/``wss:`` on the same host).

An event's page is served only for an event that exists: any other id (unknown, or not a
UUID at all) gets a 404 page that says so and carries no seat map, live badge or hold
buttons.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from hub.context import Hub
from hub.errors import NotFound
from hub.services import events

STATIC_DIR = Path(__file__).resolve().parents[2] / "static"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # The pages are small and change with each release; revalidate rather than go stale.
    "Cache-Control": "no-cache",
}

Endpoint = Callable[[Request], Awaitable[Response]]


def page(route: str, filename: str) -> Endpoint:
    """An endpoint serving ``static/<filename>`` with the page headers, tagged for metrics."""

    async def endpoint(request: Request) -> Response:
        # The route template, not the path: event ids must not become metric labels.
        request.scope["evently.route"] = route
        return _file(filename)

    return endpoint


def event_page(route: str) -> Endpoint:
    """The seat map page of an existing event; a 404 page for any other id."""

    async def endpoint(request: Request) -> Response:
        request.scope["evently.route"] = route
        if not await _event_exists(request.app.state.hub, request.path_params["event_id"]):
            return _file("event-missing.html", status=404)
        return _file("event.html")

    return endpoint


async def _event_exists(hub: Hub, raw_id: str) -> bool:
    try:
        event_id = uuid.UUID(raw_id)
    except ValueError:
        return False
    try:
        await events.load_event(hub, event_id)
    except NotFound:
        return False
    return True


def _file(filename: str, status: int = 200) -> Response:
    return FileResponse(
        STATIC_DIR / filename,
        status_code=status,
        media_type="text/html; charset=utf-8",
        headers=PAGE_HEADERS,
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/", page("/", "index.html"), methods=["GET", "HEAD"]),
        # The admin panel's page is public like the others; the data behind it (the admin
        # analytics and health routes, /ws/admin) is what is admin-only.
        Route("/admin", page("/admin", "admin.html"), methods=["GET", "HEAD"]),
        Route("/events/{event_id}", event_page("/events/{event_id}"), methods=["GET", "HEAD"]),
    ]
