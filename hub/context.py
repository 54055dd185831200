"""The resources one hub process owns, created and closed by the app's lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from argon2 import PasswordHasher

from hub.db import Database
from hub.inventory import Inventory
from hub.settings import Settings
from hub.store import Store


@dataclass
class Hub:
    settings: Settings
    db: Database
    store: Store
    passwords: PasswordHasher = field(default_factory=PasswordHasher)
    # Services that later subsystems attach (inventory, channels, payments, leader ...),
    # keyed by name, so the lifespan stays the one owner of every resource.
    parts: dict[str, Any] = field(default_factory=dict)
    inventory: Inventory = field(init=False)

    def __post_init__(self) -> None:
        self.inventory = Inventory(self.store.client, self.store.keys)


@asynccontextmanager
async def open_hub(settings: Settings) -> AsyncIterator[Hub]:
    """Connect to PostgreSQL and Redis for a command that runs outside the web app."""
    assert settings.database_url and settings.redis_url
    db = await Database.connect(settings.database_url, min_size=1, max_size=4)
    store = Store.connect(settings.redis_url, prefix=settings.redis_prefix, max_connections=16)
    try:
        yield Hub(settings=settings, db=db, store=store)
    finally:
        await store.close()
        await db.close()
