"""Route: a bulk group booking — seats assigned by the seat engine, one booking, a receipt."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import Field

from hub import ratelimit
from hub.api.bookings import BookingOut, Code, ReceiptOut
from hub.api.inputs import Input
from hub.api.routing import Api, Auth, Call, Doc, JSONBytes
from hub.api.venues import Name, SectionName
from hub.errors import Forbidden
from hub.services import bulk, idempotency
from hub.services.bulk import GroupRequest
from hub.services.idempotency import Replay

api = Api(tag="bulk bookings")

# The most a body may ask for; the hub's own limit (EVENTLY_MAX_GROUP_SIZE) is checked by
# the service, so an over-size group is 422 ``limit_exceeded`` naming that limit.
GroupQuantity = Annotated[int, Field(ge=bulk.MIN_GROUP_SIZE, le=1_000_000)]


class BulkBookingIn(Input):
    event_id: uuid.UUID
    quantity: GroupQuantity
    group_name: Name
    user_id: uuid.UUID | None = None
    discount_code: Code | None = None
    preferred_sections: Annotated[list[SectionName], Field(min_length=1, max_length=50)] | None = (
        None
    )


class BulkBookingOut(BookingOut):
    receipt: ReceiptOut


@api.route(
    "POST",
    "/advanced/bookings/bulk",
    Doc(
        "Book seats for a group in one booking, with the group rate, a code and a receipt "
        "(Idempotency-Key honoured)",
        response=BulkBookingOut,
        errors=(401, 402, 403, 404, 409, 422, 503),
    ),
    auth=Auth.USER,
    body=BulkBookingIn,
    status=201,
    limit=ratelimit.BOOKINGS,
)
async def book_group(call: Call) -> Any:
    body: BulkBookingIn = call.body
    user_id = body.user_id or call.user.user_id
    if user_id != call.user.user_id and not call.user.is_admin:
        raise Forbidden("Only an admin may book for another user")
    result = await bulk.book_group(
        call.hub,
        user_id,
        GroupRequest(
            event_id=body.event_id,
            quantity=body.quantity,
            group_name=body.group_name,
            discount_code=body.discount_code,
            preferred_sections=body.preferred_sections,
            admission_token=call.header("X-Admission-Token"),
        ),
        idempotency_key=call.header("Idempotency-Key"),
        request_hash=idempotency.request_hash(
            "POST /advanced/bookings/bulk", body.model_dump(mode="json", exclude_none=True)
        ),
    )
    if isinstance(result, Replay):
        return JSONBytes(result.body, result.status, {"Idempotent-Replayed": "true"})
    return result
