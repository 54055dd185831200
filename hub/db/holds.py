"""SQL for the hold log: every hold placed and what became of it."""

from __future__ import annotations

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


async def log_outcome(
    con: Connection,
    hold_id: uuid.UUID,
    event_id: uuid.UUID,
    user_id: uuid.UUID,
    seats: int,
    outcome: str,
) -> None:
    """Record how a hold ended; inserts the row when the "placed" write never happened."""
    await con.execute(
        """INSERT INTO hold_log (hold_id, event_id, user_id, seats, outcome, ended_at)
           VALUES ($1, $2, $3, $4, $5, now())
           ON CONFLICT (hold_id) DO UPDATE SET outcome = EXCLUDED.outcome, ended_at = now()""",
        hold_id,
        event_id,
        user_id,
        seats,
        outcome,
    )


async def log_placed_many(
    con: Connection, rows: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID, int]]
) -> None:
    await con.executemany(
        "INSERT INTO hold_log (hold_id, event_id, user_id, seats) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (hold_id) DO NOTHING",
        rows,
    )
