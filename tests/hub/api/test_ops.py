from __future__ import annotations

import httpx


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["postgres"]["ok"] and ready.json()["checks"]["redis"]["ok"]


async def test_metrics_show_requests_by_route_template(client: httpx.AsyncClient) -> None:
    await client.get("/api/v1/users/me")
    text = (await client.get("/metrics")).text
    assert 'route="/api/v1/users/me"' in text
    assert 'evently_http_errors_total{code="unauthorized"}' in text
    assert "evently_http_request_duration_seconds_bucket" in text


async def test_unknown_route_is_problem_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"


async def test_openapi_describes_routes(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/api/v1/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    register = doc["paths"]["/api/v1/auth/register"]["post"]
    assert "requestBody" in register and "201" in register["responses"]
