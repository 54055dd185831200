"""The ceiling: the least a hold endpoint can do, run the way the hub runs (DESIGN §7).

Two routes that do only the irreducible work of a hold and of its release: check the bearer
JWT (HS256, the hub's secret, so the buyers' real tokens work), parse the JSON body, and
make ONE Redis ``EVALSHA`` of a small script (``lua/ceiling_*.lua``):

- ``POST /api/v1/events/{event_id}/holds``: check the seats free, mark them held by the
  hold, store the hold (owner and seats) with a TTL, bump the sequence number, publish —
  then 201 with a small JSON body (409 when a seat is taken).
- ``DELETE /api/v1/holds/{hold_id}``: the owner's release — free the seats the hold still
  holds, drop it, bump the sequence number, publish — then 204 (404 when there is no such
  hold or it is another user's). The ceiling's hold id is ``<event_id>.<uuid>``: it names
  its event, so the release script gets every key it touches declared without a lookup
  (the hub keeps a hold index for that; a bare endpoint needs none).
- ``GET /api/v1/events/{event_id}``: the ceiling of a read (``bench-reads``) — fixed bytes
  and a content type the bench stored beforehand (``set_read_body``: the hub's own answer
  for one event), read from Redis once per worker at startup and returned as they are, with
  no token check (the hub's route is public), no lookup and no encoding (404 when the bench
  stored none). Same path as the hub's, so both get the very same request bytes.

It serves with the HTTP
options the hub runs with (``server_options``: uvloop, httptools, no access log, the same
backlog; a test keeps them equal to ``evently serve``'s) and the same worker count, so the
surge report can state the hub's hold throughput as a fraction of what this bare path
reaches on the same machine with the same clients.

``{"quantity": n}`` picks ``n`` random seats out of ten million, so the ceiling never sells
out during a run; ``{"seat_ids": [...]}`` uses the given ids.

Run as ``python -m loadtest.ceiling --port P --workers N``; Redis, key prefix and secret
come from ``EVENTLY_REDIS_URL``, ``EVENTLY_REDIS_PREFIX`` (a ``ceiling:`` suffix is added)
and ``EVENTLY_SECRET_KEY`` through the hub's settings, like a hub worker reads them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import uuid
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.settings import Settings
from hub.store import Store

SEAT_SPACE = 10_000_000
READ_KEY = "read"  # under the ceiling's prefix: a hash of the read route's body and type


def _script(name: str) -> str:
    return resources.files(__package__).joinpath("lua", f"{name}.lua").read_text("utf-8")


HOLD_SCRIPT = _script("ceiling_hold")
RELEASE_SCRIPT = _script("ceiling_release")


def _problem(status: int, code: str) -> Response:
    body = json.dumps({"status": status, "code": code, "title": code}).encode()
    return Response(body, status, media_type="application/problem+json")


def create() -> Starlette:
    """The ceiling app (a uvicorn factory); reads the hub's settings from the environment."""
    settings = Settings.from_environ()
    assert settings.redis_url and settings.secret_key, "EVENTLY_REDIS_URL and SECRET_KEY needed"
    secret = settings.secret_key
    prefix = settings.redis_prefix + "ceiling:"
    ttl_ms = str(settings.hold_ttl_seconds * 1000)
    state: dict[str, Any] = {}

    def user_of(request: Request) -> str | None:
        """The token's subject, or None when the bearer token is missing or invalid."""
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return None
        try:
            claims = jwt.decode(auth[7:], secret, algorithms=["HS256"])
        except jwt.PyJWTError:
            return None
        return str(claims.get("sub", ""))

    def keys_of(event: str, hold_id: str) -> list[str]:
        tag = f"{prefix}ev:{{{event}}}:"
        return [tag + "seats", tag + "seq", tag + "hold:" + hold_id, tag + "ch"]

    async def hold(request: Request) -> Response:
        user = user_of(request)
        if user is None:
            return _problem(401, "unauthorized")
        try:
            body = json.loads(await request.body())
            if "seat_ids" in body:
                seats = [str(s) for s in body["seat_ids"]]
            else:
                seats = [str(random.randrange(SEAT_SPACE)) for _ in range(int(body["quantity"]))]
        except (ValueError, KeyError, TypeError):
            return _problem(422, "validation_error")
        event = request.path_params["event_id"]
        hold_id = f"{event}.{uuid.uuid4()}"
        keys = keys_of(event, hold_id)
        client = state["store"].client
        result = await client.evalsha(
            state["hold"], len(keys), *keys, hold_id, ttl_ms, user, *seats
        )
        if int(result[0]) != 1:
            return _problem(409, "seat_unavailable")
        out = {"hold_id": hold_id, "event_id": event, "seats": seats, "seq": int(result[1])}
        return Response(json.dumps(out).encode(), 201, media_type="application/json")

    async def release(request: Request) -> Response:
        user = user_of(request)
        if user is None:
            return _problem(401, "unauthorized")
        hold_id = request.path_params["hold_id"]
        event, dot, _ = hold_id.rpartition(".")
        if not dot:
            return _problem(404, "not_found")
        keys = keys_of(event, hold_id)
        client = state["store"].client
        if int(await client.evalsha(state["release"], len(keys), *keys, hold_id, user)) != 1:
            return _problem(404, "not_found")
        return Response(status_code=204)

    async def read(request: Request) -> Response:
        body: bytes | None = state["read_body"]
        if body is None:
            return _problem(404, "not_found")
        return Response(body, 200, media_type=state["read_type"])

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        assert settings.redis_url
        store = Store.connect(
            settings.redis_url, prefix=prefix, max_connections=settings.redis_pool_max
        )
        state["store"] = store
        state["hold"] = await store.client.script_load(HOLD_SCRIPT)
        state["release"] = await store.client.script_load(RELEASE_SCRIPT)
        # Once per worker: the read route then answers from memory, as a bare handler would.
        body, content_type = await store.client.hmget(prefix + READ_KEY, ["body", "content_type"])
        state["read_body"] = body
        # The client decodes nothing (bytes), whatever redis-py's types allow.
        state["read_type"] = (
            content_type.decode() if isinstance(content_type, bytes) else content_type
        )
        try:
            yield
        finally:
            await store.close()

    return Starlette(
        routes=[
            Route("/api/v1/events/{event_id}/holds", hold, methods=["POST"]),
            Route("/api/v1/holds/{hold_id}", release, methods=["DELETE"]),
            Route("/api/v1/events/{event_id}", read, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


async def set_read_body(redis_url: str, redis_prefix: str, body: bytes, content_type: str) -> None:
    """Store what the read route answers; ceiling workers started afterwards serve it."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    try:
        key = f"{redis_prefix}ceiling:{READ_KEY}"
        await client.hset(key, mapping={"body": body, "content_type": content_type})
    finally:
        await client.aclose()


async def clear(redis_url: str, redis_prefix: str) -> int:
    """Delete the ceiling's keys (``<prefix>ceiling:*``); returns how many went."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    removed = 0
    try:
        async for key in client.scan_iter(match=f"{redis_prefix}ceiling:*", count=1000):
            removed += await client.delete(key)
    finally:
        await client.aclose()
    return removed


def server_options(host: str, port: int, workers: int) -> dict[str, Any]:
    """uvicorn options: the hub's HTTP serving options (``evently serve``), no WebSocket.

    Written out here rather than imported: the load test may use only the hub's faces
    named in DESIGN §2, and the CLI is not one of them.
    """
    return {
        "host": host,
        "port": port,
        "workers": workers,
        "factory": True,
        "loop": "uvloop",
        "http": "httptools",
        "ws": "none",  # one HTTP route: nothing to upgrade
        "lifespan": "on",
        "log_level": "warning",
        "access_log": False,
        "proxy_headers": False,
        "timeout_graceful_shutdown": 5,
        "backlog": 4096,
    }


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m loadtest.ceiling")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    uvicorn.run("loadtest.ceiling:create", **server_options(args.host, args.port, args.workers))


if __name__ == "__main__":
    main()
