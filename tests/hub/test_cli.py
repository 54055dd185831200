"""The ``evently serve`` banner: every URL it prints answers 200 on a running hub."""

from __future__ import annotations

import re

import httpx
import pytest

from hub import demo
from hub.cli import banner
from hub.context import Hub
from hub.settings import Settings
from tests.live import serve


@pytest.mark.parametrize("with_demo", [True, False])
async def test_every_url_in_the_banner_answers(
    hub: Hub, settings: Settings, with_demo: bool
) -> None:
    summary = await demo.seed_demo(hub) if with_demo else None
    async with serve(settings) as server, httpx.AsyncClient() as http:
        text = banner(server.base, summary)
        urls = re.findall(r"http://\S+", text)
        assert len(urls) == (4 if with_demo else 3), text
        for url in urls:
            response = await http.get(url)
            assert response.status_code == 200, (url, response.status_code)
    if summary is not None:
        assert f"/events/{summary.first_event_id}" in text
        assert all(email in text for _, email, _ in summary.logins)
