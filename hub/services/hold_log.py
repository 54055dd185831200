"""The hold log's writer: holds placed are recorded in batches, off the hold's hot path.

Every hold placed goes into ``hold_log`` (the conversion figures come from it). Writing
each one in its own round trip cost a surge an eighth of its hold time, so each process
buffers them and writes a batch every ``FLUSH_SECONDS``. Outcomes (booked, released,
expired) are upserts that do not need the placed row first, so the order does not matter.
A crash loses at most the unflushed buffer of analytics rows, never a hold or a booking.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import structlog

from hub.context import Hub
from hub.db import holds as holds_db
from hub.tasks import background

log = structlog.get_logger(__name__)

FLUSH_SECONDS = 0.2

Row = tuple[uuid.UUID, uuid.UUID, uuid.UUID, int]


class HoldLogWriter:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.pending: list[Row] = []

    def add(self, hold_id: uuid.UUID, event_id: uuid.UUID, user_id: uuid.UUID, seats: int) -> None:
        self.pending.append((hold_id, event_id, user_id, seats))

    async def flush(self) -> int:
        rows, self.pending = self.pending, []
        if not rows:
            return 0
        try:
            async with self.hub.db.connection() as con:
                await holds_db.log_placed_many(con, rows)
        except Exception as exc:  # analytics only: keep them for the next try, bounded
            log.warning("hold_log_flush_failed", rows=len(rows), error=repr(exc))
            self.pending = (rows + self.pending)[-50_000:]
            return 0
        return len(rows)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            await self.flush()


@contextlib.asynccontextmanager
async def hold_log_part(hub: Hub) -> AsyncIterator[None]:
    """Lifespan part: the process's hold-log writer and its flushing task."""
    writer = HoldLogWriter(hub)
    hub.parts["hold_log"] = writer
    try:
        async with background(writer.run(), "hold-log"):
            yield
    finally:
        hub.parts.pop("hold_log", None)
        await writer.flush()
