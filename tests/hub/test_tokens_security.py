"""Bearer tokens under attack and after the account moves on: forged, mangled, expired and
future tokens are refused; logout, logout-all and a password change revoke; a role change
applies from the account's next request, in every process."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest

from hub import auth
from hub.app import create_app
from hub.context import AppHub, Hub
from hub.settings import Settings
from hub.tokens import PLAIN, Accounts, Role, Standing
from tests.conftest import SECRET, Account, register

ME = "/api/v1/users/me"
ADMIN_ROUTE = "/api/v1/discount-codes"  # GET: admin only, changes nothing


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _claims(user: Account, **override: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": user.id,
        "role": "user",
        "iat": now,
        "exp": now + 600,
        "jti": str(uuid.uuid4()),
    }
    claims.update(override)
    return claims


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signed(claims: dict[str, Any], key: bytes) -> str:
    """An HS256 token made by hand (PyJWT refuses some keys a forger would try)."""
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    mac = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(mac)}"


@pytest.fixture(scope="module")
async def other_process(settings: Settings) -> AsyncIterator[tuple[AppHub, httpx.AsyncClient]]:
    """A second serving hub on the same servers, with its own feed and caches."""
    app = create_app(settings, leader_loops=())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://other") as client:
            yield app.state.hub, client


async def _status(client: httpx.AsyncClient, token: str, path: str = ME) -> int:
    return (await client.get(path, headers=_bearer(token))).status_code


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_the_key_and_algorithm_are_pinned(client: httpx.AsyncClient, user: Account) -> None:
    good = jwt.encode(_claims(user), SECRET, "HS256")
    assert await _status(client, good) == 200  # the control: the same claims, signed right
    assert await _status(client, _signed(_claims(user), SECRET.encode())) == 200
    forged = {
        "alg=none": jwt.encode(_claims(user, role="admin"), None, algorithm="none"),
        "alg=none, signature kept": jwt.encode(_claims(user), None, algorithm="none")
        + good.rsplit(".", 1)[1],
        "HS512, the right key": jwt.encode(_claims(user), SECRET, "HS512"),
        "HS384, the right key": jwt.encode(_claims(user), SECRET, "HS384"),
        "a wrong key": jwt.encode(
            _claims(user), "another-secret-key-long-enough-for-hs256", "HS256"
        ),
        "an empty key": _signed(_claims(user), b""),
    }
    for what, token in forged.items():
        response = await client.get(ME, headers=_bearer(token))
        assert response.status_code == 401, what
        assert response.json()["code"] == "unauthorized", what


async def test_tampered_claims_break_the_signature(
    client: httpx.AsyncClient, admin: Account, user: Account
) -> None:
    header, payload, signature = user.token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    for change in ({"role": "admin"}, {"sub": admin.id}, {"exp": claims["exp"] + 86_400}):
        tampered = f"{header}.{_b64(json.dumps({**claims, **change}).encode())}.{signature}"
        assert await _status(client, tampered, ADMIN_ROUTE) == 401, change
    assert await _status(client, user.token) == 200


async def test_expired_future_and_incomplete_tokens_are_refused(
    client: httpx.AsyncClient, user: Account
) -> None:
    now = int(time.time())
    cases = {
        "expired": _claims(user, iat=now - 120, exp=now - 60),
        "iat an hour ahead": _claims(user, iat=now + 3600, exp=now + 7200),
        "no jti": {k: v for k, v in _claims(user).items() if k != "jti"},
        "no exp": {k: v for k, v in _claims(user).items() if k != "exp"},
        "role unknown": _claims(user, role="root"),
        "sub not a uuid": _claims(user, sub="admin"),
    }
    for what, claims in cases.items():
        response = await client.get(ME, headers=_bearer(jwt.encode(claims, SECRET, "HS256")))
        assert response.status_code == 401, what
    # A clock a second or two ahead (another host) is tolerated.
    slightly = jwt.encode(_claims(user, iat=now + 2), SECRET, "HS256")
    assert await _status(client, slightly) == 200


async def test_logout_revokes_that_token_in_every_process(
    client: httpx.AsyncClient, other_process: tuple[AppHub, httpx.AsyncClient]
) -> None:
    _, other = other_process
    account = await register(client)
    second = await _login(client, account)
    assert (await client.post("/api/v1/auth/logout", headers=account.headers)).status_code == 204
    assert await _status(other, account.token) == 401
    assert await _status(other, second) == 200  # only that token


async def _login(client: httpx.AsyncClient, account: Account, password: str | None = None) -> str:
    body = {"email": account.email, "password": password or account.password}
    response = await client.post("/api/v1/auth/login", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def test_logout_all_revokes_every_token_of_the_caller_only(
    client: httpx.AsyncClient,
    other_user: Account,
    other_process: tuple[AppHub, httpx.AsyncClient],
) -> None:
    other_hub, other = other_process
    account = await register(client)
    tokens = [account.token, await _login(client, account), await _login(other, account)]
    for token in tokens:
        assert await _status(other, token) == 200
    out = await other.post("/api/v1/auth/logout-all", headers=_bearer(tokens[1]))
    assert out.status_code == 204, out.text
    assert other_hub.accounts.live  # the other process knew without asking PostgreSQL
    for token in tokens:
        for c in (client, other):
            refused = await c.get(ME, headers=_bearer(token))
            assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"
    assert await _status(client, other_user.token) == 200  # nobody else's
    fresh = await _login(client, account)  # at once, in the same second
    assert await _status(client, fresh) == 200
    assert await _status(other, fresh) == 200


async def test_a_password_change_revokes_older_tokens(
    client: httpx.AsyncClient, other_process: tuple[AppHub, httpx.AsyncClient]
) -> None:
    _, other = other_process
    account = await register(client)
    older = await _login(client, account)
    path = "/api/v1/users/me/password"
    wrong = await client.post(
        path,
        json={"current_password": "not it at all", "new_password": "a brand new password"},
        headers=account.headers,
    )
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "current_password"
    short = await client.post(
        path,
        json={"current_password": account.password, "new_password": "short"},
        headers=account.headers,
    )
    assert short.status_code == 422 and short.json()["errors"][0]["field"] == "new_password"
    assert await _status(client, account.token) == 200  # nothing changed by bad input
    changed = await client.post(
        path,
        json={"current_password": account.password, "new_password": "a brand new password"},
        headers=account.headers,
    )
    assert changed.status_code == 204, changed.text
    for token in (account.token, older):
        assert await _status(client, token) == 401
        assert await _status(other, token) == 401
    old = {"email": account.email, "password": account.password}
    assert (await client.post("/api/v1/auth/login", json=old)).status_code == 401
    fresh = await _login(other, account, "a brand new password")
    assert await _status(client, fresh) == 200


async def test_a_role_change_applies_from_the_next_request_in_every_process(
    client: httpx.AsyncClient,
    admin: Account,
    other_process: tuple[AppHub, httpx.AsyncClient],
) -> None:
    _, other = other_process
    account = await register(client)
    assert await _status(other, account.token, ADMIN_ROUTE) == 403
    path = f"/api/v1/users/{account.id}"
    promoted = await client.patch(path, json={"role": "admin"}, headers=admin.headers)
    assert promoted.status_code == 200, promoted.text
    assert promoted.json() == {
        "id": account.id,
        "email": account.email,
        "name": "Test User",
        "role": "admin",
    }
    # The token still says "user"; the account is an admin now, everywhere.
    assert await _status(other, account.token, ADMIN_ROUTE) == 200
    admin_token = await _login(client, account)  # this one says "admin"
    assert jwt.decode(admin_token, options={"verify_signature": False})["role"] == "admin"
    demoted = await other.patch(path, json={"role": "user"}, headers=admin.headers)
    assert demoted.status_code == 200 and demoted.json()["role"] == "user"
    for c in (client, other):
        refused = await c.get(ADMIN_ROUTE, headers=_bearer(admin_token))
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
        assert await _status(c, admin_token) == 200  # still signed in, as a user
    # A demoted admin cannot promote itself back.
    again = await client.patch(path, json={"role": "admin"}, headers=_bearer(admin_token))
    assert again.status_code == 403


async def test_role_changes_need_an_admin_and_a_valid_body(
    client: httpx.AsyncClient, admin: Account, user: Account
) -> None:
    path = f"/api/v1/users/{user.id}"
    assert (await client.patch(path, json={"role": "admin"})).status_code == 401
    by_user = await client.patch(path, json={"role": "admin"}, headers=user.headers)
    assert by_user.status_code == 403
    for body, field in (({"role": "root"}, "role"), ({}, "role"), ({"role": "user", "x": 1}, "x")):
        bad = await client.patch(path, json=body, headers=admin.headers)
        assert bad.status_code == 422, body
        assert field in json.dumps(bad.json()["errors"]), body
    missing = await client.patch(
        f"/api/v1/users/{uuid.uuid4()}", json={"role": "user"}, headers=admin.headers
    )
    assert missing.status_code == 404
    assert (await client.get(ME, headers=user.headers)).json()["role"] == "user"


async def test_without_a_live_feed_the_standing_comes_from_postgresql(
    hub: Hub, client: httpx.AsyncClient, admin: Account
) -> None:
    account = await register(client)
    promoted = await client.patch(
        f"/api/v1/users/{account.id}", json={"role": "admin"}, headers=admin.headers
    )
    assert promoted.status_code == 200
    hub.accounts.live = False  # as while the feed's link is down
    try:
        principal = await auth.principal_from_token(hub, account.token)
        assert principal.role is Role.ADMIN
        out = await client.post("/api/v1/auth/logout-all", headers=account.headers)
        assert out.status_code == 204
        assert await _status(client, account.token) == 401
    finally:
        hub.accounts.live = True


def test_the_accounts_set_answers_only_while_live() -> None:
    accounts = Accounts()
    someone, admin = uuid.uuid4(), uuid.uuid4()
    assert accounts.standing(someone) is None  # not live: the caller asks PostgreSQL
    accounts.replace({admin: Standing(Role.ADMIN), someone: PLAIN})
    assert accounts.standing(admin) == Standing(Role.ADMIN)
    assert accounts.standing(someone) is PLAIN and len(accounts) == 1
    accounts.set(admin, Standing(Role.USER, tokens_after=100.0))
    assert accounts.standing(admin) == Standing(Role.USER, 100.0)
    accounts.set(admin, PLAIN)
    assert len(accounts) == 0
    accounts.live = False
    assert accounts.standing(admin) is None
