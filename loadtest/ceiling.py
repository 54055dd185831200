"""The ceiling: the least a hold endpoint can do, run the way the hub runs (DESIGN §7).

One route, ``POST /api/v1/events/{event_id}/holds``, that does only the irreducible work of
a hold: check the bearer JWT (HS256, the hub's secret, so the buyers' real tokens work),
parse the JSON body, and make ONE Redis ``EVALSHA`` of a small hold-like script (check the
seats free, mark them held by the hold, store the hold with a TTL, bump the sequence
number, publish a delta) — then answer 201 with a small JSON body. It serves with the HTTP
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
from typing import Any

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.settings import Settings
from hub.store import Store

SEAT_SPACE = 10_000_000

# KEYS: seats hash, seq counter, hold key, channel. ARGV: hold id, ttl ms, seat ids...
HOLD_SCRIPT = """
for i = 3, #ARGV do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then return {0, ARGV[i]} end
end
for i = 3, #ARGV do redis.call('HSET', KEYS[1], ARGV[i], ARGV[1]) end
redis.call('SET', KEYS[3], table.concat(ARGV, ',', 3), 'PX', ARGV[2])
local seq = redis.call('INCRBY', KEYS[2], #ARGV - 2)
redis.call('PUBLISH', KEYS[4], seq)
return {1, seq}
"""


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

    async def hold(request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return _problem(401, "unauthorized")
        try:
            jwt.decode(auth[7:], secret, algorithms=["HS256"])
        except jwt.PyJWTError:
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
        hold_id = str(uuid.uuid4())
        tag = f"{prefix}ev:{{{event}}}:"
        keys = [tag + "seats", tag + "seq", tag + "hold:" + hold_id, tag + "ch"]
        client = state["store"].client
        result = await client.evalsha(state["sha"], len(keys), *keys, hold_id, ttl_ms, *seats)
        if int(result[0]) != 1:
            return _problem(409, "seat_unavailable")
        out = {"hold_id": hold_id, "event_id": event, "seats": seats, "seq": int(result[1])}
        return Response(json.dumps(out).encode(), 201, media_type="application/json")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        assert settings.redis_url
        store = Store.connect(
            settings.redis_url, prefix=prefix, max_connections=settings.redis_pool_max
        )
        state["store"] = store
        state["sha"] = await store.client.script_load(HOLD_SCRIPT)
        try:
            yield
        finally:
            await store.close()

    return Starlette(
        routes=[Route("/api/v1/events/{event_id}/holds", hold, methods=["POST"])],
        lifespan=lifespan,
    )


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
