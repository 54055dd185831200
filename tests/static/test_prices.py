"""The seat-map page shows each section's current price and follows dynamic pricing live: an
admin's update after a run of bookings raises the prices on an open page, with an up mark,
without a reload."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.conftest import Account, register
from tests.factories import make_event
from tests.static.conftest import artifact
from tests.static.test_pages import no_script_errors, open_event

pytestmark = pytest.mark.browser


async def test_a_price_change_reaches_the_open_page_with_its_mark(
    http: httpx.AsyncClient, live_admin: Account, new_page: Any
) -> None:
    event = await make_event(http, live_admin, rows=5, seats_per_row=10)
    event_id = event["id"]
    page = await new_page()
    await open_event(page, event_id)
    orchestra_price = page.locator("#prices tr[data-section=Orchestra] td.price")
    assert await orchestra_price.inner_text() == "120.00"
    await page.evaluate("() => { window.__evently.loadedOnce = true; }")

    # Demand: 40 of the 50 Orchestra seats booked within a minute.
    seats = (await http.get(f"/api/v1/events/{event_id}/seats")).json()["seats"]
    orchestra = [s["id"] for s in seats if s["section"] == "Orchestra"][:40]
    buyers = [await register(http, f"Fan {n}") for n in range(4)]
    booked = await asyncio.gather(
        *(
            http.post(
                "/api/v1/bookings",
                json={"event_id": event_id, "seat_ids": orchestra[n * 10 : (n + 1) * 10]},
                headers=buyer.headers,
            )
            for n, buyer in enumerate(buyers)
        )
    )
    assert [r.status_code for r in booked] == [201] * 4, [r.text for r in booked]

    response = await http.post(
        f"/api/v1/advanced/pricing/update/{event_id}", headers=live_admin.headers
    )
    assert response.status_code == 200, response.text
    quoted = {s["section"]: s for s in response.json()["events"][0]["sections"]}
    assert quoted["Orchestra"]["applied"] and quoted["Orchestra"]["new_price"] > 120
    new_orchestra = f"{quoted['Orchestra']['new_price']:.2f}"

    mark = page.locator("#prices tr[data-section=Orchestra] .price-move[data-dir=up]")
    await mark.wait_for()
    assert (await orchestra_price.inner_text()).startswith(new_orchestra)
    assert await mark.get_attribute("title") == "Up from 120.00"
    assert "up from 120.00" in await mark.inner_text()
    await (
        page.get_by_role("status")
        .filter(has_text=f"Prices changed: Orchestra up to {new_orchestra}")
        .wait_for()
    )
    # The same page, not a reload: the marker set before the update is still there.
    assert await page.evaluate("() => window.__evently.loadedOnce === true")
    await page.screenshot(path=str(artifact("seatmap-price-up.png")), full_page=True)
    assert no_script_errors(page) == []
