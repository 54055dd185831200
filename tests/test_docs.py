"""The project's documents stay true to the repository and to the hub's route table.

- Every relative link in README.md and docs/*.md names a file (or folder) that exists inside
  the repository: a reader of the repository has nothing else.
- Every HTTP route the app serves is documented in docs/http-api.md under a heading
  ``### `METHOD /path/template` ``, and a heading that does not say "planned" names a route
  the app serves: a new route cannot go undocumented, and the page never calls a planned
  route built (or a built one planned). Every WebSocket route appears in docs/channels.md.

The routes are read from the app itself (``create_app``), without starting it: no servers.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.routing import Mount, Route, WebSocketRoute

from hub.app import create_app
from hub.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
HTTP_API = ROOT / "docs" / "http-api.md"
CHANNELS = ROOT / "docs" / "channels.md"
DOCUMENTS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])

# Inline links and images ``[text](target "title")`` and reference definitions ``[id]: target``.
_INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, https:, mailto: ...
_ENDPOINT_HEADING = re.compile(
    r"^#{2,6} `(GET|POST|PUT|PATCH|DELETE) (/[^`\s]*)`(.*)$", re.MULTILINE
)


def relative_links(markdown: str) -> list[str]:
    """The link targets of a Markdown text that point into the repository (no scheme, not a
    bare ``#anchor``), outside code blocks, without their ``#fragment``."""
    text = _FENCE.sub("", markdown)
    targets = _INLINE_LINK.findall(text) + _REFERENCE.findall(text)
    found = []
    for target in targets:
        if _EXTERNAL.match(target) or target.startswith("#"):
            continue
        found.append(target.split("#", 1)[0])
    return found


def documented_endpoints(markdown: str) -> dict[tuple[str, str], bool]:
    """``(method, path) -> planned`` for every endpoint heading of a Markdown text."""
    endpoints: dict[tuple[str, str], bool] = {}
    for method, path, rest in _ENDPOINT_HEADING.findall(markdown):
        endpoints[(method, path)] = "planned" in rest.lower()
    return endpoints


def app_routes() -> tuple[set[tuple[str, str]], set[str], set[str]]:
    """The app's HTTP routes as ``(method, path)``, its WebSocket paths and its mounts."""
    app = create_app(Settings(secret_key="docs-test-key", log_format="json", log_level="warning"))
    http: set[tuple[str, str]] = set()
    sockets: set[str] = set()
    mounts: set[str] = set()
    for route in app.routes:
        if isinstance(route, Route):
            # Starlette answers HEAD wherever it answers GET; it is not a route of its own.
            http.update((method, route.path) for method in route.methods or () if method != "HEAD")
        elif isinstance(route, WebSocketRoute):
            sockets.add(route.path)
        elif isinstance(route, Mount):
            mounts.add(route.path)
        else:
            pytest.fail(f"a route of unknown kind, not checked against the docs: {route!r}")
    return http, sockets, mounts


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_name_files_in_the_repository(document: Path) -> None:
    broken = []
    for target in relative_links(document.read_text(encoding="utf-8")):
        resolved = (document.parent / target).resolve()
        if not resolved.is_relative_to(ROOT) or not resolved.exists():
            broken.append(target)
    assert not broken, f"{document.relative_to(ROOT)} links to what the repository lacks: {broken}"


def test_the_readme_links_the_contract_docs() -> None:
    targets = relative_links((ROOT / "README.md").read_text(encoding="utf-8"))
    assert "docs/http-api.md" in targets
    assert "docs/channels.md" in targets


def test_every_http_route_is_documented_as_built() -> None:
    http, _, _ = app_routes()
    documented = documented_endpoints(HTTP_API.read_text(encoding="utf-8"))
    missing = sorted(route for route in http if route not in documented)
    assert not missing, f"routes with no heading in docs/http-api.md: {missing}"
    called_planned = sorted(route for route in http if documented[route])
    assert not called_planned, f"built routes that docs/http-api.md calls planned: {called_planned}"


def test_every_endpoint_documented_as_built_exists() -> None:
    http, _, _ = app_routes()
    documented = documented_endpoints(HTTP_API.read_text(encoding="utf-8"))
    phantoms = sorted(route for route, planned in documented.items() if not planned)
    phantoms = [route for route in phantoms if route not in http]
    assert not phantoms, f"docs/http-api.md describes as built what the app lacks: {phantoms}"


def test_every_websocket_route_and_mount_is_documented() -> None:
    _, sockets, mounts = app_routes()
    assert sockets, "the app serves no WebSocket route: the route reading is broken"
    channels = CHANNELS.read_text(encoding="utf-8")
    missing = sorted(path for path in sockets if f"`{path}`" not in channels)
    assert not missing, f"WebSocket routes not in docs/channels.md: {missing}"
    http_api = HTTP_API.read_text(encoding="utf-8")
    unmentioned = sorted(path for path in mounts if f"`{path}/" not in http_api)
    assert not unmentioned, f"mounted paths not in docs/http-api.md: {unmentioned}"


def test_the_readers_see_what_they_are_meant_to() -> None:
    # The readers above are what the other tests stand on: check them on known text.
    sample = (
        "See [a](docs/a.md#part), [b](https://x.org/b.md), [c](#here), ![d](img/d.png).\n"
        "```\n[not a link](inside/a/fence.md)\n```\n"
        "[ref]: ../outside.md\n"
        "### `GET /api/v1/things/{thing_id}`\n"
        "#### `POST /api/v1/things` — planned\n"
        "A line with `GET /api/v1/inline` is not a heading.\n"
    )
    assert relative_links(sample) == ["docs/a.md", "img/d.png", "../outside.md"]
    assert documented_endpoints(sample) == {
        ("GET", "/api/v1/things/{thing_id}"): False,
        ("POST", "/api/v1/things"): True,
    }
