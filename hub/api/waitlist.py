"""Routes: join, read and leave an event's waitlist."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, Field

from hub import ratelimit
from hub.api.inputs import Input
from hub.api.routing import Api, Auth, Call, Doc
from hub.services import waitlist

api = Api(tag="waitlist")


class WaitlistIn(Input):
    quantity: Annotated[int, Field(ge=1, le=100)]


class WaitlistJoinOut(BaseModel):
    position: int | None
    quantity: int
    status: str


class OfferSeatOut(BaseModel):
    id: uuid.UUID
    section: str
    row: str
    number: int
    price: Decimal


class OfferOut(BaseModel):
    hold_id: uuid.UUID
    seats: list[OfferSeatOut]
    expires_at: str


class WaitlistOut(WaitlistJoinOut):
    offer: OfferOut | None


@api.route(
    "POST",
    "/events/{event_id}/waitlist",
    Doc("Join the event's waitlist", response=WaitlistJoinOut, errors=(404, 409)),
    auth=Auth.USER,
    body=WaitlistIn,
    status=201,
    limit=ratelimit.WAITLIST,
)
async def join(call: Call) -> Any:
    body: WaitlistIn = call.body
    return await waitlist.join(call.hub, call.user.user_id, call.path["event_id"], body.quantity)


@api.route(
    "GET",
    "/events/{event_id}/waitlist",
    Doc("The caller's place in the waitlist and any standing offer", response=WaitlistOut),
    auth=Auth.USER,
)
async def status(call: Call) -> Any:
    return await waitlist.status(call.hub, call.user.user_id, call.path["event_id"])


@api.route(
    "DELETE",
    "/events/{event_id}/waitlist",
    Doc("Leave the waitlist (a standing offer passes to the next in line)"),
    auth=Auth.USER,
    status=204,
)
async def leave(call: Call) -> Any:
    await waitlist.leave(call.hub, call.user.user_id, call.path["event_id"])
