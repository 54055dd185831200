"""SQL for the hold log: every hold placed and what became of it."""

from __future__ import annotations

import datetime as dt
import uuid

from hub.db import Connection


async def log_placed(
    con: Connection, hold_id: uuid.UUID, event_id: uuid.UUID, user_id: uuid.UUID, seats: int
) -> None:
    await con.execute(
        "INSERT INTO hold_log (hold_id, event_id, user_id, seats) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (hold_id) DO NOTHING",
        hold_id,
        event_id,
        user_id,
        seats,
    )


async def log_outcomes_many(
    con: Connection,
    rows: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID, int, str, dt.datetime]],
) -> None:
    """Record how holds ended (each with the time it did), in one batch."""
    await con.executemany(
        """INSERT INTO hold_log (hold_id, event_id, user_id, seats, outcome, ended_at)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (hold_id) DO UPDATE SET outcome = EXCLUDED.outcome,
                                               ended_at = EXCLUDED.ended_at""",
        rows,
    )


async def log_placed_many(
    con: Connection, rows: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID, int]]
) -> None:
    await con.executemany(
        "INSERT INTO hold_log (hold_id, event_id, user_id, seats) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (hold_id) DO NOTHING",
        rows,
    )
