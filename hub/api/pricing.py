"""Routes: dynamic pricing on demand (admin) and an event's price history (public)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, StringConstraints

from hub.api.routing import Api, Auth, Call, Doc, JSONBytes
from hub.api.schemas import Page
from hub.api.venues import PageQuery
from hub.services import pricing

api = Api(tag="pricing")


class FactorsOut(BaseModel):
    demand: float
    time: float
    velocity: float
    waitlist: float


class SectionQuoteOut(BaseModel):
    section: str
    old_price: Decimal
    new_price: Decimal
    applied: bool
    factors: FactorsOut


class EventQuoteOut(BaseModel):
    event_id: uuid.UUID
    sections: list[SectionQuoteOut]


class PricingOut(BaseModel):
    events: list[EventQuoteOut]


class PriceChangeOut(BaseModel):
    section: str
    old_price: Decimal
    new_price: Decimal
    factors: FactorsOut
    created_at: str


class PriceHistoryPage(Page):
    items: list[PriceChangeOut]


class HistoryQuery(PageQuery):
    section: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    date_from: AwareDatetime | None = None
    date_to: AwareDatetime | None = None


@api.route(
    "POST",
    "/advanced/pricing/update/{event_id}",
    Doc("Reprice one event now", response=PricingOut, errors=(404, 409)),
    auth=Auth.ADMIN,
)
async def update_event(call: Call) -> Any:
    return {"events": await pricing.update_event(call.hub, call.path["event_id"])}


@api.route(
    "POST",
    "/advanced/pricing/update-all",
    Doc("Reprice every on-sale event now", response=PricingOut),
    auth=Auth.ADMIN,
)
async def update_all(call: Call) -> Any:
    return JSONBytes(await pricing.reprice_all(call.hub))


@api.route(
    "GET",
    "/events/{event_id}/prices/history",
    Doc(
        "The event's applied price changes, oldest first",
        response=PriceHistoryPage,
        errors=(404, 422),
    ),
    query=HistoryQuery,
)
async def price_history(call: Call) -> Any:
    query: HistoryQuery = call.query
    filters = pricing.HistoryFilters(
        section=query.section, date_from=query.date_from, date_to=query.date_to
    )
    return await pricing.price_history(
        call.hub, call.path["event_id"], filters, page=query.page, size=query.size
    )
