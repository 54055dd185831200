"""Helpers for the circuit-breaker tests: quick breakers on the session's hub, put back
afterwards with nothing left in Redis or the state gauge."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from hub.breakers import Breakers
from hub.context import Hub
from hub.metrics import BREAKER_STATE

GAUGE = {"closed": 0, "half_open": 1, "open": 2}


@asynccontextmanager
async def quick_breakers(hub: Hub, **settings: Any) -> AsyncIterator[Breakers]:
    """The hub's breakers replaced by ones built from ``settings`` changes (threshold 3,
    reset 1 s unless given) for the block; the hub's own are put back after it."""
    changes = {"breaker_failure_threshold": 3, "breaker_reset_seconds": 1.0, **settings}
    previous_settings, previous = hub.settings, hub.breakers
    await forget_shared(hub)
    hub.settings = hub.settings.replace(**changes)
    hub.breakers = Breakers(hub.settings, hub.store)
    try:
        yield hub.breakers
    finally:
        hub.settings, hub.breakers = previous_settings, previous
        await forget_shared(hub)
        for breaker in previous.all():
            BREAKER_STATE.labels(breaker=breaker.name).set(GAUGE[breaker.state])


async def forget_shared(hub: Hub) -> None:
    """Remove the openings breakers published in Redis (other hubs would adopt them)."""
    await hub.store.client.delete(
        *(hub.store.keys.global_(f"breaker:{name}") for name in ("payments", "email"))
    )
