"""The waitlist on the seat-map page, in headless Chromium against a live hub: a sold-out
event offers "join the waitlist"; when another buyer cancels, the seats offered to the
waiter show on the map as theirs (not "held by someone") with a countdown and "Book now",
which books them; an offer survives a reload, and leaving the waitlist gives it up."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from engines.seats import SeatCode
from tests.conftest import Account, register
from tests.factories import make_event
from tests.static.conftest import artifact
from tests.static.test_accessibility import audit
from tests.static.test_pages import no_script_errors, open_event, seat_map, sign_in, tab_to

pytestmark = pytest.mark.browser

API = "/api/v1"
MINE = "() => [...window.__evently.model.mine].sort((a, b) => a - b)"


async def sold_out_event(http: httpx.AsyncClient, admin: Account) -> tuple[dict[str, Any], str]:
    """A 4-seat event (Orchestra A1-A2, Balcony A1-A2) that one buyer booked entirely;
    returns the event and that booking's id."""
    event = await make_event(http, admin, rows=1, seats_per_row=2)
    buyer = await register(http, "Early Buyer")
    seats = [s["id"] for s in (await seat_map(http, event["id"]))["seats"]]
    booked = await http.post(
        f"{API}/bookings",
        json={"event_id": event["id"], "seat_ids": seats},
        headers=buyer.headers,
    )
    assert booked.status_code == 201, booked.text
    event["buyer"] = buyer
    return event, booked.json()["id"]


async def cancel(http: httpx.AsyncClient, who: Account, booking_id: str) -> None:
    cancelled = await http.post(f"{API}/bookings/{booking_id}/cancel", headers=who.headers)
    assert cancelled.status_code == 200, cancelled.text


async def waitlist_of(http: httpx.AsyncClient, who: Account, event_id: str) -> httpx.Response:
    return await http.get(f"{API}/events/{event_id}/waitlist", headers=who.headers)


async def signed_in_page(new_page: Any, user: Account, event_id: str) -> Any:
    page = await new_page()
    await page.goto("/")
    await sign_in(page, user)
    await open_event(page, event_id)
    return page


async def test_sold_out_event_offers_the_waitlist_and_an_offer_is_booked_from_the_map(
    http: httpx.AsyncClient, live_admin: Account, new_page: Any
) -> None:
    event, booking_id = await sold_out_event(http, live_admin)
    waiter = await register(http, "Wendy Waiter")
    page = await signed_in_page(new_page, waiter, event["id"])

    # Sold out: the panel says so and offers the waitlist; nothing is offered yet.
    await page.get_by_role("region", name="Sold out: join the waitlist").wait_for()
    panel = page.locator("#waitlist")
    assert await page.locator("#count-available").inner_text() == "0"
    assert await audit(page) == []
    await panel.get_by_label("Number of seats").fill("2")
    async with page.expect_response(lambda r: r.url.endswith("/waitlist")) as joined:
        await panel.get_by_role("button", name="Join the waitlist").click()
    assert (await joined.value).status == 201
    await page.get_by_role("status").filter(has_text="You joined the waitlist").wait_for()
    await panel.get_by_text("you are next in line, for 2 seats").wait_for()
    assert await panel.get_by_role("button", name="Join the waitlist").is_hidden()
    entry = (await waitlist_of(http, waiter, event["id"])).json()
    assert (entry["position"], entry["quantity"], entry["status"]) == (1, 2, "waiting")

    # The buyer cancels: the hub offers two of the freed seats to the waiter at once, and
    # the page shows them as the waiter's own, with a countdown to the offer's expiry.
    await cancel(http, event["buyer"], booking_id)
    await page.locator("#hold").wait_for(state="visible")
    await page.get_by_role("heading", name="Offered to you from the waitlist").wait_for()
    await (
        page.get_by_role("status")
        .filter(has_text="Seats offered to you from the waitlist")
        .wait_for()
    )
    entry = (await waitlist_of(http, waiter, event["id"])).json()
    assert entry["status"] == "offered" and entry["offer"] is not None
    offer = entry["offer"]
    seats = (await seat_map(http, event["id"]))["seats"]
    index = {s["id"]: i for i, s in enumerate(seats)}
    offered = sorted(index[s["id"]] for s in offer["seats"])
    assert len(offered) == 2
    assert await page.evaluate(MINE) == offered
    # (The offer message is sent at once; the seat deltas follow on the channel's tick.)
    await page.wait_for_function(
        f"(ix) => ix.every((i) => window.__evently.map.status[i] === {int(SeatCode.HELD)})",
        arg=offered,
    )
    listed = await page.locator("#hold-seats li").all_inner_texts()
    assert sorted(listed) == sorted(
        f"{s['section']} row {s['row']} seat {s['number']}: {float(s['price']):.2f}"
        for s in offer["seats"]
    )
    countdown = await page.locator("#hold-countdown").inner_text()
    shown = re.fullmatch(r"(\d+):(\d\d)", countdown)
    assert shown, countdown
    assert 240 < int(shown[1]) * 60 + int(shown[2]) <= 300  # EVENTLY_OFFER_TTL_SECONDS: 300
    # The seat's tooltip and the seat list say "yours", not "held by someone".
    x, y = await page.evaluate("(i) => window.__evently.map.toScreen(i)", offered[0])
    box = await page.locator("#seatmap").bounding_box()
    await page.mouse.move(box["x"] + x, box["y"] + y)
    await page.get_by_role("tooltip").filter(has_text="held by you").wait_for()
    await panel.get_by_text("Seats are offered to you").wait_for()
    assert await audit(page) == []
    await page.screenshot(path=str(artifact("waitlist-offer.png")), full_page=True)

    # "Book now" confirms the offered hold: the booking shows, the entry is booked.
    async with page.expect_response(lambda r: r.url.endswith("/bookings")) as booked:
        await page.get_by_role("button", name="Book now").click()
    assert (await booked.value).status == 201
    await page.locator("#booking").wait_for(state="visible")
    reference = await page.locator("#booking-reference").inner_text()
    bookings = (await http.get(f"{API}/bookings", headers=waiter.headers)).json()["items"]
    [booking] = bookings
    assert booking["reference"] == reference
    assert sorted(index[s["id"]] for s in booking["seats"]) == offered
    await panel.get_by_text("You booked the seats offered to you").wait_for()
    assert (await waitlist_of(http, waiter, event["id"])).json()["status"] == "booked"
    await page.wait_for_function(
        f"(ix) => ix.every((i) => window.__evently.map.status[i] === {int(SeatCode.SOLD)})",
        arg=offered,
    )
    assert await page.evaluate(MINE) == []
    assert no_script_errors(page) == []


