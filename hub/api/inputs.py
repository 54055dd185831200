"""Reading request input: size-capped bodies, JSON, pydantic models, and 422s that name fields.

Two rules hold for every input model, whatever its fields:

- No text holds a NUL character. PostgreSQL cannot store one in ``text`` (asyncpg raises
  ``CharacterNotInRepertoireError``), so a NUL that got past this layer would be a 500;
  here it is a 422 naming the field, for every string of every body and query model,
  including strings inside lists and dictionaries (keys too).
- Bodies are strict: a JSON ``true`` or ``"2"`` is not a number. Bodies are validated
  from JSON text (``model_validate_json``), where strict mode still reads UUIDs, ISO
  datetimes and decimals from their JSON forms; query strings are text by nature, so
  their models stay lax and parse ``?page=2`` into an int.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError
from starlette.requests import Request

from hub.errors import PayloadTooLarge, UnsupportedMediaType, ValidationError

MAX_BODY_BYTES = 1024 * 1024

M = TypeVar("M", bound=BaseModel)


NUL = "\x00"


def _nul_at(value: Any) -> str | None:
    """Where in ``value`` a string holds a NUL (``""`` for the value itself), else None.

    Nested input models are not searched: they ran this check on their own fields.
    """
    if isinstance(value, str):
        return "" if NUL in value else None
    if isinstance(value, list | tuple | set | frozenset):
        for index, item in enumerate(value):
            inner = _nul_at(item)
            if inner is not None:
                return f"[{index}]{inner}"
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and NUL in key:
                return f" key {key!r}"
            inner = _nul_at(item)
            if inner is not None:
                return f"[{key!r}]{inner}"
    return None


class _NoNul(BaseModel):
    @field_validator("*", mode="after")
    @classmethod
    def _refuse_nul(cls, value: Any, info: ValidationInfo) -> Any:
        where = _nul_at(value)
        if where is not None:
            raise PydanticCustomError(
                "nul_character",
                "{place} must not contain a NUL character (\\u0000)",
                {"place": f"{info.field_name}{where}"},
            )
        return value


class Input(_NoNul):
    """Base of every request body model: unknown fields are an error, strings are trimmed,
    no NUL in any text, and no coercion (``true`` or ``"2"`` is not a number)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True, strict=True)


class QueryInput(_NoNul):
    """Base of query-string models: unknown parameters are ignored, as is usual for queries;
    values are text, so they are parsed (not strict), but no NUL in any of them."""

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
    """Parse query parameters into ``model`` (text values, parsed into their types).

    Raises:
        ValidationError: 422 naming each bad parameter.
    """
    try:
        return model.model_validate(dict(params))
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
