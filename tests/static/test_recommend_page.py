""" "Recommend seats" on the seat-map page, in headless Chromium against a live hub: the blocks
the hub recommends appear as a list with their scores in words and outlined on the map, follow
the form, are held in one click (also with the keyboard only), and follow the seat map live
when someone else takes the best block."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Account, register
from tests.factories import default_sections, make_event, make_venue
from tests.static.conftest import artifact
from tests.static.test_accessibility import audit
from tests.static.test_pages import no_script_errors, open_event, seat_map, sign_in, tab_to

pytestmark = pytest.mark.browser

RECOMMEND = "/api/v1/advanced/seats/recommendations"
# The words the page uses for a score in [0, 1] (static/js/recommend.js, scoreWord).
WORDS = [(0.8, "excellent"), (0.6, "good"), (0.4, "fair")]
EN_DASH = "\u2013"  # between the first and last seat number of a run
BLOCK_KEYS = "() => [...document.querySelectorAll('#reco-list > li')].map((li) => li.dataset.key)"


def word(score: float) -> str:
    return next((w for floor, w in WORDS if score >= floor), "poor")


def key(item: dict[str, Any]) -> str:
    """The page's key of a block: its seat ids, sorted, joined by commas."""
    return ",".join(sorted(s["id"] for s in item["seats"]))


async def venue_event(http: httpx.AsyncClient, admin: Account) -> dict[str, Any]:
    """Orchestra (120.00, nearest the stage) and Balcony (45.50), 5 rows x 10 each; two
    accessible seats at the end of Orchestra row E."""
    sections = default_sections(rows=5, seats_per_row=10)
    sections[0]["accessible_seats"] = [{"row": "E", "number": 1}, {"row": "E", "number": 2}]
    venue = await make_venue(http, admin, sections=sections)
    return await make_event(http, admin, venue_id=venue["id"], max_tickets_per_user=10)


