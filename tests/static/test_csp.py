"""The pages under their Content-Security-Policy.

Statically: no page in ``static/`` has anything the policy would block (inline script,
inline event handlers, inline styles, ``javascript:`` URLs) and no script of ours evaluates
strings as code. In Chromium: every page route (taken from the route table, so a new page
is covered) is served with the security headers and loads, draws and connects with no
policy violation — while an inline script injected into the page is blocked, which shows
the violation listener would see one.
"""

from __future__ import annotations

import re
import uuid
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from hub.api import pages
from tests.conftest import Account
from tests.factories import make_event

STATIC = Path(__file__).resolve().parents[2] / "static"

# Recorded before any page script runs (an init script is not subject to the page's CSP).
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(
    `${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


class _InlineFinder(HTMLParser):
    """Collects what a strict CSP (``script-src 'self'``, ``style-src 'self'``) blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if tag == "script" and not names.get("src"):
            self.found.append(f"inline <script> at line {self.getpos()[0]}")
        if tag == "style":
            self.found.append(f"inline <style> at line {self.getpos()[0]}")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"event handler {name}= on <{tag}>")
            if name == "style":
                self.found.append(f"style= on <{tag}>")
            if name in ("href", "src", "action") and (value or "").strip().lower().startswith(
                "javascript:"
            ):
                self.found.append(f"javascript: URL in {name}= on <{tag}>")


def inline_code(html: str) -> list[str]:
    finder = _InlineFinder()
    finder.feed(html)
    finder.close()
    return finder.found


def test_the_inline_finder_finds_what_the_policy_blocks() -> None:
    bad = (
        "<script>alert(1)</script><button onclick='x()'>b</button>"
        "<p style='color:red'></p><style>p{}</style><a href='javascript:x()'>a</a>"
    )
    assert len(inline_code(bad)) == 5
    good = '<script type="module" src="/static/js/app.js"></script><a href="/">home</a>'
    assert inline_code(good) == []


def test_no_page_has_inline_script_handlers_or_styles() -> None:
    html_files = sorted(STATIC.glob("*.html"))
    assert len(html_files) >= 3
    for path in html_files:
        assert inline_code(path.read_text("utf-8")) == [], path.name


def test_no_script_of_ours_evaluates_strings_or_writes_inline_handlers() -> None:
    # script-src 'self' without 'unsafe-eval' blocks these at run time.
    forbidden = re.compile(
        r"\beval\(|\bnew Function\(|setTimeout\(\s*['\"`]|setAttribute\(\s*['\"](on\w+|style)['\"]"
        r"|\son[a-z]+=['\"]|javascript:"
    )
    scripts = sorted((STATIC / "js").glob("*.js"))
    assert scripts
    for path in scripts:
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            assert not forbidden.search(line), f"{path.name}:{number}: {line.strip()}"


def _page_paths(event_id: str) -> list[str]:
    paths = [r.path for r in pages.routes() if isinstance(r, Route)]
    assert "/" in paths and "/events/{event_id}" in paths
    return [p.replace("{event_id}", event_id) for p in paths] + [f"/events/{uuid.uuid4()}"]


@pytest.mark.browser
async def test_every_page_works_under_its_csp_with_no_violation(
    new_page: Any, http: httpx.AsyncClient, live_admin: Account
) -> None:
    event = await make_event(http, live_admin)
    for path in _page_paths(event["id"]):
        response = await http.get(path)
        assert response.status_code in (200, 404), path
        headers = response.headers
        assert headers["content-security-policy"] == pages.CONTENT_SECURITY_POLICY, path
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "script-src 'self'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"

        page = await new_page()
        await page.add_init_script(RECORD_VIOLATIONS)
        await page.goto(path)
        await page.wait_for_load_state("networkidle")
        if path == f"/events/{event['id']}":
            # the page's scripts ran: the seat map drew and the live channel is open
            await page.wait_for_function("() => window.__evently?.stats?.firstDrawAt > 0")
            await page.locator("#connection[data-state=open]").wait_for()
        assert await page.evaluate("window.__cspViolations") == [], path
        problems = [p for p in page.problems if "Failed to load resource" not in p]
        assert not [p for p in problems if "Content Security Policy" in p], problems

    # the control: an inline script is refused and reported
    await page.evaluate(
        """() => { const s = document.createElement("script");
                   s.textContent = "window.__inlineRan = true"; document.head.append(s); }"""
    )
    await page.wait_for_function("() => window.__cspViolations.length > 0")
    assert await page.evaluate("window.__inlineRan === undefined")
