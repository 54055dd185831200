"""The admin live panel in headless Chromium against a live hub: its figures, charts and
events board move while a scripted booking burst runs (a screenshot is kept), the price
history and health report show, a waiting room's queue shows while the room is on, and a
non-admin gets a plain refusal, on the page and on ``/ws/admin`` (4403)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from loadtest.client import WatchClient
from tests.conftest import Account, register
from tests.factories import make_event
from tests.static.conftest import LiveHub, artifact
from tests.static.test_pages import no_script_errors, sign_in

pytestmark = pytest.mark.browser

STREAMING = "(n) => window.__admin && window.__admin.stats.metrics >= n"


async def column_max(page: Any, name: str) -> float | None:
    """The largest value of one series in the page's ring of points."""
    return await page.evaluate(
        """(name) => {
             const ring = window.__admin.ring;
             const col = ring.columns[ring.names.indexOf(name) + 1].filter((v) => v !== null);
             return col.length ? Math.max(...col) : null;
           }""",
        name,
    )


async def test_the_panel_moves_with_a_booking_burst(
    http: httpx.AsyncClient, live_admin: Account, new_page: Any
) -> None:
    # Soon, so it is among the board's candidates before it sells (the board also takes the
    # events held most in the last minutes, whatever their date).
    event = await make_event(http, live_admin, rows=5, seats_per_row=10, starts_in_days=0.5)
    event_id = event["id"]
    page = await new_page()
    await page.goto("/admin")
    await page.get_by_text("Sign in with an admin account").wait_for()
    await sign_in(page, live_admin)
    await page.locator("#panel").wait_for(state="visible")
    await page.locator("#connection[data-state=open]").wait_for()
    await page.wait_for_function(STREAMING, arg=2)
    assert await page.locator("#chart-rates canvas").count() >= 1
    before = await page.evaluate("() => window.__admin.stats.draws")
    assert await column_max(page, "bookings") in (None, 0)  # a quiet hub so far

    # The burst: 20 buyers, two seats each, in four waves a second apart.
    seats = (await http.get(f"/api/v1/events/{event_id}/seats")).json()["seats"]
    orchestra = [s["id"] for s in seats if s["section"] == "Orchestra"]
    buyers = [await register(http, f"Burst {n}") for n in range(20)]
    statuses: list[int] = []
    for wave in range(4):
        answers = await asyncio.gather(
            *(
                http.post(
                    "/api/v1/bookings",
                    json={"event_id": event_id, "seat_ids": orchestra[2 * n : 2 * n + 2]},
                    headers=buyers[n].headers,
                )
                for n in range(wave * 5, wave * 5 + 5)
            )
        )
        statuses += [a.status_code for a in answers]
        await asyncio.sleep(1)
    assert statuses == [201] * 20

    # The figures and charts moved: bookings/s and holds/s above zero, latency sampled.
    await page.wait_for_function(
        """() => {
             const ring = window.__admin.ring;
             const max = (n) => Math.max(
               0, ...ring.columns[ring.names.indexOf(n) + 1].filter((v) => v !== null));
             return max("bookings") > 0 && max("requests") > 0 && max("p99") > 0;
           }""",
        timeout=15_000,
    )
    assert await page.evaluate("() => window.__admin.stats.draws") > before
    assert (await page.locator("#fig-latency").inner_text()).endswith("ms")

    # The board shows the event's live fill (it joins the board as one of the busiest).
    row = page.locator(f"#board tr[data-event-id='{event_id}']")
    await row.wait_for(timeout=20_000)
    await page.wait_for_function(
        """(id) => { const m = window.__admin.last;
                     const e = (m.events || []).find((x) => x.event_id === id);
                     return e && e.sold === 40; }""",
        arg=event_id,
        timeout=10_000,
    )
    assert "40 of 100" in await row.inner_text()
    assert "Orchestra 120.00" in await row.inner_text()

    # A price change after the run shows on the board and in the event's price history.
    response = await http.post(
        f"/api/v1/advanced/pricing/update/{event_id}", headers=live_admin.headers
    )
    assert response.status_code == 200, response.text
    sections = {s["section"]: s for s in response.json()["events"][0]["sections"]}
    assert sections["Orchestra"]["applied"]
    new_price = f"Orchestra {sections['Orchestra']['new_price']:.2f}"
    await row.get_by_text(new_price).wait_for(timeout=15_000)
    await row.get_by_role("button", name=f"Price history of {event['name']}").click()
    applied = sum(1 for s in sections.values() if s["applied"])
    plural = "" if applied == 1 else "s"
    await page.locator("#history-status").get_by_text(f"{applied} price change{plural}").wait_for()
    assert await page.locator("#chart-history canvas").count() >= 1

    # The reports: the health report in red/amber/green, the analytics loaded.
    await page.locator("#health li[data-rag]").first.wait_for()
    assert "could not" not in await page.locator("#analytics-status").inner_text()
    await page.locator("#analytics-status").get_by_text("Analytics as of").wait_for()
    assert await page.locator("#breakers li").count() == 2

    path = artifact("admin-panel-burst.png")
    await page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    assert no_script_errors(page) == []


