"""The one place where exceptions become problem+json responses (the exception handlers;
the rendering itself is ``hub.problem_json``)."""

from __future__ import annotations

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from hub import jsonenc
from hub.errors import HubError, MethodNotAllowed, NotFound, ServiceUnavailable
from hub.problem_json import PROBLEM_JSON, problem_response

log = structlog.get_logger(__name__)


async def on_hub_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HubError)
    if isinstance(exc, ServiceUnavailable):
        log.warning("service_unavailable", detail=exc.detail)
    return problem_response(request, exc)


async def on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error: HubError
    if exc.status_code == 404:
        error = NotFound(f"No route for {request.url.path}")
    elif exc.status_code == 405:
        error = MethodNotAllowed(f"{request.method} is not allowed here")
        error.headers.update(exc.headers or {})
    else:
        body = {**HubError(str(exc.detail)).problem(request.url.path), "status": exc.status_code}
        return Response(jsonenc.dumps(body), exc.status_code, media_type=PROBLEM_JSON)
    return problem_response(request, error)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    """Starlette's last-resort handler. A handler's unexpected error never gets here: the
    request middleware (``hub.middleware.RequestObserver``) answers and logs it without
    re-raising, which keeps the connection; only a failure of that middleware itself does,
    and Starlette then re-raises it to the server after this 500."""
    log.exception("unhandled_error", path=request.url.path)
    return problem_response(request, HubError("An unexpected error occurred; it has been logged"))
