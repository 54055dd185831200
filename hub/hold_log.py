"""The hold log's writer: holds placed and how they ended, recorded in batches, off the hot path.

Every hold placed goes into ``hold_log`` (the conversion figures come from it), and so
does how it ended (released, expired, cancelled; "booked" is written by the booking's own
transaction). Writing each in its own round trip cost a surge an eighth of its hold time
(and a release a third of its time), so each process buffers them and writes a batch every
``FLUSH_SECONDS``. Outcomes are upserts that do not need the placed row first, and carry
the time they happened, so the order of writes does not matter. A crash loses at most the
unflushed buffer of analytics rows, never a hold or a booking.

The writer needs only the database: the hub holds one (``hub.hold_log``), so this module
sits below ``hub.context`` and imports nothing that imports the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
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
Outcome = tuple[uuid.UUID, uuid.UUID, uuid.UUID, int, str, dt.datetime]


class HoldLogWriter:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.pending: list[Row] = []
        self.outcomes: list[Outcome] = []

    def add(self, hold_id: uuid.UUID, event_id: uuid.UUID, user_id: uuid.UUID, seats: int) -> None:
        self.pending.append((hold_id, event_id, user_id, seats))

    def ended(
        self, hold_id: uuid.UUID, event_id: uuid.UUID, user_id: uuid.UUID, seats: int, outcome: str
    ) -> None:
        """How a hold ended, stamped now."""
        self.outcomes.append((hold_id, event_id, user_id, seats, outcome, dt.datetime.now(dt.UTC)))

    async def flush(self) -> int:
        """Write the buffered rows; returns how many were written (0 when the write failed)."""
        rows, self.pending = self.pending, []
        outcomes, self.outcomes = self.outcomes, []
        if not rows and not outcomes:
            return 0
        try:
            async with self.db.transaction() as con:
                if rows:
                    await holds_db.log_placed_many(con, rows)
                if outcomes:
                    await holds_db.log_outcomes_many(con, outcomes)
        except Exception as exc:  # analytics only: keep them for the next try, bounded
            log.warning("hold_log_flush_failed", rows=len(rows) + len(outcomes), error=repr(exc))
            self.pending = (rows + self.pending)[-MAX_PENDING:]
            self.outcomes = (outcomes + self.outcomes)[-MAX_PENDING:]
            return 0
        return len(rows) + len(outcomes)

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
