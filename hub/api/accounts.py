"""Routes: register, login, logout (this token or all), users/me, password, roles."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints

from hub import ratelimit
from hub.api.inputs import Input
from hub.api.routing import Api, Auth, Call, Doc
from hub.api.schemas import SessionOut, UserOut
from hub.services import accounts
from hub.tokens import Role

api = Api(tag="accounts")

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


class PasswordIn(Input):
    current_password: Annotated[str, Field(min_length=1, max_length=128)]
    new_password: Annotated[str, Field(min_length=8, max_length=128)]


class RoleIn(Input):
    role: Role


@api.route(
    "POST",
    "/auth/register",
    Doc("Create an account", response=SessionOut, errors=(409, 422)),
    body=RegisterIn,
    status=201,
    limit=ratelimit.REGISTRATIONS,
)
async def register(call: Call) -> Any:
    body: RegisterIn = call.body
    return await accounts.register(call.hub, body.email, body.password, body.name)


@api.route(
    "POST",
    "/auth/login",
    Doc("Log in", response=SessionOut, errors=(401, 422)),
    body=LoginIn,
    limit=ratelimit.SIGN_IN,
)
async def login(call: Call) -> Any:
    body: LoginIn = call.body
    return await accounts.login(call.hub, body.email, body.password)


@api.route(
    "POST",
    "/auth/logout",
    Doc("Revoke the token used for this call", errors=(401,)),
    auth=Auth.USER,
    status=204,
)
async def logout(call: Call) -> Any:
    await accounts.logout(call.hub, call.user)


@api.route(
    "POST",
    "/auth/logout-all",
    Doc("Revoke every token of the caller", errors=(401,)),
    auth=Auth.USER,
    status=204,
)
async def logout_all(call: Call) -> Any:
    await accounts.logout_all(call.hub, call.user)


@api.route(
    "POST",
    "/users/me/password",
    Doc(
        "Change the caller's password; every token issued before is revoked",
        errors=(401, 422, 429),
    ),
    auth=Auth.USER,
    body=PasswordIn,
    status=204,
)
async def change_password(call: Call) -> Any:
    body: PasswordIn = call.body
    await accounts.change_password(call.hub, call.user, body.current_password, body.new_password)


@api.route(
    "PATCH",
    "/users/{user_id}",
    Doc(
        "Change an account's role (admin); it applies from that account's next request",
        response=UserOut,
        errors=(401, 403, 404, 422),
    ),
    auth=Auth.ADMIN,
    body=RoleIn,
)
async def set_role(call: Call) -> Any:
    body: RoleIn = call.body
    return await accounts.set_role(call.hub, call.path["user_id"], body.role)


@api.route(
    "GET",
    "/users/me",
    Doc("The caller's account", response=UserOut, errors=(401,)),
    auth=Auth.USER,
)
async def me(call: Call) -> Any:
    return await accounts.me(call.hub, call.user.user_id)
