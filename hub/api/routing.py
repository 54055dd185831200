"""Declarative HTTP endpoints: one table drives routing, input checks and the OpenAPI document.

A handler is declared with its body, query and response models and the role it needs. The
wrapper enforces a fixed order that the contract requires: authentication and role first
(401/403), then the body and query (413/415/422), then the handler. Handlers receive a
``Call`` with everything parsed and return plain data, which is encoded once as JSON.
"""

from __future__ import annotations

import asyncio
import enum
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub import jsonenc, store
from hub.api.inputs import parse_body, parse_query
from hub.auth import Principal, authenticate
from hub.context import Hub
from hub.errors import Forbidden, NotFound, ServiceUnavailable, Unauthorized
from hub.ratelimit import By, Limit

PREFIX = "/api/v1"


class Auth(enum.Enum):
    NONE = "none"
    OPTIONAL = "optional"
    USER = "user"
    ADMIN = "admin"


@dataclass(slots=True)
class Call:
    """One parsed API call, handed to a handler."""

    request: Request
    hub: Hub
    principal: Principal | None
    body: Any
    query: Any
    path: dict[str, Any]

    @property
    def user(self) -> Principal:
        assert self.principal is not None, "endpoint declared without authentication"
        return self.principal

    def header(self, name: str) -> str | None:
        return self.request.headers.get(name)


@dataclass(slots=True)
class Reply:
    """A handler result that needs a status or headers other than the endpoint's default."""

    payload: Any
    status: int
    headers: dict[str, str] | None = None


Handler = Callable[[Call], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    auth: Auth
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    errors: tuple[int, ...]
    tag: str
    limits: tuple[Limit, ...]

    @property
    def needs_token(self) -> bool:
        return self.auth in (Auth.USER, Auth.ADMIN)

    @property
    def admin_only(self) -> bool:
        return self.auth is Auth.ADMIN


class JSONBytes(Response):
    media_type = "application/json"


@dataclass(frozen=True, slots=True)
class Doc:
    """What an endpoint declares only for its reader and the OpenAPI document: a summary,
    the shape of a success (handlers return plain data, so it is never enforced) and the
    statuses it may answer besides those its declaration implies (an error, or another
    success of the same shape, such as 200 for "already done" beside 201)."""

    summary: str
    response: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()


class Api:
    """Collects the endpoints of one API module (one OpenAPI ``tag``); turns them into
    Starlette routes and an OpenAPI document."""

    def __init__(self, tag: str = "") -> None:
        self.tag = tag
        self.endpoints: list[Endpoint] = []

    def route(
        self,
        method: str,
        path: str,
        doc: Doc,
        *,
        auth: Auth = Auth.NONE,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        status: int = 200,
        limit: Limit | tuple[Limit, ...] | None = None,
    ) -> Callable[[Handler], Handler]:
        """Declare an endpoint: what is enforced (role, body, query, rate limits: one, or
        several that must all allow the call, e.g. per user and per address) and the success
        status as arguments, what is only documented as ``doc``."""
        limits = () if limit is None else limit if isinstance(limit, tuple) else (limit,)

        def register(handler: Handler) -> Handler:
            self.endpoints.append(
                Endpoint(
                    method=method.upper(),
                    path=PREFIX + path,
                    handler=handler,
                    summary=doc.summary,
                    auth=auth,
                    body=body,
                    query=query,
                    response=doc.response,
                    status=status,
                    errors=doc.errors,
                    tag=self.tag,
                    limits=limits,
                )
            )
            return handler

        return register

    def include(self, other: Api) -> None:
        self.endpoints.extend(other.endpoints)

    def routes(self) -> list[Route]:
        by_path: dict[str, list[Endpoint]] = {}
        for endpoint in self.endpoints:
            by_path.setdefault(endpoint.path, []).append(endpoint)
        return [
            Route(
                path,
                _dispatch(path, {e.method: e for e in group}),
                methods=[e.method for e in group],
            )
            for path, group in by_path.items()
        ]


def _dispatch(
    path: str, by_method: dict[str, Endpoint]
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        request.scope["evently.route"] = path
        spec = by_method[request.method if request.method != "HEAD" else "GET"]
        return await _run(spec, request)

    return endpoint


async def _run(spec: Endpoint, request: Request) -> Response:
    # PostgreSQL outages need no clause here: hub.db's connections already raise them as
    # ServiceUnavailable (and the API does not import hub.db). Redis calls are not wrapped.
    deadline = asyncio.timeout(request.app.state.hub.settings.request_timeout_seconds)
    try:
        async with deadline:
            result = await _call(spec, request)
    except store.UNAVAILABLE as exc:  # TimeoutError among them: it is an OSError
        if deadline.expired():
            # The work was cancelled where it stood: an open transaction rolls back, a hold
            # confirmed in PostgreSQL but not yet in Redis is reconciled by the leader.
            raise ServiceUnavailable("The request took too long; try again") from None
        raise ServiceUnavailable(f"Redis is unavailable: {type(exc).__name__}") from exc
    if isinstance(result, Response):
        return result
    if isinstance(result, Reply):
        return JSONBytes(jsonenc.dumps(result.payload), result.status, result.headers)
    if result is None and spec.status == 204:
        return Response(status_code=204)
    return JSONBytes(jsonenc.dumps(result), spec.status)


async def _call(spec: Endpoint, request: Request) -> Any:
    hub: Hub = request.app.state.hub
    principal = None
    if spec.auth is not Auth.NONE:
        principal = await authenticate(hub, request)
        if principal is None and spec.auth is not Auth.OPTIONAL:
            raise Unauthorized("Send a bearer token (Authorization: Bearer ...)")
        if spec.auth is Auth.ADMIN and principal is not None and not principal.is_admin:
            raise Forbidden("This needs an admin account")
    for limit in spec.limits:
        await hub.limits.hit(limit, _caller(limit, request, principal))
    path_params = _path_params(request)
    query = parse_query(spec.query, request.query_params) if spec.query else None
    body = await parse_body(spec.body, request) if spec.body else None
    return await spec.handler(Call(request, hub, principal, body, query, path_params))


def _caller(limit: Limit, request: Request, principal: Principal | None) -> str:
    if limit.by is By.USER and principal is not None:
        return str(principal.user_id)
    return request.client.host if request.client else "unknown"


def _path_params(request: Request) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, raw in request.path_params.items():
        if name.endswith("_id"):
            try:
                params[name] = uuid.UUID(raw)
            except ValueError:
                # An id that cannot exist is simply not found: nothing to validate.
                raise NotFound(f"No such {name.removesuffix('_id')}: {raw!r}") from None
        else:
            params[name] = raw
    return params
