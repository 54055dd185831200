"""Routes: create, read and list venues."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints

from engines.money import decimal_to_cents
from hub.api.inputs import Input, QueryInput, decimal_schema
from hub.api.routing import Api, Auth, Call, Doc
from hub.api.schemas import VenueOut, VenuePage
from hub.services import venues

api = Api(tag="venues")

MAX_PRICE = Decimal("1000000.00")


def _two_places(value: Decimal) -> Decimal:
    decimal_to_cents(value)  # raises ValueError on a third decimal or a negative amount
    return value


# A price in currency units: a JSON number or string, at most two decimal places.
Price = Annotated[
    Decimal,
    Field(ge=0, le=MAX_PRICE),
    AfterValidator(_two_places),
    decimal_schema(int(MAX_PRICE)),
]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
SectionName = Annotated[str, StringConstraints(min_length=1, max_length=60)]
RowLabel = Annotated[str, StringConstraints(min_length=1, max_length=10)]
Coordinate = Annotated[float, Field(ge=-10_000, le=10_000, allow_inf_nan=False)]


class PageQuery(QueryInput):
    page: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    size: Annotated[int, Field(ge=1, le=100)] = 20


class AccessibleSeatIn(Input):
    row: RowLabel
    number: Annotated[int, Field(ge=1, le=venues.MAX_SEATS_PER_ROW)]


class SectionIn(Input):
    name: SectionName
    rows: Annotated[int, Field(ge=1, le=venues.MAX_ROWS)]
    seats_per_row: Annotated[int, Field(ge=1, le=venues.MAX_SEATS_PER_ROW)]
    base_price: Price | None = None
    accessible_seats: Annotated[list[AccessibleSeatIn], Field(max_length=10_000)] = []


class SeatIn(Input):
    section: SectionName
    row: RowLabel
    number: Annotated[int, Field(ge=1, le=100_000)]
    x: Coordinate
    y: Coordinate
    accessible: bool = False


class VenueIn(Input):
    name: Name
    city: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    sections: (
        Annotated[list[SectionIn], Field(min_length=1, max_length=venues.MAX_SECTIONS)] | None
    ) = None
    seats: Annotated[list[SeatIn], Field(min_length=1, max_length=venues.MAX_SEATS)] | None = None


@api.route(
    "POST",
    "/venues",
    Doc(
        "Create a venue from sections or an explicit seat list",
        response=VenueOut,
        errors=(401, 403, 422),
    ),
    auth=Auth.ADMIN,
    body=VenueIn,
    status=201,
)
async def create_venue(call: Call) -> Any:
    body: VenueIn = call.body
    sections = None
    if body.sections is not None:
        sections = [
            venues.NewSection(
                name=s.name,
                rows=s.rows,
                seats_per_row=s.seats_per_row,
                base_cents=None if s.base_price is None else decimal_to_cents(s.base_price),
                accessible=[(a.row, a.number) for a in s.accessible_seats],
            )
            for s in body.sections
        ]
    seats = None
    if body.seats is not None:
        seats = [
            venues.NewSeat(s.section, s.row, s.number, s.x, s.y, s.accessible) for s in body.seats
        ]
    return await venues.create_venue(call.hub, body.name, body.city, sections=sections, seats=seats)


@api.route(
    "GET",
    "/venues",
    Doc("List venues", response=VenuePage, errors=(422,)),
    query=PageQuery,
)
async def list_venues(call: Call) -> Any:
    query: PageQuery = call.query
    return await venues.list_venues(call.hub, query.page, query.size)


@api.route(
    "GET",
    "/venues/{venue_id}",
    Doc("One venue with its sections", response=VenueOut, errors=(404,)),
)
async def get_venue(call: Call) -> Any:
    return await venues.get_venue(call.hub, call.path["venue_id"])
