"""SQL for the leader's fencing token in PostgreSQL (``migrations/009_leader_fence.sql``).

A leader's token is issued with its lease (``hub/lua/lease_acquire.lua``) and only grows.
Every transaction in which the leader writes calls `hold` first: it raises the lease's row
to the leader's token if it is lower (the new leader's first write), then takes the row FOR
SHARE and refuses unless it holds exactly that token. So once a newer leader has written, a
stepped-down one that wakes up late cannot commit anything; and a newer leader's first
write waits for a late one's transaction that already holds the row, so the two never
interleave. The writes of one leader share the row (FOR SHARE) and run in parallel: the
UPDATE locks the row only when it raises it.
"""

from __future__ import annotations

from hub.db import Connection
from hub.leader import Fence, StaleLeader


async def hold(con: Connection, fence: Fence) -> None:
    """Check, inside the caller's transaction, that ``fence`` is the current leader's.

    Raises:
        StaleLeader: a newer leader has written (the transaction must not commit).
    """
    await con.execute(
        "INSERT INTO leader_fence (lease, token) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        fence.lease,
        fence.token,
    )
    await con.execute(
        "UPDATE leader_fence SET token = $2 WHERE lease = $1 AND token < $2",
        fence.lease,
        fence.token,
    )
    current = await con.fetchval(
        "SELECT token FROM leader_fence WHERE lease = $1 FOR SHARE", fence.lease
    )
    if current != fence.token:
        raise StaleLeader(fence.token, current)


async def current(con: Connection, lease: str) -> int | None:
    """The highest token PostgreSQL has seen for the lease ``lease``."""
    token = await con.fetchval("SELECT token FROM leader_fence WHERE lease = $1", lease)
    return None if token is None else int(token)