async def test_the_panel_shows_a_waiting_rooms_queue_while_the_room_is_on(
    http: httpx.AsyncClient, live_admin: Account, new_page: Any
) -> None:
    event = await make_event(http, live_admin, rows=1, seats_per_row=10)
    event_id = event["id"]
    path = f"/api/v1/events/{event_id}/waiting-room"
    opens_at = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    made = await http.put(
        path, json={"opens_at": opens_at, "admit_per_second": 2}, headers=live_admin.headers
    )
    assert made.status_code == 200, made.text
    for n in range(2):
        waiter = await register(http, f"Queued {n}")
        joined = await http.post(f"/api/v1/events/{event_id}/queue", headers=waiter.headers)
        assert joined.status_code == 201, joined.text

    page = await new_page()
    await page.goto("/admin")
    await sign_in(page, live_admin)
    await page.wait_for_function(STREAMING, arg=1)
    row = page.locator(f"#queues tr[data-event-id='{event_id}']")
    await row.wait_for(timeout=15_000)
    assert await page.locator("#queues-box").is_visible()
    cells = await row.locator("th, td").all_inner_texts()
    assert cells == [event["name"], "scheduled", "2", "0", "2.0"]

    off = await http.delete(path, headers=live_admin.headers)
    assert off.status_code == 200, off.text
    await row.wait_for(state="detached", timeout=15_000)
    assert no_script_errors(page) == []


async def test_a_non_admin_is_refused_on_the_page_and_on_the_socket(
    http: httpx.AsyncClient, live_hub: LiveHub, new_page: Any
) -> None:
    someone = await register(http, "Not An Admin")
    page = await new_page()
    await page.goto("/admin")
    await sign_in(page, someone)
    gate = page.locator("#gate")
    await gate.get_by_text("who is not an admin").wait_for()
    assert await page.locator("#panel").is_hidden()
    assert await page.evaluate("() => window.__admin.stats.metrics") == 0

    url = live_hub.base_url.replace("http://", "ws://") + "/ws/admin"
    conn = await WatchClient.open(url, subprotocol="json")
    await conn.send({"t": "hello", "token": someone.token})
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(conn.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    assert no_script_errors(page) == []


async def test_an_hour_of_points_stays_bounded_and_quick_to_draw(
    live_admin: Account, new_page: Any
) -> None:
    page = await new_page()
    await page.goto("/admin")
    await sign_in(page, live_admin)
    await page.wait_for_function(STREAMING, arg=1)
    nodes_before = await page.evaluate("() => document.getElementsByTagName('*').length")
    # 65 minutes of one-second messages through the page's own handler.
    timing = await page.evaluate(
        """async () => {
             const a = window.__admin, base = a.last, t0 = Date.now() - 3900 * 1000;
             const started = performance.now();
             for (let i = 0; i < 3900; i += 1) {
               a.receive({ ...base, at: t0 + i * 1000, bookings_per_s: i % 50,
                           holds_per_s: (i * 7) % 90, http_requests_per_s: 100 + (i % 13) });
             }
             const all = performance.now() - started;
             const draws = [];
             for (let i = 0; i < 10; i += 1) {
               // uPlot draws in a microtask after setData: time up to a macrotask after
               // it (an upper bound: it includes the timer's own delay).
               const s = performance.now();
               a.draw();
               await new Promise((r) => setTimeout(r, 0));
               draws.push(performance.now() - s);
             }
             draws.sort((x, y) => x - y);
             return { all, median: draws[5], length: a.ring.length, capacity: a.ring.capacity };
           }"""
    )
    print(
        f"3,900 messages in {timing['all']:.0f} ms; one redraw of 3,600 points: "
        f"median {timing['median']:.1f} ms"
    )
    assert timing["length"] == timing["capacity"] == 3600
    # Smooth: a redraw of the full hour fits inside a few frames even on this shared box.
    assert timing["median"] < 100
    nodes_after = await page.evaluate("() => document.getElementsByTagName('*').length")
    assert nodes_after - nodes_before < 20  # no DOM per point
    assert no_script_errors(page) == []
