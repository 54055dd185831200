"""An automated accessibility audit of both pages with axe-core (WCAG 2 A/AA rules and
axe's best practices). It cannot prove a page usable, the keyboard test does more of
that, but it catches the regressions people miss: unlabelled controls, low contrast,
duplicate ids, broken ARIA."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Account
from tests.factories import make_event

pytestmark = pytest.mark.browser

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
AUDIT = """async () => {
  const result = await axe.run(document, { runOnly: ["wcag2a", "wcag2aa", "best-practice"] });
  return result.violations.map((v) => `${v.id} (${v.impact}): ${v.help} at ` +
    v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", "));
}"""


async def audit(page: Any) -> list[str]:
    # evaluate() runs through DevTools, so the pages' CSP (self scripts only) stays on.
    await page.evaluate(AXE.read_text())
    violations: list[str] = await page.evaluate(AUDIT)
    return violations


async def test_pages_pass_an_axe_audit(
    http: httpx.AsyncClient, live_admin: Account, new_page: Any
) -> None:
    event = await make_event(http, live_admin, rows=3, seats_per_row=8)
    page = await new_page()
    await page.goto("/")
    await page.locator(".event-card").first.wait_for()
    assert await audit(page) == []
    await page.goto(f"/events/{event['id']}")
    await page.wait_for_function("() => window.__evently && window.__evently.stats.snapshots >= 1")
    await page.locator("#pick-seats input").first.wait_for()
    assert await audit(page) == []
