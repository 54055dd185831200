"""The hub outside the web app (``open_hub``, as the CLI uses it): every member a service
needs, none of the live ones, and nothing buffered is lost when the command ends."""

from __future__ import annotations

import uuid

import httpx

from hub.context import AppHub, Hub, open_hub
from hub.services import events
from hub.settings import Settings
from tests.conftest import Account
from tests.factories import make_event


async def test_a_command_hub_serves_the_services_and_writes_its_hold_log_before_it_closes(
    settings: Settings, hub: Hub, client: httpx.AsyncClient, admin: Account, user: Account
) -> None:
    event = await make_event(client, admin, rows=1, seats_per_row=2)
    event_id, hold_id = uuid.UUID(event["id"]), uuid.uuid4()
    async with open_hub(settings) as command_hub:
        assert not isinstance(command_hub, AppHub)  # no channels, no leader outside the app
        loaded = await events.load_event(command_hub, event_id)
        assert loaded.name == event["name"]
        assert await events.load_event(command_hub, event_id) is loaded  # its cache is kept
        command_hub.hold_log.add(hold_id, event_id, uuid.UUID(user.id), 2)
    seats = await hub.db.fetchval("SELECT seats FROM hold_log WHERE hold_id = $1", hold_id)
    assert seats == 2
