"""Response shapes shared by several endpoints (for the OpenAPI document).

Handlers return plain data for speed; these models describe it. Tests check the real
responses against the contract, so a drift between the two shows up there.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from pydantic import BaseModel


class Page(BaseModel):
    page: int
    size: int
    total: int


class UserOut(BaseModel):
    id: uuid.UUID
    email: str
    name: str
    role: str


class SessionOut(BaseModel):
    access_token: str
    token_type: str
    expires_in: int
    user: UserOut


class Money(BaseModel):
    amount: Decimal


class VenueSectionOut(BaseModel):
    name: str
    rows: int
    seats: int
    base_price: Decimal | None
    accessible: int


class VenueOut(BaseModel):
    id: uuid.UUID
    name: str
    city: str
    capacity: int
    sections: list[VenueSectionOut]


class VenuePage(Page):
    items: list[VenueOut]


class AvailabilityOut(BaseModel):
    total: int
    available: int
    held: int
    sold: int


class EventOut(BaseModel):
    id: uuid.UUID
    name: str
    description: str
    category: str
    keywords: list[str]
    venue_id: uuid.UUID
    starts_at: str
    status: str
    max_tickets_per_user: int
    base_prices: dict[str, Decimal]
    prices: dict[str, Decimal]
    availability: AvailabilityOut


class EventPage(Page):
    items: list[EventOut]


class SeatOut(BaseModel):
    id: uuid.UUID
    section: str
    row: str
    number: int
    x: float
    y: float
    accessible: bool
    price: Decimal
    status: str


class SeatMapOut(BaseModel):
    seq: int
    seats: list[SeatOut]
