"""Routes: discount codes, for admins — create, list with use counts, disable."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, Field, StringConstraints

from engines.money import decimal_to_cents
from hub.api.inputs import Input, decimal_schema
from hub.api.routing import Api, Auth, Call, Doc
from hub.services import discounts
from hub.services.discounts import NewCode

api = Api(tag="discount-codes")

CodeName = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
]


def _two_places(value: Decimal) -> Decimal:
    decimal_to_cents(value)  # raises ValueError past the second decimal place
    return value


# A JSON number or string, more than 0 and at most 100, at most two decimal places.
Percent = Annotated[
    Decimal, Field(gt=0, le=100), AfterValidator(_two_places), decimal_schema(100, positive=True)
]


class DiscountCodeIn(Input):
    code: CodeName
    percent: Percent
    max_uses: Annotated[int, Field(ge=1, le=1_000_000_000)]
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None
    event_id: uuid.UUID | None = None


class DiscountCodeOut(BaseModel):
    code: str
    percent: Decimal
    max_uses: int
    uses: int
    valid_from: str | None
    valid_until: str | None
    event_id: uuid.UUID | None
    active: bool
    created_at: str


class DiscountCodeList(BaseModel):
    items: list[DiscountCodeOut]


@api.route(
    "POST",
    "/discount-codes",
    Doc("Create a discount code (admin)", response=DiscountCodeOut, errors=(401, 403, 409, 422)),
    auth=Auth.ADMIN,
    body=DiscountCodeIn,
    status=201,
)
async def create_code(call: Call) -> Any:
    body: DiscountCodeIn = call.body
    return await discounts.create_code(
        call.hub,
        NewCode(
            code=body.code,
            percent=body.percent,
            max_uses=body.max_uses,
            valid_from=body.valid_from,
            valid_until=body.valid_until,
            event_id=body.event_id,
        ),
    )


@api.route(
    "GET",
    "/discount-codes",
    Doc(
        "Every discount code with its use count, newest first (admin)",
        response=DiscountCodeList,
        errors=(401, 403),
    ),
    auth=Auth.ADMIN,
)
async def list_codes(call: Call) -> Any:
    return await discounts.list_codes(call.hub)


@api.route(
    "DELETE",
    "/discount-codes/{code}",
    Doc("Disable a discount code (admin)", errors=(401, 403, 404)),
    auth=Auth.ADMIN,
    status=204,
)
async def disable_code(call: Call) -> Any:
    await discounts.disable_code(call.hub, call.path["code"])
