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


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    code: str


class Money(BaseModel):
    amount: Decimal
