"""Routes: place a hold on seats (named or best available), read it, release it."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from hub import ratelimit
from hub.api.inputs import Input, exclusive_forms
from hub.api.routing import Api, Auth, Call, Doc
from hub.services import holds

api = Api(tag="holds")

MAX_SEATS_PER_HOLD = 100

SeatIds = Annotated[list[uuid.UUID], Field(min_length=1, max_length=MAX_SEATS_PER_HOLD)]
Quantity = Annotated[int, Field(ge=1, le=MAX_SEATS_PER_HOLD)]
Section = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class HoldIn(Input):
    """``{seat_ids}`` for the named seats, or ``{quantity, section?}`` for the best ones."""

    model_config = ConfigDict(
        json_schema_extra=exclusive_forms(
            (("seat_ids",), ("quantity", "section")), (("quantity",), ("seat_ids",))
        )
    )

    seat_ids: SeatIds | None = None
    quantity: Quantity | None = None
    section: Section | None = None

    @model_validator(mode="after")
    def _one_way(self) -> HoldIn:
        if (self.seat_ids is None) == (self.quantity is None):
            raise ValueError("give either seat_ids or quantity (with an optional section)")
        if self.seat_ids is not None and self.section is not None:
            raise ValueError("section goes with quantity, not with seat_ids")
        return self


class SeatLineOut(BaseModel):
    id: uuid.UUID
    section: str
    row: str
    number: int
    price: Decimal


class HoldOut(BaseModel):
    hold_id: uuid.UUID
    event_id: uuid.UUID
    seats: list[SeatLineOut]
    total: Decimal
    expires_at: str


@api.route(
    "POST",
    "/events/{event_id}/holds",
    Doc(
        "Hold seats: the named ones, or the best available (X-Admission-Token while the "
        "event's waiting room is on)",
        response=HoldOut,
        errors=(401, 403, 404, 409, 422, 503),
    ),
    auth=Auth.USER,
    body=HoldIn,
    status=201,
    limit=ratelimit.HOLDS,
)
async def place_hold(call: Call) -> Any:
    body: HoldIn = call.body
    return await holds.place_hold(
        call.hub,
        call.user.user_id,
        call.path["event_id"],
        seat_ids=body.seat_ids,
        quantity=body.quantity,
        section=body.section,
        admission_token=call.header("X-Admission-Token"),
    )


@api.route(
    "GET",
    "/holds/{hold_id}",
    Doc("One of the caller's holds", response=HoldOut, errors=(401, 404, 410)),
    auth=Auth.USER,
)
async def get_hold(call: Call) -> Any:
    return await holds.get_hold(call.hub, call.user.user_id, call.path["hold_id"])


@api.route(
    "DELETE",
    "/holds/{hold_id}",
    Doc("Release one of the caller's holds", errors=(401, 404, 409)),
    auth=Auth.USER,
    status=204,
)
async def release_hold(call: Call) -> Any:
    await holds.release_hold(call.hub, call.user.user_id, call.path["hold_id"])


@api.route(
    "POST",
    "/holds/{hold_id}/extend",
    Doc(
        "Extend one of the caller's holds, once, within the maximum lifetime",
        response=HoldOut,
        errors=(401, 404, 409, 410),
    ),
    auth=Auth.USER,
)
async def extend_hold(call: Call) -> Any:
    return await holds.extend_hold(call.hub, call.user.user_id, call.path["hold_id"])
