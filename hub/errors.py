"""The typed error tree. Every error a client can see is one of these, rendered in one place.

Each class carries the HTTP status, the stable ``code`` of the contract and a title; an
instance adds a ``detail`` and optional extra members (``errors``, ``seats``, ``limit``) that
the problem+json body carries. WebSocket code maps the same classes to ``error`` messages.
"""

from __future__ import annotations

from typing import Any, ClassVar


class HubError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = headers or {}
        self.extra = extra

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"https://evently.dev/problems/{self.code.replace('_', '-')}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class ValidationError(HubError):
    """Bad input. ``errors`` lists ``{field, message}`` for each offending field."""

    status = 422
    code = "validation_error"
    title = "The request is not valid"

    def __init__(self, detail: str, errors: list[dict[str, str]]) -> None:
        super().__init__(detail, errors=errors)

    @classmethod
    def field(cls, field: str, message: str) -> ValidationError:
        return cls(f"{field}: {message}", [{"field": field, "message": message}])


class Unauthorized(HubError):
    status = 401
    code = "unauthorized"
    title = "Authentication required"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"}, **extra)


class Forbidden(HubError):
    status = 403
    code = "forbidden"
    title = "Not allowed"


class NotAdmitted(HubError):
    """A waiting room is on for the event and the request has no valid admission token."""

    status = 403
    code = "not_admitted"
    title = "Not admitted from the waiting room"


class NotFound(HubError):
    status = 404
    code = "not_found"
    title = "Not found"


class MethodNotAllowed(HubError):
    status = 405
    code = "method_not_allowed"
    title = "Method not allowed"


class Conflict(HubError):
    status = 409
    code = "conflict"
    title = "Conflict"


class SeatUnavailable(HubError):
    status = 409
    code = "seat_unavailable"
    title = "Seats are no longer available"


class SoldOut(HubError):
    status = 409
    code = "sold_out"
    title = "Not enough seats left"


class HoldExpired(HubError):
    status = 410
    code = "hold_expired"
    title = "The hold has expired"


class LimitExceeded(HubError):
    status = 422
    code = "limit_exceeded"
    title = "A limit would be exceeded"


class IdempotencyConflict(HubError):
    status = 422
    code = "idempotency_conflict"
    title = "Idempotency key reused with another request"


class PaymentFailed(HubError):
    status = 402
    code = "payment_failed"
    title = "The payment was declined"


class BadRequest(HubError):
    """A request that cannot be read at all (a body that is not UTF-8)."""

    status = 400
    code = "bad_request"
    title = "The request cannot be read"


class PayloadTooLarge(HubError):
    status = 413
    code = "payload_too_large"
    title = "The request body is too large"


class UnsupportedMediaType(HubError):
    status = 415
    code = "unsupported_media_type"
    title = "Send application/json"


class RateLimited(HubError):
    status = 429
    code = "rate_limited"
    title = "Too many requests"

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class Busy(HubError):
    status = 503
    code = "busy"
    title = "Busy, try again"

    def __init__(self, detail: str | None = None, retry_after: int = 1) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class ServiceUnavailable(HubError):
    status = 503
    code = "service_unavailable"
    title = "A backing service is unavailable"

    def __init__(self, detail: str | None = None, retry_after: int = 2) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})
