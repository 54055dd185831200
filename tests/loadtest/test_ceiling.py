"""The ceiling serves HTTP the way ``evently serve`` does, so the comparison is like for like."""

from __future__ import annotations

from hub.cli import uvicorn_options
from loadtest.ceiling import server_options


def test_ceiling_http_options_are_the_hubs() -> None:
    hub = uvicorn_options("127.0.0.1", 8123, 2)
    ceiling = server_options("127.0.0.1", 8123, 2)
    http_keys = {key for key in hub if not key.startswith("ws")}
    assert {key: ceiling.get(key) for key in http_keys} == {key: hub[key] for key in http_keys}
    assert ceiling["ws"] == "none"
    assert set(ceiling) - set(hub) == set()
