"""Assembly: the one place that builds the app's hub, starts what runs beside the API, and
stops it all in reverse order.

The hub (``hub.context``) creates its members from settings, PostgreSQL and Redis; the
members that run need what only the services have, and the services take the finished
hub, so this module, above both, hands it over when it starts them: the channel hub gets
the snapshot reader bound to the hub, the leader gets the leader loops bound to the hub.
Start order: connections, the hub, the bootstrap admin, the revocation feed, the
hold-log flusher, the channels, the WebSocket caps' heartbeat, the campaign for leadership;
stop order is the reverse.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

import structlog

from hub import loop_lag
from hub.context import AppHub, Hub
from hub.db import UNAVAILABLE as DB_UNAVAILABLE
from hub.db import Database
from hub.services import accounts, admin_stream
from hub.services.queue_feed import QueueFeed
from hub.services.snapshots import read_snapshot
from hub.services.vitals import vitals_loop
from hub.settings import Settings
from hub.store import Store
from hub.tasks import background

log = structlog.get_logger(__name__)

SHUTDOWN_DRAIN_SECONDS = 3.0

# A loop only the leader runs, over the hub, until cancelled; it catches its own errors
# per iteration.
LeaderLoop = Callable[[Hub], Awaitable[None]]


@asynccontextmanager
async def serving_hub(
    settings: Settings, leader_loops: Sequence[LeaderLoop]
) -> AsyncIterator[AppHub]:
    """The hub of a process serving the web app, running for the duration of the block.

    Args:
        leader_loops: what this process runs while it is the leader; with none it does not
            campaign at all (a second app in a test, beside the one that leads).
    """
    assert settings.database_url and settings.redis_url
    db = await _connect_database(settings)
    store = Store.connect(
        settings.redis_url, prefix=settings.redis_prefix, max_connections=settings.redis_pool_max
    )
    async with AsyncExitStack() as stack:
        stack.push_async_callback(db.close)
        stack.push_async_callback(store.close)
        hub = AppHub(settings=settings, db=db, store=store)
        # Clean-ups of failed requests still running finish before the pools close.
        stack.push_async_callback(hub.cleanups.drain, SHUTDOWN_DRAIN_SECONDS)
        stack.push_async_callback(hub.offload.stop)
        await accounts.ensure_bootstrap_admin(hub)
        await hub.revocations.start()
        stack.push_async_callback(hub.revocations.stop)
        await stack.enter_async_context(hub.hold_log.flushing())
        await hub.channels.start(functools.partial(read_snapshot, hub))
        stack.push_async_callback(hub.channels.stop)
        # Every process publishes its own vitals for the health report (hub.services.vitals).
        await stack.enter_async_context(background(vitals_loop(hub), "health_vitals"))
        await stack.enter_async_context(background(loop_lag.probe_loop(), "loop_lag"))
        # Waiting rooms: which events have one (the hold path's check), and the personal
        # queue messages to this process's watchers.
        await hub.room_feed.start()
        stack.push_async_callback(hub.room_feed.stop)
        queue_pusher = QueueFeed(hub)
        await queue_pusher.start()
        stack.push_async_callback(queue_pusher.stop)
        await hub.ws_caps.start()
        stack.push_async_callback(hub.ws_caps.stop)
        for name, source in admin_stream.sources(hub).items():
            hub.admin_feed.attach(name, source)
        stack.push_async_callback(hub.admin_feed.stop)
        if leader_loops:
            loops = {loop.__name__: functools.partial(loop, hub) for loop in leader_loops}
            await stack.enter_async_context(hub.leadership.campaigning(loops))
        yield hub


async def _connect_database(settings: Settings) -> Database:
    """Connect, retrying for a while: PostgreSQL may still be starting beside us."""
    assert settings.database_url
    delay = 0.2
    for attempt in range(8):
        try:
            return await Database.connect(
                settings.database_url, min_size=settings.db_pool_min, max_size=settings.db_pool_max
            )
        except DB_UNAVAILABLE as exc:
            log.warning("database_connect_retry", attempt=attempt, error=str(exc))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 3.0)
    return await Database.connect(
        settings.database_url, min_size=settings.db_pool_min, max_size=settings.db_pool_max
    )
