"""The browser pages: the event list and the live seat map, served as static HTML files.

The pages are plain files (no templating): everything dynamic comes from the API and the
live channel, so a page can be cached and served by anything. What this module adds is
the security headers, above all a Content-Security-Policy that allows only the hub's own
scripts and styles (the pages have no inline script) and connections back to the hub
(HTTP and its WebSocket: CSP Level 3 ``'self'`` covers ``ws:``/``wss:`` on the same host).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

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
    path = STATIC_DIR / filename

    async def endpoint(request: Request) -> Response:
        # The route template, not the path: event ids must not become metric labels.
        request.scope["evently.route"] = route
        return FileResponse(path, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)

    return endpoint


def routes() -> list[BaseRoute]:
    return [
        Route("/", page("/", "index.html"), methods=["GET", "HEAD"]),
        Route(
            "/events/{event_id}",
            page("/events/{event_id}", "event.html"),
            methods=["GET", "HEAD"],
        ),
    ]
