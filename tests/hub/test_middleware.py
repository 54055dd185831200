"""The request middleware: API work in flight is bounded, and the overflow is answered with
a problem+json 503 rendered below the API layer."""

from __future__ import annotations

import asyncio

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from hub.middleware import Admission, RequestObserver
from tests.waiting import eventually


def _app(release: asyncio.Event, started: list[str]) -> Starlette:
    async def slow(request: Request) -> Response:
        started.append(request.url.path)
        await release.wait()
        return PlainTextResponse("done")

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[Route("/api/v1/slow", slow), Route("/healthz", health)],
        middleware=[
            Middleware(RequestObserver),
            Middleware(Admission, limit=1, wait_s=0.2),
        ],
    )


async def test_a_request_beyond_the_limit_waits_then_gets_busy() -> None:
    release = asyncio.Event()
    started: list[str] = []
    transport = httpx.ASGITransport(app=_app(release, started))
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        first = asyncio.create_task(client.get("/api/v1/slow"))
        assert await eventually(lambda: started == ["/api/v1/slow"])
        refused = await client.get("/api/v1/slow")
        # Operations routes are never held back, even with every slot taken.
        assert (await client.get("/healthz")).status_code == 200
        release.set()
        assert (await first).text == "done"
    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["code"] == "busy"
    assert refused.json()["instance"] == "/api/v1/slow"
    assert refused.headers["x-request-id"]
    assert started == ["/api/v1/slow"]
