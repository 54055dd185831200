"""The rollups' horizon: never past the start of a transaction still open, and held far back
while a session of another role cannot be inspected."""

from __future__ import annotations

import datetime as dt
import secrets

import asyncpg

from hub.context import Hub
from hub.db import rollups as rollups_db
from tests.waiting import eventually


async def _horizon(hub: Hub) -> dt.datetime:
    async with hub.db.connection() as con:
        until, blind = await rollups_db.horizon(con)
    assert blind == 0  # the tests connect as a role that sees every session
    return until


async def _clock_past(hub: Hub, moment: dt.datetime) -> bool:
    now: dt.datetime = await hub.db.fetchval("SELECT now()")
    return now > moment


async def test_an_open_transaction_holds_the_horizon_at_its_start(hub: Hub) -> None:
    async with hub.db.connection() as other, other.transaction():
        started: dt.datetime = await other.fetchval("SELECT now()")
        moment = started + 2 * rollups_db.HORIZON_MARGIN
        assert await eventually(lambda: _clock_past(hub, moment), within=5.0)
        assert await _horizon(hub) <= started  # the clock alone would be a second past it

    async def moved_on() -> bool:
        return await _horizon(hub) > started

    assert await eventually(moved_on, within=5.0)


async def test_sessions_of_a_role_it_cannot_inspect_hold_the_horizon_far_back(
    hub: Hub, database_url: str
) -> None:
    role, password = f"evently_probe_{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    await hub.db.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    try:
        probe = await asyncpg.connect(database_url, user=role, password=password)
        try:
            # The app's own pool (another role's sessions, to the probe) is connected.
            until, blind = await rollups_db.horizon(probe)
            now: dt.datetime = await probe.fetchval("SELECT now()")
        finally:
            await probe.close()
    finally:
        await hub.db.execute(f"DROP ROLE {role}")
    assert blind >= 1
    assert until <= now - rollups_db.BLIND_LAG
