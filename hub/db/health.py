"""SQL for the health report: what PostgreSQL says about itself and the hub's backlogs.

One statement, one round trip: every figure is a count over a partial index
(``outbox_pending_idx``, ``bookings_refunds_pending_idx``) or over ``pg_stat_activity``
(one row per server connection), so it stays a fraction of a millisecond however large the
tables grow. Sessions are counted for the hub's own database only.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from hub.db import Connection

_REPORT = """
WITH sessions AS (
    SELECT state, wait_event_type, query_start, xact_start
      FROM pg_stat_activity
     WHERE datname = current_database() AND pid <> pg_backend_pid()
       AND backend_type = 'client backend'
)
SELECT
    (SELECT count(*) FROM sessions) AS connections,
    (SELECT count(*) FROM sessions WHERE state = 'active') AS active,
    (SELECT count(*) FROM sessions
      WHERE state = 'active' AND query_start < now() - make_interval(secs => $1)) AS slow,
    (SELECT count(*) FROM sessions WHERE wait_event_type = 'Lock') AS waiting,
    (SELECT count(*) FROM sessions
      WHERE state LIKE 'idle in transaction%'
        AND xact_start < now() - make_interval(secs => $1)) AS idle_in_transaction,
    (SELECT coalesce(max(extract(epoch FROM now() - query_start)), 0)::float8
       FROM sessions WHERE state = 'active') AS longest_seconds,
    (SELECT count(*) FROM outbox WHERE sent_at IS NULL) AS outbox_pending,
    (SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8
       FROM outbox WHERE sent_at IS NULL) AS outbox_oldest_seconds,
    (SELECT count(*) FROM bookings WHERE refund_status IN ('due', 'failed')) AS refunds_due,
    (SELECT count(*) FROM bookings WHERE refund_status IN ('due', 'failed')
        AND refund_attempts > 0) AS refunds_retrying,
    (SELECT coalesce(array_agg(id), '{}') FROM events
      WHERE status = 'scheduled' AND starts_at > now() - interval '1 day') AS live_events
"""


@dataclass(frozen=True, slots=True)
class Report:
    """PostgreSQL's view: sessions of the hub's database (besides the one asking) and the
    backlogs the leader works off."""

    connections: int
    active: int
    # Statements running longer than the slow threshold.
    slow: int
    # Sessions waiting for a lock.
    waiting: int
    # Transactions left open (idle) longer than the slow threshold.
    idle_in_transaction: int
    longest_seconds: float
    outbox_pending: int
    outbox_oldest_seconds: float
    # Refunds recorded as due and not paid yet; those whose payment failed at least once.
    refunds_due: int
    refunds_retrying: int
    # Events that can still have holds (the same set as the leader's expiry sweep).
    live_events: list[uuid.UUID]


async def report(con: Connection, slow_seconds: float) -> Report:
    row = await con.fetchrow(_REPORT, float(slow_seconds))
    assert row is not None
    return Report(
        connections=int(row["connections"]),
        active=int(row["active"]),
        slow=int(row["slow"]),
        waiting=int(row["waiting"]),
        idle_in_transaction=int(row["idle_in_transaction"]),
        longest_seconds=float(row["longest_seconds"]),
        outbox_pending=int(row["outbox_pending"]),
        outbox_oldest_seconds=float(row["outbox_oldest_seconds"]),
        refunds_due=int(row["refunds_due"]),
        refunds_retrying=int(row["refunds_retrying"]),
        live_events=list(row["live_events"]),
    )
