"""The page routes: the right file (a 404 page for an unknown event), the security headers,
and a bounded metrics label."""

from __future__ import annotations

import uuid

import httpx
import pytest

from hub.api.pages import CONTENT_SECURITY_POLICY
from tests.conftest import Account
from tests.factories import make_event


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


async def test_seat_map_page_of_an_event_and_metrics_by_template(
    client: httpx.AsyncClient, admin: Account
) -> None:
    event = await make_event(client, admin)
    response = await client.get(f"/events/{event['id']}")
    assert response.status_code == 200
    assert '<canvas id="seatmap"' in response.text
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    missing = [str(uuid.uuid4()) for _ in range(2)]
    for event_id in missing:
        assert (await client.get(f"/events/{event_id}")).status_code == 404
    metrics = (await client.get("/metrics")).text
    assert 'route="/events/{event_id}"' in metrics
    assert not any(event_id in metrics for event_id in [event["id"], *missing])


@pytest.mark.parametrize("event_id", [str(uuid.UUID(int=7)), "not-a-uuid", "%00", "1" * 300])
async def test_an_unknown_event_page_is_a_404_that_says_so(
    client: httpx.AsyncClient, event_id: str
) -> None:
    for method in ("GET", "HEAD"):
        response = await client.request(method, f"/events/{event_id}")
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/html")
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    page = (await client.get(f"/events/{event_id}")).text
    assert "<h1>No such event</h1>" in page
    assert '<a href="/">' in page
    # Nothing of the seat map page: no map, live badge, hold buttons, or its script.
    for part in ('id="seatmap"', 'id="connection"', 'id="hold-selected"', "<script", "<form"):
        assert part not in page, part


async def test_page_scripts_and_styles_are_served(client: httpx.AsyncClient) -> None:
    for path in ("/static/js/app.js", "/static/js/msgpack.js", "/static/css/app.css"):
        response = await client.get(path)
        assert response.status_code == 200, path
