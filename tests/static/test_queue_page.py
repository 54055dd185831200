"""The waiting room on the seat-map page, in headless Chromium against a live hub: a hold
refused for want of an admission token turns the page into the queue view; joining before
the opening says places are drawn then; after it the page shows the position, a progress
bar and an ETA, updated live by `queue` messages, and on `admitted` it keeps the token
(sessionStorage, per event) and switches to the seat map, where holds carry it; a sell-out
while waiting hands over to the waitlist."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

import httpx
import pytest

from tests.conftest import Account, register
from tests.factories import make_event
from tests.static.conftest import artifact
from tests.static.test_accessibility import audit
from tests.static.test_pages import click_seat, no_script_errors, open_event, seat_map, sign_in

pytestmark = pytest.mark.browser

API = "/api/v1"
TOKEN_KEY = "(id) => JSON.parse(sessionStorage.getItem(`evently.admission.${id}`) || 'null')"


async def room_on(
    http: httpx.AsyncClient, admin: Account, event_id: str, opens_in: float, rate: float
) -> dict[str, Any]:
    opens_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=opens_in)
    response = await http.put(
        f"{API}/events/{event_id}/waiting-room",
        json={"opens_at": opens_at.isoformat(), "admit_per_second": rate},
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text
    room: dict[str, Any] = response.json()
    return room


async def join(http: httpx.AsyncClient, who: Account, event_id: str) -> dict[str, Any]:
    response = await http.post(f"{API}/events/{event_id}/queue", headers=who.headers)
    assert response.status_code in (200, 201), response.text
    place: dict[str, Any] = response.json()
    return place


async def admitted(http: httpx.AsyncClient, who: Account, event_id: str) -> str:
    """Wait (bounded) until ``who`` is admitted; return the admission token."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        response = await http.get(f"{API}/events/{event_id}/queue", headers=who.headers)
        assert response.status_code == 200, response.text
        place = response.json()
        if place["status"] == "admitted":
            token: str = place["token"]
            return token
        await asyncio.sleep(0.2)
    raise AssertionError("never admitted")


async def refused_best_hold(page: Any) -> None:
    """Ask for the best seats without a token: the hub refuses (403 not_admitted)."""
    async with page.expect_response(lambda r: r.url.endswith("/holds")) as refused:
        await page.get_by_role("button", name="Find and hold best seats").click()
    assert (await refused.value).status == 403


async def signed_in_page(new_page: Any, user: Account, event_id: str) -> Any:
    page = await new_page()
    await page.goto("/")
    await sign_in(page, user)
    await open_event(page, event_id)
    return page


