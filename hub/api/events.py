"""Routes: create, update, read and list events; an event's seat map."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from engines.money import decimal_to_cents
from hub.api.inputs import Input, omit_not_null
from hub.api.routing import Api, Auth, Call, Doc, JSONBytes
from hub.api.schemas import EventOut, EventPage, SeatMapOut
from hub.api.venues import Name, PageQuery, Price, SectionName
from hub.services import cancellation, events

api = Api(tag="events")

Category = Annotated[str, StringConstraints(min_length=1, max_length=50)]
Keyword = Annotated[str, StringConstraints(min_length=1, max_length=50)]
Description = Annotated[str, StringConstraints(max_length=5000)]
Keywords = Annotated[list[Keyword], Field(max_length=30)]
SectionPrices = Annotated[dict[SectionName, Price], Field(max_length=50)]
MaxTickets = Annotated[int, Field(ge=1, le=1000)]


class EventIn(Input):
    name: Name
    description: Description = ""
    category: Category
    keywords: Keywords = []
    venue_id: uuid.UUID
    starts_at: Annotated[AwareDatetime, Field(description="With a time zone; in the future")]
    section_prices: SectionPrices = {}
    max_tickets_per_user: MaxTickets | None = None


class EventPatch(Input):
    """The fields to change; a field left out is kept, and none of them may be null."""

    model_config = ConfigDict(json_schema_extra=omit_not_null)

    name: Name | None = None
    description: Description | None = None
    category: Category | None = None
    keywords: Keywords | None = None
    starts_at: (
        Annotated[AwareDatetime, Field(description="With a time zone; in the future")] | None
    ) = None
    max_tickets_per_user: MaxTickets | None = None
    section_prices: SectionPrices | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> EventPatch:
        # Leaving a field out keeps it; null is not a value any of them can take.
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} may be left out but not null")
        return self


class EventsQuery(PageQuery):
    search: Annotated[str, StringConstraints(max_length=100)] | None = None
    category: Annotated[str, StringConstraints(max_length=50)] | None = None
    date_from: dt.datetime | dt.date | None = None
    date_to: dt.datetime | dt.date | None = None
    min_price: Price | None = None
    max_price: Price | None = None
    available_only: bool = False

    @field_validator("date_from", "date_to", mode="before")
    @classmethod
    def _plain_date(cls, value: Any) -> Any:
        # "2031-03-20" is a day, not midnight of an unknown timezone.
        if isinstance(value, str) and len(value) == 10:
            return dt.date.fromisoformat(value)
        return value

    @field_validator("date_from", "date_to", mode="after")
    @classmethod
    def _aware(cls, value: dt.datetime | dt.date | None) -> dt.datetime | dt.date | None:
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            raise ValueError("give a timezone (e.g. 2030-01-01T20:00:00Z) or a plain date")
        return value


@api.route(
    "POST",
    "/events",
    Doc("Create an event", response=EventOut, errors=(401, 403, 422)),
    auth=Auth.ADMIN,
    body=EventIn,
    status=201,
)
async def create_event(call: Call) -> Any:
    body: EventIn = call.body
    new = events.NewEvent(
        name=body.name,
        description=body.description,
        category=body.category,
        keywords=body.keywords,
        venue_id=body.venue_id,
        starts_at=body.starts_at,
        section_prices={k: decimal_to_cents(v) for k, v in body.section_prices.items()},
        max_tickets_per_user=body.max_tickets_per_user,
    )
    return await events.create_event(call.hub, new)


@api.route(
    "PATCH",
    "/events/{event_id}",
    Doc(
        "Change an event's details or section prices",
        response=EventOut,
        errors=(401, 403, 404, 409, 422),
    ),
    auth=Auth.ADMIN,
    body=EventPatch,
)
async def update_event(call: Call) -> Any:
    body: EventPatch = call.body
    changes = {
        name: getattr(body, name) for name in sorted(body.model_fields_set - {"section_prices"})
    }
    prices = {k: decimal_to_cents(v) for k, v in (body.section_prices or {}).items()}
    return await events.update_event(call.hub, call.path["event_id"], changes, prices)


@api.route(
    "GET",
    "/events",
    Doc("Search and list events, upcoming first", response=EventPage, errors=(422,)),
    query=EventsQuery,
)
async def list_events(call: Call) -> Any:
    query: EventsQuery = call.query
    filters = events.Filters(
        search=query.search or None,
        category=query.category or None,
        date_from=_moment(query.date_from, end_of_day=False),
        date_to=_moment(query.date_to, end_of_day=True),
        min_cents=None if query.min_price is None else decimal_to_cents(query.min_price),
        max_cents=None if query.max_price is None else decimal_to_cents(query.max_price),
    )
    return await events.list_events(
        call.hub, filters, available_only=query.available_only, page=query.page, size=query.size
    )


def _moment(value: dt.datetime | dt.date | None, *, end_of_day: bool) -> dt.datetime | None:
    """A plain date covers the whole UTC day: from its start, or up to its end."""
    if value is None or isinstance(value, dt.datetime):
        return value
    start = dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC)
    return start + dt.timedelta(days=1, microseconds=-1) if end_of_day else start


@api.route(
    "GET",
    "/events/{event_id}",
    Doc("One event with prices and availability", response=EventOut, errors=(404,)),
)
async def get_event(call: Call) -> Any:
    return await events.get_event(call.hub, call.path["event_id"])


@api.route(
    "GET",
    "/events/{event_id}/seats",
    Doc(
        "Every seat of the event with its current price and status, in seat order",
        response=SeatMapOut,
        errors=(404,),
    ),
)
async def event_seats(call: Call) -> Any:
    return JSONBytes(await events.seat_map(call.hub, call.path["event_id"]))


@api.route(
    "POST",
    "/events/{event_id}/cancel",
    Doc(
        "Cancel the event: bookings refunded, holds released, waitlist closed, all told",
        response=EventOut,
        errors=(404, 409),
    ),
    auth=Auth.ADMIN,
)
async def cancel_event(call: Call) -> Any:
    return await cancellation.cancel_event(call.hub, call.path["event_id"])
