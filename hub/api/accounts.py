"""Routes: register, login, logout, users/me."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints

from hub import ratelimit
from hub.api.inputs import Input
from hub.api.routing import Api, Auth, Call
from hub.api.schemas import SessionOut, UserOut
from hub.services import accounts

api = Api()

Email = Annotated[
    str,
    StringConstraints(
        min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", to_lower=True
    ),
]


class RegisterIn(Input):
    email: Email
    password: Annotated[str, Field(min_length=8, max_length=128)]
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]


class LoginIn(Input):
    email: Email
    password: Annotated[str, Field(min_length=1, max_length=128)]


@api.route(
    "POST",
    "/auth/register",
    limit=ratelimit.AUTH,
    summary="Create an account",
    body=RegisterIn,
    response=SessionOut,
    status=201,
    errors=(409, 422),
    tag="accounts",
)
async def register(call: Call) -> Any:
    body: RegisterIn = call.body
    return await accounts.register(call.hub, body.email, body.password, body.name)


@api.route(
    "POST",
    "/auth/login",
    limit=ratelimit.AUTH,
    summary="Log in",
    body=LoginIn,
    response=SessionOut,
    errors=(401, 422),
    tag="accounts",
)
async def login(call: Call) -> Any:
    body: LoginIn = call.body
    return await accounts.login(call.hub, body.email, body.password)


@api.route(
    "POST",
    "/auth/logout",
    summary="Revoke the token used for this call",
    auth=Auth.USER,
    status=204,
    errors=(401,),
    tag="accounts",
)
async def logout(call: Call) -> Any:
    await accounts.logout(call.hub, call.user)


@api.route(
    "GET",
    "/users/me",
    summary="The caller's account",
    auth=Auth.USER,
    response=UserOut,
    errors=(401,),
    tag="accounts",
)
async def me(call: Call) -> Any:
    return await accounts.me(call.hub, call.user.user_id)
