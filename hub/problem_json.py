"""problem+json (RFC 9457): the body every error answer carries and the response that
carries it.

It sits below the API so that the middleware, which runs outside the exception handlers
(``hub.api.problems``), and the OpenAPI document can use it without importing upward.
``HubError.problem()`` builds the body; ``Problem`` describes it for the document.
"""

from __future__ import annotations

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from hub import jsonenc
from hub.errors import HubError

PROBLEM_JSON = "application/problem+json"


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    code: str


def problem_response(request: Request, error: HubError) -> Response:
    request.scope["evently.problem"] = error.code
    return Response(
        jsonenc.dumps(error.problem(instance=request.url.path)),
        status_code=error.status,
        headers=error.headers,
        media_type=PROBLEM_JSON,
    )
