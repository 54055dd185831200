"""The request middleware: request id, one log line, metrics per route template, and the
last stop of an unexpected error (one JSON log line, a 500, the connection kept)."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time

import structlog
from prometheus_client import Counter, Histogram
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub import metrics
from hub.errors import Busy, HubError
from hub.problem_json import problem_response

log = structlog.get_logger(__name__)


class RequestObserver:
    """Pure ASGI middleware (no BaseHTTPMiddleware: it would buffer streaming and cost time)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Request ids: a random prefix per process and a counter, unique without drawing
        # 128 random bits per request.
        self._ids = itertools.count(1)
        self._id_prefix = secrets.token_hex(6)
        # Metric children by label values: ``labels()`` validates and locks on every call.
        self._counted: dict[tuple[str, str, int], Counter] = {}
        self._timed: dict[tuple[str, str], Histogram] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or f"{self._id_prefix}{next(self._ids):x}"
        started = time.perf_counter()
        status = 500
        answering = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, answering
            if message["type"] == "http.response.start":
                status = message["status"]
                answering = True
                headers = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            # An unexpected error ends here: logged once (JSON), answered with a 500, and not
            # re-raised. Past this point Starlette's ServerErrorMiddleware would re-raise it
            # to uvicorn, which logs it again as a plain-text traceback and, the 500 being
            # already sent, closes the connection: the client's next keep-alive request
            # would meet a reset.
            log.exception("unhandled_error", method=scope["method"], path=scope["path"])
            if not answering:
                error = HubError("An unexpected error occurred; it has been logged")
                await problem_response(Request(scope), error)(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("evently.route") or _fallback_route(scope)
            method = scope["method"]
            self._count(method, route, status).inc()
            self._timer(method, route).observe(elapsed)
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

    def _count(self, method: str, route: str, status: int) -> Counter:
        key = (method, route, status)
        child = self._counted.get(key)
        if child is None:
            child = self._counted[key] = metrics.HTTP_REQUESTS.labels(method, route, str(status))
        return child

    def _timer(self, method: str, route: str) -> Histogram:
        key = (method, route)
        child = self._timed.get(key)
        if child is None:
            child = self._timed[key] = metrics.HTTP_LATENCY.labels(method, route)
        return child


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


class Admission:
    """Bounded work in flight: at most ``limit`` API requests of this process run at once;
    the rest wait their turn (FIFO), and one that waits longer than ``wait_s`` gets 503
    ``busy`` with Retry-After. Under a surge this keeps the Redis and PostgreSQL pools, and
    the event loop, working on requests that can finish instead of thousands that all
    slow each other down. Operations routes and WebSockets are never held back."""

    def __init__(self, app: ASGIApp, limit: int, wait_s: float = 10.0) -> None:
        self.app = app
        self.wait_s = wait_s
        self._slots = asyncio.Semaphore(limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        if self._slots.locked():  # all slots taken: wait in line, not for ever
            try:
                async with asyncio.timeout(self.wait_s):
                    await self._slots.acquire()
            except TimeoutError:
                busy = Busy("The hub is at capacity; try again")
                await problem_response(Request(scope), busy)(scope, receive, send)
                return
        else:
            await self._slots.acquire()  # a slot is free: taken at once, no timer
        try:
            await self.app(scope, receive, send)
        finally:
            self._slots.release()
