"""The in-process benches' hub: the app with its lifespan on a scratch database and key
prefix of the local (or given) servers, dropped afterwards."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from hub.app import create_app
from hub.db.migrate import create_migrated, drop_database
from hub.settings import Settings
from loadtest.launch import _drop_keys


@asynccontextmanager
async def scratch_app(
    pg_url: str, redis_url: str, name: str, *, leader_loops: bool = False, **settings: Any
) -> AsyncIterator[Any]:
    """``create_app`` (rate limits off, warnings only in the log; without the leader's
    loops unless asked) started on a fresh database on ``pg_url`` and a key prefix on
    ``redis_url``, both named after ``name``; ``settings`` override the rest."""
    token = secrets.token_hex(4)
    prefix = f"evently:{name}bench{token}:"
    database_url = await create_migrated(pg_url, f"evently_{name}_{token}")
    try:
        app = create_app(
            Settings(
                database_url=database_url,
                redis_url=redis_url,
                secret_key=secrets.token_urlsafe(32),
                redis_prefix=prefix,
                rate_limits=False,
                log_format="json",
                log_level="warning",
            ).replace(**settings),
            leader_loops=None if leader_loops else (),
        )
        async with app.router.lifespan_context(app):
            yield app
    finally:
        await drop_database(pg_url, database_url)
        await _drop_keys(redis_url, prefix)