async def test_an_offer_survives_a_reload_and_leaving_the_waitlist_gives_it_up(
    http: httpx.AsyncClient, live_admin: Account, new_page: Any
) -> None:
    event, booking_id = await sold_out_event(http, live_admin)
    waiter = await register(http, "Kim Keys")
    page = await signed_in_page(new_page, waiter, event["id"])

    # Joined with the keyboard only.
    await page.get_by_role("region", name="Sold out: join the waitlist").wait_for()
    await tab_to(page, "#waitlist-quantity")
    await page.keyboard.press("Control+A")
    await page.keyboard.type("1")
    await page.keyboard.press("Enter")
    await page.locator("#waitlist-state").filter(has_text="next in line, for 1 seat.").wait_for()
    # The focus moved to "Leave", the one control that now applies.
    assert await page.evaluate("() => document.activeElement.id") == "waitlist-leave"

    await cancel(http, event["buyer"], booking_id)
    await page.get_by_role("heading", name="Offered to you from the waitlist").wait_for()
    [offered] = await page.evaluate(MINE)

    # A reload shows the standing offer again, as the user's own seat.
    await page.reload()
    await page.wait_for_function("() => window.__evently && window.__evently.stats.snapshots >= 1")
    await page.get_by_role("heading", name="Offered to you from the waitlist").wait_for()
    assert await page.evaluate(MINE) == [offered]
    hold_id = (await waitlist_of(http, waiter, event["id"])).json()["offer"]["hold_id"]

    # Leaving gives the offer up: the seat is no longer the user's, the hold is gone.
    leave = page.get_by_role("button", name="Leave the waitlist (give up the offer)")
    await leave.click()
    await page.get_by_role("status").filter(has_text="You left the waitlist").wait_for()
    assert await page.locator("#hold").is_hidden()
    assert await page.evaluate(MINE) == []
    assert (await waitlist_of(http, waiter, event["id"])).status_code == 404
    gone = await http.get(f"{API}/holds/{hold_id}", headers=waiter.headers)
    assert gone.status_code in (404, 410), gone.text
    await page.wait_for_function(f"() => window.__evently.map.status[{offered}] === 0")
    # Seats are free again (not sold out): the panel steps aside.
    await page.locator("#waitlist").wait_for(state="hidden")
    assert no_script_errors(page) == []
