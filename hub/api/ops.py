"""Operations routes: liveness, readiness, Prometheus metrics and the OpenAPI document."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from hub import jsonenc, metrics, openapi
from hub.api.routing import PREFIX, Api
from hub.context import Hub

Endpoint = Callable[[Request], Awaitable[Response]]


def ops_routes(api: Api) -> list[BaseRoute]:
    document = openapi.document(api.endpoints, extra_paths=_OPS_PATHS)
    encoded = jsonenc.dumps(document)

    async def openapi_json(request: Request) -> Response:
        request.scope["evently.route"] = f"{PREFIX}/openapi.json"
        return Response(encoded, media_type="application/json")

    return [
        Route("/healthz", _tagged("/healthz", healthz), methods=["GET"]),
        Route("/readyz", _tagged("/readyz", readyz), methods=["GET"]),
        Route("/metrics", _tagged("/metrics", metrics_text), methods=["GET"]),
        Route(f"{PREFIX}/openapi.json", openapi_json, methods=["GET"]),
    ]


def _plain_get(summary: str, media: str, codes: tuple[int, ...] = (200,)) -> dict[str, object]:
    return {
        "get": {
            "summary": summary,
            "tags": ["operations"],
            "responses": {
                str(code): {
                    "description": "OK" if code == 200 else "Not ready",
                    "content": {
                        media: {
                            "schema": {"type": "object"}
                            if media.endswith("json")
                            else {"type": "string"}
                        }
                    },
                }
                for code in codes
            },
        }
    }


_OPS_PATHS = {
    "/healthz": _plain_get("The process is alive", "application/json"),
    "/readyz": _plain_get("PostgreSQL and Redis are reachable", "application/json", (200, 503)),
    "/metrics": _plain_get("Prometheus metrics", "text/plain"),
}


def _tagged(path: str, endpoint: Endpoint) -> Endpoint:
    async def tagged(request: Request) -> Response:
        request.scope["evently.route"] = path
        return await endpoint(request)

    return tagged


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    hub: Hub = request.app.state.hub
    checks: dict[str, object] = {}

    async def check(name: str, probe: Callable[[], Awaitable[float]]) -> None:
        try:
            checks[name] = {"ok": True, "ms": round(await asyncio.wait_for(probe(), 2.0), 2)}
        except Exception as exc:  # any failure means "not ready"; say which
            checks[name] = {"ok": False, "error": type(exc).__name__}

    await asyncio.gather(check("postgres", hub.db.ping), check("redis", hub.store.ping))
    ready = all(c["ok"] for c in checks.values())  # type: ignore[index]
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks}, 200 if ready else 503
    )


async def metrics_text(request: Request) -> Response:
    hub: Hub = request.app.state.hub
    stats = hub.db.stats()
    metrics.DB_POOL.labels("size").set(stats["size"])
    metrics.DB_POOL.labels("idle").set(stats["idle"])
    body, content_type = metrics.render(hub.settings.metrics_dir)
    return Response(body, media_type=content_type)
