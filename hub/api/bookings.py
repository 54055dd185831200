"""Routes: book (confirm a hold, or hold and confirm at once), list, read, cancel."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator

from hub import ratelimit
from hub.api.holds import Quantity, SeatIds, SeatLineOut, Section
from hub.api.inputs import Input, exclusive_forms
from hub.api.routing import Api, Auth, Call, Doc, JSONBytes
from hub.api.venues import PageQuery
from hub.errors import Forbidden
from hub.services import booking_views, bookings, cancellation, idempotency, receipts
from hub.services.bookings import BookingRequest
from hub.services.idempotency import Replay

api = Api(tag="bookings")

Code = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class BookingIn(Input):
    """``{hold_id}`` to book a hold, or ``{event_id, seat_ids}`` / ``{event_id, quantity,
    section?}`` to hold and book in one call; ``discount_code`` with any of them."""

    model_config = ConfigDict(
        json_schema_extra=exclusive_forms(
            (("hold_id",), ("event_id", "seat_ids", "quantity", "section")),
            (("event_id", "seat_ids"), ("hold_id", "quantity", "section")),
            (("event_id", "quantity"), ("hold_id", "seat_ids")),
        )
    )

    hold_id: uuid.UUID | None = None
    event_id: uuid.UUID | None = None
    seat_ids: SeatIds | None = None
    quantity: Quantity | None = None
    section: Section | None = None
    discount_code: Code | None = None

    @model_validator(mode="after")
    def _one_way(self) -> BookingIn:
        direct = (self.seat_ids, self.quantity, self.section)
        if self.hold_id is not None:
            if self.event_id is not None or any(v is not None for v in direct):
                raise ValueError("with hold_id, give no event_id, seat_ids, quantity or section")
        elif self.event_id is None:
            raise ValueError("give hold_id, or event_id with seat_ids or quantity")
        elif (self.seat_ids is None) == (self.quantity is None):
            raise ValueError("with event_id, give either seat_ids or quantity")
        elif self.seat_ids is not None and self.section is not None:
            raise ValueError("section goes with quantity, not with seat_ids")
        return self


class BookingsQuery(PageQuery):
    user_id: uuid.UUID | None = None


class RefundOut(BaseModel):
    amount: Decimal
    status: str  # due | paid | failed
    paid_at: str | None


class BookingOut(BaseModel):
    id: uuid.UUID
    reference: str
    event_id: uuid.UUID
    user_id: uuid.UUID
    status: str
    seats: list[SeatLineOut]
    subtotal: Decimal
    discount: Decimal
    discount_rate: Decimal
    discount_code: str | None
    total: Decimal
    group_name: str | None
    created_at: str
    refund: RefundOut | None


class ReceiptLineOut(BaseModel):
    seat_id: uuid.UUID
    section: str
    row: str
    number: int
    price: Decimal


class DiscountOut(BaseModel):
    name: str
    kind: str  # group | code
    rate: Decimal
    amount: Decimal


class ReceiptOut(BaseModel):
    reference: str
    group_name: str | None
    lines: list[ReceiptLineOut]
    subtotal: Decimal
    discounts: list[DiscountOut]
    total: Decimal


class BookingPage(BaseModel):
    items: list[BookingOut]
    page: int
    size: int
    total: int


@api.route(
    "POST",
    "/bookings",
    Doc(
        "Book: confirm a hold, or hold and confirm in one call (Idempotency-Key honoured)",
        response=BookingOut,
        errors=(401, 402, 403, 404, 409, 410, 422, 503),
    ),
    auth=Auth.USER,
    body=BookingIn,
    status=201,
    limit=ratelimit.BOOKINGS,
)
async def create_booking(call: Call) -> Any:
    body: BookingIn = call.body
    request = BookingRequest(
        hold_id=body.hold_id,
        event_id=body.event_id,
        seat_ids=tuple(body.seat_ids) if body.seat_ids is not None else None,
        quantity=body.quantity,
        section=body.section,
        discount_code=body.discount_code,
        admission_token=call.header("X-Admission-Token"),
    )
    result = await bookings.create_booking(
        call.hub,
        call.user.user_id,
        request,
        idempotency_key=call.header("Idempotency-Key"),
        request_hash=idempotency.request_hash(
            "POST /bookings", body.model_dump(mode="json", exclude_none=True)
        ),
    )
    if isinstance(result, Replay):
        return JSONBytes(result.body, result.status, {"Idempotent-Replayed": "true"})
    return result


@api.route(
    "GET",
    "/bookings",
    Doc(
        "The caller's bookings, newest first (admins: anyone's, user_id to filter)",
        response=BookingPage,
        errors=(401, 403, 422),
    ),
    auth=Auth.USER,
    query=BookingsQuery,
)
async def list_bookings(call: Call) -> Any:
    query: BookingsQuery = call.query
    if query.user_id not in (None, call.user.user_id) and not call.user.is_admin:
        # Another user's id in a query is refused, not silently replaced by the caller's.
        raise Forbidden("Only an admin may list another user's bookings")
    return await booking_views.list_bookings(
        call.hub,
        call.user.user_id,
        call.user.is_admin,
        for_user=query.user_id,
        page=query.page,
        size=query.size,
    )


@api.route(
    "GET",
    "/bookings/{booking_id}",
    Doc("One booking (its owner or an admin)", response=BookingOut, errors=(401, 404)),
    auth=Auth.USER,
)
async def get_booking(call: Call) -> Any:
    return await booking_views.get_booking(
        call.hub, call.user.user_id, call.user.is_admin, call.path["booking_id"]
    )


@api.route(
    "GET",
    "/bookings/{booking_id}/receipt",
    Doc("A booking's receipt (its owner or an admin)", response=ReceiptOut, errors=(401, 404)),
    auth=Auth.USER,
)
async def get_receipt(call: Call) -> Any:
    return await receipts.get_receipt(
        call.hub, call.user.user_id, call.user.is_admin, call.path["booking_id"]
    )


@api.route(
    "POST",
    "/bookings/{booking_id}/cancel",
    Doc(
        "Cancel a booking and refund it (owner or admin; not after the event starts)",
        response=BookingOut,
        errors=(401, 404, 409),
    ),
    auth=Auth.USER,
)
async def cancel_booking(call: Call) -> Any:
    return await cancellation.cancel_booking(
        call.hub, call.user.user_id, call.user.is_admin, call.path["booking_id"]
    )
