"""SQL for the hold log: every hold placed and what became of it."""

from __future__ import annotations

import datetime as dt
import uuid

from hub.db import Connection, Record
from hub.db import events as events_db


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


async def recently_held(con: Connection, *, seconds: float, scan: int, limit: int) -> list[Record]:
    """The upcoming scheduled events with the most holds placed in the last ``seconds``,
    most first, at most ``limit``: event rows (``hub.db.events.COLUMNS``) and ``holds``.

    Bounded whatever the load: a backward range scan of ``hold_log_created_idx`` reads
    at most the ``scan`` newest rows of the window, so in a surge the counts are over the
    most recent ``scan`` holds rather than the whole window."""
    return list(
        await con.fetch(
            f"""SELECT {events_db.COLUMNS}, recent.holds
                  FROM (SELECT event_id, count(*) AS holds
                          FROM (SELECT event_id FROM hold_log
                                 WHERE created_at > now() - make_interval(secs => $1)
                                 ORDER BY created_at DESC LIMIT $2) newest
                         GROUP BY event_id) recent
                  JOIN events e ON e.id = recent.event_id
                  JOIN venues v ON v.id = e.venue_id
                 WHERE e.status = 'scheduled' AND e.starts_at >= now()
                 ORDER BY recent.holds DESC, e.starts_at, e.id
                 LIMIT $3""",
            float(seconds),
            int(scan),
            int(limit),
        )
    )
