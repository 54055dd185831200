"""An unknown event's page in headless Chromium: a 404 that says so and leads back home,
with no seat map, no live badge and no hold buttons, and nothing that tries to load the
event or open its live channel."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.static.test_accessibility import audit

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("event_id", [str(uuid.uuid4()), "not-an-event"])
async def test_an_unknown_event_page_says_so_and_offers_the_way_home(
    new_page: Any, event_id: str
) -> None:
    page = await new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    sockets: list[str] = []
    page.on("websocket", lambda socket: sockets.append(socket.url))

    response = await page.goto(f"/events/{event_id}")
    assert response is not None and response.status == 404
    await page.get_by_role("heading", name="No such event").wait_for()
    assert await page.title() == "No such event · Evently"
    for hidden in ("#seatmap", "#connection", "#counts", "#hold-selected", "#best-form"):
        assert await page.locator(hidden).count() == 0, hidden
    assert await page.get_by_role("button").count() == 0
    assert await page.locator("script").count() == 0
    assert not any("/api/" in url for url in requested), requested
    assert sockets == []
    # Chromium reports the 404 itself as a failed load; nothing else may go wrong.
    assert [p for p in page.problems if "Failed to load resource" not in p] == []
    assert await audit(page) == []

    await page.get_by_role("link", name="See the upcoming events").click()
    await page.wait_for_url("**/")
    await page.locator("#search-form").wait_for()
