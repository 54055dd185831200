"""Routes: an event's waiting room (admin) and its queue (signed-in users)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, Field

from hub import ratelimit
from hub.api.inputs import Input
from hub.api.routing import Api, Auth, Call, Doc, Reply
from hub.services import waiting_room

api = Api(tag="waiting room")

# Joining is cheap to ask for and each join writes Redis: a few per address per 10 s
# are plenty for a person (one place per user; re-joining answers the same place). Each
# user is limited too (ratelimit.QUEUE_JOINS), so that many addresses do not add up.
QUEUE_JOIN = ratelimit.Limit("queue-join", 10, 10, ratelimit.By.IP)


class WaitingRoomIn(Input):
    opens_at: AwareDatetime
    admit_per_second: Annotated[float, Field(gt=0, le=100_000)] | None = None
    session_seconds: Annotated[int, Field(ge=10, le=86_400)] | None = None


class WaitingRoomOut(BaseModel):
    event_id: uuid.UUID
    opens_at: str
    admit_per_second: float | None
    session_seconds: int
    status: str  # scheduled | open | closed
    waiting: int
    admitted: int
    admission_rate: float


class QueuePlaceOut(BaseModel):
    queue_id: uuid.UUID
    status: str  # waiting | admitted | expired | sold_out
    position: int | None
    ahead: int | None
    eta_seconds: int | None
    token: str | None
    expires_at: str | None


_ROOM = "/events/{event_id}/waiting-room"
_QUEUE = "/events/{event_id}/queue"


@api.route(
    "PUT",
    _ROOM,
    Doc(
        "Turn the event's waiting room on (or change it): admissions from opens_at, at a "
        "fixed rate or adaptive",
        response=WaitingRoomOut,
        errors=(404,),
    ),
    auth=Auth.ADMIN,
    body=WaitingRoomIn,
)
async def configure(call: Call) -> Any:
    body: WaitingRoomIn = call.body
    return await waiting_room.configure(
        call.hub, call.path["event_id"], body.opens_at, body.admit_per_second, body.session_seconds
    )


@api.route(
    "GET",
    _ROOM,
    Doc("The event's waiting room and its figures", response=WaitingRoomOut, errors=(404,)),
    auth=Auth.ADMIN,
)
async def get_room(call: Call) -> Any:
    return await waiting_room.get_room(call.hub, call.path["event_id"])


@api.route(
    "DELETE",
    _ROOM,
    Doc(
        "Turn the waiting room off: everyone waiting is admitted in order",
        response=WaitingRoomOut,
        errors=(404,),
    ),
    auth=Auth.ADMIN,
)
async def turn_off(call: Call) -> Any:
    return await waiting_room.turn_off(call.hub, call.path["event_id"])


@api.route(
    "POST",
    _QUEUE,
    Doc(
        "Join the event's queue (201), or see the place taken already (200)",
        response=QueuePlaceOut,
        errors=(200, 404),
    ),
    auth=Auth.USER,
    status=201,
    limit=(QUEUE_JOIN, ratelimit.QUEUE_JOINS),
)
async def join(call: Call) -> Any:
    place, created = await waiting_room.join(call.hub, call.user.user_id, call.path["event_id"])
    return place if created else Reply(place, 200)


@api.route(
    "GET",
    _QUEUE,
    Doc("The caller's place in the event's queue", response=QueuePlaceOut, errors=(404,)),
    auth=Auth.USER,
)
async def place(call: Call) -> Any:
    return await waiting_room.place(call.hub, call.user.user_id, call.path["event_id"])


@api.route(
    "DELETE",
    _QUEUE,
    Doc("Leave the event's queue", errors=(404,)),
    auth=Auth.USER,
    status=204,
)
async def leave(call: Call) -> Any:
    await waiting_room.leave(call.hub, call.user.user_id, call.path["event_id"])
