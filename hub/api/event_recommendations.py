"""Route: event recommendations for a user (the caller, or anyone for an admin)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from hub.api.inputs import Input
from hub.api.routing import Api, Auth, Call, Doc
from hub.errors import Forbidden
from hub.services import event_recommendations

api = Api(tag="recommendations")


class EventRecommendationsIn(Input):
    user_id: uuid.UUID | None = None
    limit: Annotated[int, Field(ge=1, le=event_recommendations.MAX_LIMIT)] = (
        event_recommendations.DEFAULT_LIMIT
    )


class EventRecommendationOut(BaseModel):
    event_id: uuid.UUID
    score: float
    method: Literal["collaborative", "content", "hybrid", "popular"]
    reasons: list[str]


class EventRecommendationsOut(BaseModel):
    recommendations: list[EventRecommendationOut]


@api.route(
    "POST",
    "/advanced/events/recommendations",
    Doc(
        "Upcoming events the user may like, best first, each with its method and reasons",
        response=EventRecommendationsOut,
        errors=(401, 403, 404, 422),
    ),
    auth=Auth.USER,
    body=EventRecommendationsIn,
)
async def recommend_events(call: Call) -> Any:
    body: EventRecommendationsIn = call.body
    user_id = body.user_id or call.user.user_id
    if user_id != call.user.user_id and not call.user.is_admin:
        raise Forbidden("Only an admin may ask for another user's recommendations")
    recommendations = await event_recommendations.recommend_events(
        call.hub, user_id, limit=body.limit
    )
    return {"recommendations": recommendations}
