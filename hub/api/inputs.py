"""Reading request input: size-capped bodies, JSON, pydantic models, and 422s that name fields."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict
from starlette.requests import Request

from hub.errors import PayloadTooLarge, UnsupportedMediaType, ValidationError

MAX_BODY_BYTES = 1024 * 1024

M = TypeVar("M", bound=BaseModel)


class Input(BaseModel):
    """Base of every request model: unknown fields are an error, strings are trimmed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class QueryInput(BaseModel):
    """Base of query-string models: unknown parameters are ignored, as is usual for queries."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, frozen=True)


async def read_body(request: Request) -> bytes:
    """Read the whole body, refusing more than ``MAX_BODY_BYTES`` without buffering it all.

    Raises:
        PayloadTooLarge: the declared or actual length is over the cap.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"Bodies are limited to {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"Bodies are limited to {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def parse_body(model: type[M], request: Request) -> M:
    """Parse a JSON body into ``model``.

    Raises:
        PayloadTooLarge, UnsupportedMediaType, ValidationError (422 naming each bad field).
    """
    raw = await read_body(request)
    content_type = request.headers.get("content-type", "application/json")
    media = content_type.split(";", 1)[0].strip().lower()
    if media and media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaType(f"Content-Type {media!r} is not JSON")
    if not raw.strip():
        raise ValidationError.field("body", "a JSON object is required")
    try:
        return model.model_validate_json(raw)
    except pydantic.ValidationError as exc:
        raise _to_validation_error(exc) from None


def parse_query(model: type[M], params: Mapping[str, str]) -> M:
    try:
        return model.model_validate(dict(params))
    except pydantic.ValidationError as exc:
        raise _to_validation_error(exc) from None


def validate(model: type[M], data: Any) -> M:
    """Validate already-decoded data (e.g. a WebSocket message) into ``model``."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise _to_validation_error(exc) from None


def _to_validation_error(exc: pydantic.ValidationError) -> ValidationError:
    errors: list[dict[str, str]] = []
    for error in exc.errors(include_url=False, include_input=False):
        location = [str(part) for part in error["loc"]]
        if error["type"] == "json_invalid":
            errors.append({"field": "body", "message": f"malformed JSON: {error['msg']}"})
            continue
        if error["type"] == "model_type" or error["type"] == "model_attributes_type":
            errors.append({"field": "body", "message": "a JSON object is required"})
            continue
        field = ".".join(location) or "body"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        errors.append({"field": field, "message": message})
    fields = ", ".join(dict.fromkeys(e["field"] for e in errors))
    return ValidationError(f"Invalid fields: {fields}", errors)