async def recommended(
    http: httpx.AsyncClient, user: Account, event_id: str, **wish: Any
) -> list[dict[str, Any]]:
    response = await http.post(RECOMMEND, json={"event_id": event_id, **wish}, headers=user.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["recommendations"]
    return items


async def shown_keys(page: Any) -> list[str]:
    keys: list[str] = await page.evaluate(BLOCK_KEYS)
    return keys


async def signed_in_page(new_page: Any, user: Account, event_id: str) -> Any:
    page = await new_page()
    await page.goto("/")
    await sign_in(page, user)
    await open_event(page, event_id)
    return page


async def test_recommendations_appear_in_words_outlined_on_the_map_and_follow_the_form(
    http: httpx.AsyncClient, live_admin: Account, new_page: Any
) -> None:
    event = await venue_event(http, live_admin)
    user = await register(http, "Reco Reader")
    page = await signed_in_page(new_page, user, event["id"])
    form = page.get_by_role("form", name="Recommend seats")
    await form.get_by_label("Number of seats").fill("2")
    await form.get_by_role("button", name="Recommend seats").click()
    blocks = page.get_by_role("list", name="Recommended seat blocks, best first").get_by_role(
        "listitem"
    )
    await blocks.first.wait_for()

    # The page shows what the hub recommends, in its order, with every score in words.
    expected = await recommended(http, user, event["id"], quantity=2)
    assert len(expected) >= 3
    assert await shown_keys(page) == [key(item) for item in expected]
    for n, item in enumerate(expected):
        text = await blocks.nth(n).inner_text()
        s = item["scores"]
        overall = word(item["score"])
        assert (
            f"{overall[0].upper()}{overall[1:]} overall: {word(s['location'])} view, "
            f"{word(s['value'])} value, {word(s['group'])} grouping, "
            f"{word(s['similarity'])} match with your past bookings." in text
        ), text
        assert f"{item['total_price']:.2f} total" in text
        assert ("together" if item["together"] else "not all side by side") in text
    first = expected[0]["seats"]
    assert (await blocks.first.get_by_role("heading").inner_text()).endswith(
        f"{first[0]['section']} row {first[0]['row']}, seats "
        f"{min(s['number'] for s in first)}{EN_DASH}{max(s['number'] for s in first)}"
    ), "the best block of two is two neighbours in one row"
    summary = page.locator("#reco-summary")
    assert (await summary.inner_text()).startswith(
        f"{len(expected)} blocks of 2 seats recommended. Best: {first[0]['section']} row"
    )

    # Every block is outlined on the map, numbered as in the list; pointing at a block in
    # the list makes it the emphasised one.
    index = {s["id"]: i for i, s in enumerate((await seat_map(http, event["id"]))["seats"])}
    outlined = await page.evaluate("() => window.__evently.map.blocks")
    assert outlined == [[index[s["id"]] for s in item["seats"]] for item in expected]
    assert await page.evaluate("() => window.__evently.map.activeBlock") == -1
    await blocks.nth(1).hover()
    assert await page.evaluate("() => window.__evently.map.activeBlock") == 1
    assert await blocks.nth(1).get_attribute("data-active") == ""
    await page.screenshot(path=str(artifact("recommend-blocks.png")), full_page=True)
    assert await audit(page) == []

    # Changing the form updates the list without pressing the button again: a budget of 50
    # a seat leaves only the Balcony (45.50)...
    await form.get_by_label("Budget per seat").fill("50")
    cheap = [
        key(item) for item in await recommended(http, user, event["id"], quantity=2, max_price=50)
    ]
    assert cheap
    await page.wait_for_function(f"(want) => ({BLOCK_KEYS})().join() === want.join()", arg=cheap)
    for where in await page.locator("#reco-list .reco-seats").all_inner_texts():
        assert where.startswith("Balcony row"), where

    # ...and accessible seating (with no budget) only blocks with an accessible seat.
    await form.get_by_label("Budget per seat").fill("")
    await form.get_by_label("Accessible seating").check()
    access = await recommended(http, user, event["id"], quantity=2, accessibility_required=True)
    assert access and all(any(s["accessible"] for s in item["seats"]) for item in access)
    await page.wait_for_function(
        f"(want) => ({BLOCK_KEYS})().join() === want.join()", arg=[key(i) for i in access]
    )
    for text in await blocks.all_inner_texts():
        assert "includes a wheelchair-accessible seat" in text

    # Clearing stops them: no list, nothing outlined.
    await page.get_by_role("button", name="Clear recommendations").click()
    await page.locator("#reco-list").wait_for(state="hidden")
    assert await page.evaluate("() => window.__evently.map.blocks") == []
    assert no_script_errors(page) == []


async def test_a_recommended_block_is_held_in_one_click(
    http: httpx.AsyncClient, live_admin: Account, new_page: Any
) -> None:
    event = await venue_event(http, live_admin)
    user = await register(http, "One Click")
    page = await signed_in_page(new_page, user, event["id"])
    form = page.get_by_role("form", name="Recommend seats")
    await form.get_by_label("Number of seats").fill("3")
    await form.get_by_role("button", name="Recommend seats").click()
    second = page.locator("#reco-list > li").nth(1)
    await second.wait_for()
    chosen = await second.get_attribute("data-key") or ""
    ids = chosen.split(",")
    assert len(ids) == 3

    async with page.expect_response(lambda r: r.url.endswith("/holds")) as placed:
        await second.get_by_role("button", name="Hold these seats").click()
    response = await placed.value
    assert response.status == 201
    assert sorted(response.request.post_data_json["seat_ids"]) == sorted(ids)
    await page.get_by_role("status").filter(has_text="Held 3 seats for you").wait_for()
    hold = await response.json()
    assert sorted(s["id"] for s in hold["seats"]) == sorted(ids)
    index = {s["id"]: i for i, s in enumerate((await seat_map(http, event["id"]))["seats"])}
    mine = await page.evaluate("() => [...window.__evently.map.mine].sort((a, b) => a - b)")
    assert mine == sorted(index[i] for i in ids)
    # The held block leaves the list (the seats are no longer free for anyone).
    await page.wait_for_function(f"(k) => !({BLOCK_KEYS})().includes(k)", arg=chosen)
    assert no_script_errors(page) == []


async def test_the_list_follows_live_when_someone_else_takes_the_best_block(
    http: httpx.AsyncClient, live_admin: Account, new_page: Any
) -> None:
    event = await venue_event(http, live_admin)
    user, rival = await register(http, "Watcher"), await register(http, "Rival")
    page = await signed_in_page(new_page, user, event["id"])
    form = page.get_by_role("form", name="Recommend seats")
    await form.get_by_label("Number of seats").fill("2")
    await form.get_by_role("button", name="Recommend seats").click()
    await page.locator("#reco-list > li").first.wait_for()
    before = await shown_keys(page)
    pushes = await page.evaluate("() => window.__evently.reco.stats.pushes")

    taken = before[0].split(",")
    held = await http.post(
        f"/api/v1/events/{event['id']}/holds", json={"seat_ids": taken}, headers=rival.headers
    )
    assert held.status_code == 201, held.text

    # A reco message from the hub replaces the list: a new best block, none of the taken
    # seats anywhere, as many blocks as before, and the same blocks the hub now answers.
    await page.wait_for_function(
        "(n) => window.__evently.reco.stats.pushes > n", arg=pushes, timeout=5000
    )
    after = await shown_keys(page)
    assert after[0] != before[0]
    assert not any(seat in k.split(",") for k in after for seat in taken)
    assert len(after) == len(before)
    now = [key(i) for i in await recommended(http, user, event["id"], quantity=2)]
    assert after == now
    best = await page.locator("#reco-list .reco-seats").first.inner_text()
    assert best in await page.locator("#reco-summary").inner_text()
    assert no_script_errors(page) == []


async def test_keyboard_only_path_recommends_and_holds_a_block(
    http: httpx.AsyncClient, live_admin: Account, new_page: Any
) -> None:
    event = await venue_event(http, live_admin)
    user = await register(http, "Kay Recommend")
    page = await signed_in_page(new_page, user, event["id"])

    # Tab to the form, set 2 seats, Space ticks accessible seating, Enter asks.
    await tab_to(page, "#reco-quantity")
    await page.keyboard.press("Control+a")
    await page.keyboard.type("2")
    await tab_to(page, "#reco-accessible")
    await page.keyboard.press("Space")
    assert await page.locator("#reco-accessible").is_checked()
    await tab_to(page, "#reco-form button[type=submit]")
    await page.keyboard.press("Enter")
    await page.locator("#reco-list > li").first.wait_for()
    await (
        page.get_by_role("status")
        .filter(has_text="blocks of 2 seats recommended")
        .or_(page.get_by_role("status").filter(has_text="block of 2 seats recommended"))
        .wait_for()
    )

    # Tab reaches the first block's hold button: it shows a focus ring and the block is
    # emphasised on the map.
    await tab_to(page, "#reco-list > li:first-child .reco-hold")
    first = page.locator("#reco-list > li").first
    ids = (await first.get_attribute("data-key") or "").split(",")
    assert (
        await page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
        == "solid"
    )
    assert await page.evaluate("() => window.__evently.map.activeBlock") == 0
    assert await first.get_attribute("data-active") == ""
    label = await page.evaluate("() => document.activeElement.getAttribute('aria-label')")
    assert label.startswith("Hold these seats: Orchestra row E")

    await page.keyboard.press("Enter")
    await page.get_by_role("status").filter(has_text="Held 2 seats for you").wait_for()
    assert await page.evaluate("() => document.activeElement.id") == "book"
    await page.screenshot(path=str(artifact("recommend-keyboard.png")), full_page=True)
    holds = await seat_map(http, event["id"])
    held = {s["id"] for s in holds["seats"] if s["status"] == "held"}
    assert held == set(ids)
    assert no_script_errors(page) == []


async def test_an_anonymous_watcher_gets_blocks_over_the_live_channel_and_is_asked_to_sign_in(
    http: httpx.AsyncClient, live_admin: Account, new_page: Any
) -> None:
    event = await venue_event(http, live_admin)
    page = await new_page()
    await open_event(page, event["id"])
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/recommendations" in r.url else None)
    form = page.get_by_role("form", name="Recommend seats")
    await form.get_by_label("Number of seats").fill("2")
    await form.get_by_role("button", name="Recommend seats").click()
    await page.locator("#reco-list > li").first.wait_for()

    # No HTTP call (it needs a sign-in): the blocks came in a reco message, ranked with a
    # neutral similarity, the same as a new user with no bookings is answered over HTTP.
    assert asked == []
    stats = await page.evaluate("() => window.__evently.reco.stats")
    assert stats["pushes"] >= 1 and stats["answers"] == 0
    newcomer = await register(http, "Newcomer")
    same = [key(i) for i in await recommended(http, newcomer, event["id"], quantity=2)]
    assert await shown_keys(page) == same
    # A neutral similarity is not dressed up as a match.
    for text in await page.locator("#reco-list .reco-words").all_inner_texts():
        assert "overall:" in text and "match" not in text

    await page.locator("#reco-list .reco-hold").first.click()
    await (
        page.get_by_role("alert").filter(has_text="Please sign in to hold or book seats").wait_for()
    )
    assert no_script_errors(page) == []
