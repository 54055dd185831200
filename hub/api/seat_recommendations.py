"""Route: the best seat blocks of an event for a buyer, with their scores explained."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, Field

from engines.money import decimal_to_cents
from hub.api.inputs import Input
from hub.api.routing import Api, Auth, Call, Doc
from hub.api.venues import Price, SectionName
from hub.services import seat_recommendations

api = Api(tag="recommendations")

Quantity = Annotated[int, Field(ge=1, le=seat_recommendations.MAX_QUANTITY)]
Sections = Annotated[list[SectionName], Field(max_length=50)]


class SeatRecommendationsIn(Input):
    event_id: uuid.UUID
    quantity: Quantity
    user_id: uuid.UUID | None = None
    max_price: Price | None = None
    preferred_sections: Sections = []
    accessibility_required: bool = False


class RecommendedSeatOut(BaseModel):
    id: uuid.UUID
    section: str
    row: str
    number: int
    price: Decimal
    accessible: bool


class ScoresOut(BaseModel):
    similarity: float
    value: float
    location: float
    group: float


class SeatRecommendationOut(BaseModel):
    seats: list[RecommendedSeatOut]
    total_price: Decimal
    together: bool
    score: float
    scores: ScoresOut


class SeatRecommendationsOut(BaseModel):
    recommendations: list[SeatRecommendationOut]


@api.route(
    "POST",
    "/advanced/seats/recommendations",
    Doc(
        "The best seat blocks for a buyer now, best first, with their scores",
        response=SeatRecommendationsOut,
        errors=(401, 403, 404, 422),
    ),
    auth=Auth.USER,
    body=SeatRecommendationsIn,
)
async def recommend_seats(call: Call) -> Any:
    body: SeatRecommendationsIn = call.body
    return await seat_recommendations.recommend_seats(
        call.hub,
        call.user,
        body.event_id,
        body.quantity,
        user_id=body.user_id,
        max_price=None if body.max_price is None else decimal_to_cents(body.max_price),
        preferred_sections=body.preferred_sections,
        accessibility_required=body.accessibility_required,
    )