async def test_queue_view_from_refused_hold_to_admission_and_a_hold_with_the_token(
    http: httpx.AsyncClient, live_admin: Account, new_page: Any
) -> None:
    event = await make_event(http, live_admin, rows=2, seats_per_row=5)
    eid = event["id"]
    await room_on(http, live_admin, eid, opens_in=10, rate=1)
    # Five buyers join before the opening; so will the page's user, and a latecomer after
    # it queues behind all six.
    crowd = [await register(http, f"Crowd {n}") for n in range(5)]
    for buyer in crowd:
        assert (await join(http, buyer, eid))["position"] is None
    early = await signed_in_page(new_page, await register(http, "Early Bird"), eid)

    # The page did not know of the room: the first hold is refused, and the page turns
    # into the queue view.
    await click_seat(early, 0)
    async with early.expect_response(lambda r: r.url.endswith("/holds")) as refused:
        await early.get_by_role("button", name="Hold chosen seats").click()
    assert (await refused.value).status == 403
    view = early.get_by_role("region", name="Waiting room")
    await view.wait_for()
    assert await early.locator("#shop").is_hidden()
    await early.get_by_role("alert").filter(has_text="This on-sale has a waiting room").wait_for()

    # Joined before the opening: no position yet, places are drawn at opening.
    await view.get_by_role("button", name="Join the queue").click()
    await view.get_by_text("Places are drawn at random when the sale opens").wait_for()
    bar = early.get_by_role("progressbar", name="Your progress through the queue")
    assert await bar.get_attribute("value") is None  # indeterminate before the draw
    assert await audit(early) == []

    late_user = await register(http, "Late Comer")
    late = await signed_in_page(new_page, late_user, eid)
    await refused_best_hold(late)
    late_view = late.get_by_role("region", name="Waiting room")
    await late_view.wait_for()
    opens = time.monotonic()
    while (await http.get(f"{API}/events/{eid}/waiting-room", headers=live_admin.headers)).json()[
        "status"
    ] != "open":
        assert time.monotonic() - opens < 15
        await asyncio.sleep(0.2)
    await late_view.get_by_role("button", name="Join the queue").click()
    await late.locator("#queue-place").filter(has_text="in the queue: ").wait_for()
    first = await late.evaluate("() => ({...window.__evently.queue.place})")
    # One admission a second from the opening: a few are in already, not six.
    assert first["status"] == "waiting" and first["position"] >= 3, first
    assert await late_view.get_by_text("Estimated wait:").count() == 1
    await late.screenshot(path=str(artifact("queue-waiting.png")), full_page=True)

    # Live: the position drops and the bar fills from `queue` messages, with no reload.
    messages = await late.evaluate("() => window.__evently.queue.stats.queueMessages")
    started = time.monotonic()
    await late.wait_for_function(
        "(p) => { const q = window.__evently.queue.place; "
        "return q.status === 'waiting' && q.position < p; }",
        arg=first["position"],
        timeout=15000,
    )
    value, top = await late.evaluate(
        "() => { const b = document.getElementById('queue-progress'); return [b.value, b.max]; }"
    )
    assert 0 < value < top
    assert await late_view.get_by_text(f"number {first['position']} in the queue").count() == 0

    # The early bird was admitted (it was among the first six): its page
    # shows the seat map again, keeps the token for this tab, and holds carry it.
    await early.locator("#shop").wait_for(state="visible")
    assert await early.locator("#queue").is_hidden()
    saved = await early.evaluate(TOKEN_KEY, eid)
    assert saved and saved["token"]
    await early.locator("#turn").wait_for(state="visible")
    # (Seat 1, chosen before the refusal, is still chosen.)
    async with early.expect_request(lambda r: r.url.endswith("/holds")) as sent:
        await early.get_by_role("button", name="Hold chosen seats").click()
    assert (await sent.value).headers.get("x-admission-token") == saved["token"]
    await early.get_by_role("status").filter(has_text="Held 1 seat for you").wait_for()

    # The latecomer's turn comes too; messages arrived at least every 2 s meanwhile.
    await late.locator("#shop").wait_for(state="visible", timeout=20000)
    # Its keyboard focus was in the queue view ("Leave the queue"): it goes on to the seat list.
    await late.wait_for_function("() => document.activeElement.id === 'seat-list'")
    waited = time.monotonic() - started
    received = await late.evaluate("() => window.__evently.queue.stats.queueMessages") - messages
    print(f"\nlatecomer: {received} queue messages in {waited:.1f} s of waiting")
    assert received >= int(waited / 2)
    assert (await late.evaluate(TOKEN_KEY, eid))["token"]
    assert no_script_errors(early) == [] and no_script_errors(late) == []


async def test_sold_out_while_waiting_offers_the_waitlist(
    http: httpx.AsyncClient, live_admin: Account, new_page: Any
) -> None:
    event = await make_event(http, live_admin, rows=1, seats_per_row=1)
    eid = event["id"]
    # Opened already, one admission every 5 s: the first in line gets in, the next waits.
    await room_on(http, live_admin, eid, opens_in=-1, rate=0.2)
    first = await register(http, "First In Line")
    await join(http, first, eid)
    token = await admitted(http, first, eid)

    waiter = await register(http, "Second In Line")
    page = await signed_in_page(new_page, waiter, eid)
    await refused_best_hold(page)
    view = page.get_by_role("region", name="Waiting room")
    await view.get_by_role("button", name="Join the queue").click()
    await view.get_by_text("You are next in the queue").wait_for()

    # The first buyer takes both seats: the event sells out, the waiter is told, and the
    # page offers the waitlist instead of the queue.
    seats = [s["id"] for s in (await seat_map(http, eid))["seats"]]
    booked = await http.post(
        f"{API}/bookings",
        json={"event_id": eid, "seat_ids": seats},
        headers={**first.headers, "X-Admission-Token": token},
    )
    assert booked.status_code == 201, booked.text
    await page.get_by_role("alert").filter(has_text="Sold out").wait_for(timeout=15000)
    await page.get_by_role("region", name="Sold out: join the waitlist").wait_for()
    assert await page.locator("#queue").is_hidden()
    await page.get_by_role("button", name="Join the waitlist").click()
    await page.locator("#waitlist-state").filter(has_text="next in line").wait_for()
    assert no_script_errors(page) == []
