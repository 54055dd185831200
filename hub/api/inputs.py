"""Reading request input: size-capped bodies, JSON, pydantic models, and 422s that name fields.

Two rules hold for every input model, whatever its fields:

- No text holds a NUL character. PostgreSQL cannot store one in ``text`` (asyncpg raises
  ``CharacterNotInRepertoireError``), so a NUL that got past this layer would be a 500;
  here it is a 422 naming the field, for every string of every body and query model,
  including strings inside lists and dictionaries (keys too).
- Bodies are strict: a JSON ``true`` or ``"2"`` is not a number. Bodies are validated
  from JSON text (``model_validate_json``), where strict mode still reads UUIDs, ISO
  datetimes and decimals from their JSON forms; query strings are text by nature, so
  their models stay lax and parse ``?page=2`` into an int. Lax parsing would also read
  ``?date_to=0.5`` as a Unix time; a time or date in a query must be ISO 8601 text.

Bodies are read before they are parsed, in this order: at most ``MAX_BODY_BYTES`` (413
``payload_too_large``, from ``Content-Length`` when it is declared, counted while streaming
otherwise, so a large body is never buffered whole); a JSON media type (415
``unsupported_media_type``, also when a non-empty body has no Content-Type at all, and for a
charset other than UTF-8); UTF-8 text (400 ``bad_request``); then JSON into the model (422),
where the parser refuses nesting deeper than its recursion limit at once and every list and
string of a model has a maximum length.
"""

from __future__ import annotations

import datetime as dt
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError
from starlette.requests import Request

from hub.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType, ValidationError
from hub.openapi import without_null

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

    @field_validator("*", mode="before")
    @classmethod
    def _iso_times_only(cls, value: Any, info: ValidationInfo) -> Any:
        # Lax datetime parsing takes "0.5" or "1700000000" as seconds since 1970: a typo or a
        # probe, never what a client meant. Only text that looks like a number is looked at.
        if (
            isinstance(value, str)
            and _NUMBER.fullmatch(value.strip())
            and info.field_name is not None
            and _holds_time(cls.model_fields[info.field_name].annotation)
        ):
            raise PydanticCustomError(
                "iso_time",
                "{field} must be an ISO 8601 date or time (2030-01-01 or 2030-01-01T20:00:00Z)",
                {"field": info.field_name},
            )
        return value


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


_TIME_TYPES = (
    dt.datetime,
    dt.date,
    pydantic.AwareDatetime,
    pydantic.NaiveDatetime,
    pydantic.FutureDatetime,
    pydantic.PastDatetime,
    pydantic.FutureDate,
    pydantic.PastDate,
)


def _holds_time(annotation: Any) -> bool:
    """Whether ``annotation`` is, or has among its union members, a date or a datetime."""
    if annotation in _TIME_TYPES:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _holds_time(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return any(_holds_time(arg) for arg in typing.get_args(annotation))
    return False


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
    content_type = request.headers.get("content-type")
    if content_type is None:
        if raw.strip():
            raise UnsupportedMediaType("Send the body with Content-Type: application/json")
    else:
        _check_media_type(content_type)
    if not raw.strip():
        raise ValidationError.field("body", "a JSON object is required")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"The body is not UTF-8 (byte {exc.start})") from None
    try:
        return model.model_validate_json(raw)
    except pydantic.ValidationError as exc:
        raise _to_validation_error(exc) from None


def decimal_schema(maximum: int, *, positive: bool = False) -> pydantic.WithJsonSchema:
    """The documented form of a money-like decimal input: a JSON number or a numeric string,
    at least 0 (more than 0 when ``positive``), at most ``maximum``, two decimal places at
    most. Pydantic's own schema leaves the string form unbounded."""
    number: dict[str, Any] = {"type": "number", "maximum": maximum, "multipleOf": 0.01}
    number["exclusiveMinimum" if positive else "minimum"] = 0
    digits = len(str(maximum))
    text = {
        "type": "string",
        "pattern": rf"^[0-9]{{1,{digits}}}(\.[0-9]{{1,2}})?$",
        "maxLength": digits + 3,
    }
    return pydantic.WithJsonSchema({"anyOf": [number, text]})


def omit_not_null(schema: dict[str, Any]) -> None:
    """``json_schema_extra`` of a body whose optional fields are left out rather than sent as
    null (a PATCH: a field left out is kept, null is refused): each property's null branch
    and null default are removed from the document."""
    properties = schema.get("properties", {})
    for name, prop in properties.items():
        properties[name] = without_null(prop)


def exclusive_forms(
    *forms: tuple[tuple[str, ...], tuple[str, ...]],
) -> Callable[[dict[str, Any]], None]:
    """``json_schema_extra`` of a body that comes in one of several forms, each given as
    (fields it requires, fields it must not carry). The document states them as ``oneOf``;
    the model's own validator enforces them (a null field counts as left out there, so the
    document drops the null branches: send a form's fields, leave the others out)."""

    def extra(schema: dict[str, Any]) -> None:
        omit_not_null(schema)
        schema["oneOf"] = [
            {
                "required": list(required),
                **({"not": {"anyOf": [{"required": [f]} for f in refused]}} if refused else {}),
            }
            for required, refused in forms
        ]

    return extra


def _check_media_type(content_type: str) -> None:
    """Refuse a media type other than JSON, or JSON in a charset other than UTF-8."""
    media, _, parameters = content_type.partition(";")
    media = media.strip().lower()
    if media != "application/json" and not (
        media.startswith("application/") and media.endswith("+json")
    ):
        raise UnsupportedMediaType(f"Content-Type {media!r} is not JSON")
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            raise UnsupportedMediaType(f"JSON is read as UTF-8, not {value.strip()!r}")


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
