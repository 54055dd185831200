"""The request middleware: request id, one log line, metrics per route template."""

from __future__ import annotations

import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub import metrics

log = structlog.get_logger(__name__)


class RequestObserver:
    """Pure ASGI middleware (no BaseHTTPMiddleware: it would buffer streaming and cost time)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("evently.route") or _fallback_route(scope)
            method = scope["method"]
            metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
            metrics.HTTP_LATENCY.labels(method, route).observe(elapsed)
            problem_code = scope.get("evently.problem")
            if status >= 400:
                metrics.HTTP_ERRORS.labels(problem_code or str(status)).inc()
            log.info(
                "request",
                method=method,
                path=scope["path"],
                route=route,
                status=status,
                ms=round(elapsed * 1000, 2),
                code=problem_code,
            )
            structlog.contextvars.unbind_contextvars("request_id")


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")[:64]
            if candidate.replace("-", "").isalnum():
                return candidate
    return None


def _fallback_route(scope: Scope) -> str:
    path: str = scope["path"]
    if path.startswith("/static/"):
        return "/static"
    return "unmatched"
