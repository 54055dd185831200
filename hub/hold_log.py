"""The hold log's writer: holds placed are recorded in batches, off the hold's hot path.

Every hold placed goes into ``hold_log`` (the conversion figures come from it). Writing
each one in its own round trip cost a surge an eighth of its hold time, so each process
buffers them and writes a batch every ``FLUSH_SECONDS``. Outcomes (booked, released,
expired) are upserts that do not need the placed row first, so the order does not matter.
A crash loses at most the unflushed buffer of analytics rows, never a hold or a booking.

The writer needs only the database: the hub holds one (``hub.hold_log``), so this module
sits below ``hub.context`` and imports nothing that imports the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import structlog

from hub.db import Database
from hub.db import holds as holds_db
from hub.tasks import background

log = structlog.get_logger(__name__)

FLUSH_SECONDS = 0.2
MAX_PENDING = 50_000

Row = tuple[uuid.UUID, uuid.UUID, uuid.UUID, int]


class HoldLogWriter:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.pending: list[Row] = []

    def add(self, hold_id: uuid.UUID, event_id: uuid.UUID, user_id: uuid.UUID, seats: int) -> None:
        self.pending.append((hold_id, event_id, user_id, seats))

    async def flush(self) -> int:
        """Write the buffered rows; returns how many were written (0 when the write failed)."""
        rows, self.pending = self.pending, []
        if not rows:
            return 0
        try:
            async with self.db.connection() as con:
                await holds_db.log_placed_many(con, rows)
        except Exception as exc:  # analytics only: keep them for the next try, bounded
            log.warning("hold_log_flush_failed", rows=len(rows), error=repr(exc))
            self.pending = (rows + self.pending)[-MAX_PENDING:]
            return 0
        return len(rows)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            await self.flush()

    @contextlib.asynccontextmanager
    async def flushing(self) -> AsyncIterator[None]:
        """Flush every ``FLUSH_SECONDS`` for the duration of the block, and once more at its end."""
        try:
            async with background(self.run(), "hold-log"):
                yield
        finally:
            await self.flush()
