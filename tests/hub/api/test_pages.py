"""The page routes: the right file, the security headers, and a bounded metrics label."""

from __future__ import annotations

import uuid

import httpx

from hub.api.pages import CONTENT_SECURITY_POLICY


async def test_event_list_page_is_served_with_a_strict_csp(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert '<script type="module" src="/static/js/home.js">' in response.text
    # No inline script anywhere: the CSP would block it.
    assert response.text.count("<script") == response.text.count('<script type="module" src=')


async def test_seat_map_page_for_any_event_id_and_metrics_by_template(
    client: httpx.AsyncClient,
) -> None:
    ids = [str(uuid.uuid4()) for _ in range(2)]
    for event_id in ids:
        response = await client.get(f"/events/{event_id}")
        assert response.status_code == 200
        assert '<canvas id="seatmap"' in response.text
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    metrics = (await client.get("/metrics")).text
    assert 'route="/events/{event_id}"' in metrics
    assert not any(event_id in metrics for event_id in ids)


async def test_page_scripts_and_styles_are_served(client: httpx.AsyncClient) -> None:
    for path in ("/static/js/app.js", "/static/js/msgpack.js", "/static/css/app.css"):
        response = await client.get(path)
        assert response.status_code == 200, path
