"""The OpenAPI 3.1 document, generated from the endpoint table.

The table's entries are described here by what the document reads of them (``Operation``),
so this module sits below the API that declares them (``hub.api.routing.Endpoint`` is one)
and never imports it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from pydantic import BaseModel

from hub.problem_json import Problem

_PARAM = re.compile(r"{([a-z_]+)}")

_STATUS_TEXT = {
    400: "Bad request",
    401: "Not authenticated",
    402: "Payment failed",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    410: "Gone",
    413: "Body too large",
    415: "Body not JSON",
    422: "Invalid input",
    429: "Rate limited",
    503: "Busy or unavailable",
}


class Operation(Protocol):
    """One endpoint as the document sees it. Read-only properties, so that a frozen
    dataclass satisfies the protocol."""

    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def handler(self) -> Callable[..., Any]: ...
    @property
    def summary(self) -> str: ...
    @property
    def tag(self) -> str: ...
    @property
    def body(self) -> type[BaseModel] | None: ...
    @property
    def query(self) -> type[BaseModel] | None: ...
    @property
    def response(self) -> type[BaseModel] | None: ...
    @property
    def status(self) -> int: ...
    @property
    def errors(self) -> tuple[int, ...]: ...
    @property
    def limits(self) -> tuple[object, ...]:
        """The rate limits, if any: their presence adds 429."""

    @property
    def needs_token(self) -> bool:
        """A bearer token is required (401, bearer security)."""

    @property
    def admin_only(self) -> bool:
        """Only an admin may call it (403)."""


def document(
    endpoints: Iterable[Operation], extra_paths: dict[str, Any] | None = None
) -> dict[str, Any]:
    components: dict[str, Any] = {"Problem": Problem.model_json_schema()}
    paths: dict[str, Any] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(
            endpoint, components
        )
    if extra_paths:
        paths.update(extra_paths)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Evently Hub",
            "version": "1.0.0",
            "description": "Real-time booking hub for live events.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def _schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components.setdefault(model.__name__, schema)
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _operation(endpoint: Operation, components: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": endpoint.summary,
        "operationId": f"{endpoint.method.lower()}_{endpoint.handler.__name__}",
        "tags": [endpoint.tag] if endpoint.tag else [],
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": _path_schema(name)}
            for name in _PARAM.findall(endpoint.path)
        ],
        "responses": {},
    }
    if endpoint.query is not None:
        schema = endpoint.query.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in schema.pop("$defs", {}).items():
            components.setdefault(name, definition)
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            param: dict[str, Any] = {
                "name": name,
                "in": "query",
                "required": name in required,
                "schema": without_null(prop),
            }
            if "description" in prop:
                param["description"] = prop["description"]
            op["parameters"].append(param)
    if endpoint.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _schema(endpoint.body, components)}},
        }
    success: dict[str, Any] = {"description": "Success"}
    if endpoint.response is not None:
        success["content"] = {
            "application/json": {"schema": _schema(endpoint.response, components)}
        }
    op["responses"][str(endpoint.status)] = success
    codes = set(endpoint.errors)
    if endpoint.body is not None or endpoint.query is not None:
        # A body may also be too large, not JSON (or sent without a Content-Type), or not UTF-8.
        codes |= {400, 413, 415, 422} if endpoint.body is not None else {422}
    if endpoint.needs_token:
        codes.add(401)
        op["security"] = [{"bearer": []}]
    if endpoint.admin_only:
        codes.add(403)
    if endpoint.limits:
        codes.add(429)
    if _PARAM.search(endpoint.path):
        codes.add(404)
    for code in sorted(codes):
        if code < 400:  # another success (e.g. 200 "already done" beside 201): same shape
            op["responses"][str(code)] = success
            continue
        op["responses"][str(code)] = {
            "description": _STATUS_TEXT.get(code, "Error"),
            "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            },
        }
    return op


def without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` without pydantic's null branch and null default: for a query parameter (left
    out, never null: ``?x=`` is the empty string) or a body field that may only be left out."""
    schema = {k: v for k, v in schema.items() if not (k == "default" and v is None)}
    branches = schema.get("anyOf")
    if branches is not None:
        kept = [b for b in branches if b.get("type") != "null"]
        if len(kept) == 1:
            del schema["anyOf"]
            schema.update(kept[0])
        else:
            schema["anyOf"] = kept
    return schema


def _path_schema(name: str) -> dict[str, Any]:
    if name.endswith("_id"):
        return {"type": "string", "format": "uuid"}
    return {"type": "string"}
