"""Analytics rollups: the leader adds what happened since its last step, every
``rollup_interval_seconds``; an operator can rebuild them from scratch.

Each step counts the bookings, cancellations and holds stamped between the watermark and a
horizon no later than the start of any open transaction, and moves the watermark, in one
transaction (``hub.db.rollups`` argues why nothing is counted twice or missed). So a step
may run anywhere, any number of times: after a restart or a leader change the next step
simply starts at the watermark the last committed step left, and a step cancelled half-way
(leadership lost) leaves nothing behind. The tables derived from the rollups for the
reports over all history (hourly totals, days per event, lead totals, users, cohorts) move
in the same statements, so they always equal their sums of the rollups.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import structlog

from hub import metrics
from hub.context import Hub
from hub.db import Database
from hub.db import rollups as rollups_db
from hub.db.rollups import RollupStep
from hub.leader import Fence, StaleLeader, current_fence

log = structlog.get_logger(__name__)

__all__ = ["RollupStep", "rebuild", "roll_up", "rollup_loop", "step"]


async def roll_up(hub: Hub, fence: Fence | None = None) -> RollupStep:
    """One incremental step: count what was stamped since the watermark.

    Args:
        fence: the leader's fencing token (``hub.leader``), checked in the step's
            transaction; None for a step asked for outside the leader's loop.

    Returns:
        What the step counted and how far the rollups now reach (``until``).
    """
    return await step(hub.db, fence)


async def step(db: Database, fence: Fence | None = None) -> RollupStep:
    """`roll_up` with only the database (the ``evently rollup`` command has no hub)."""
    async with db.connection() as con:
        done = await rollups_db.step(con, fence)
    lag = (dt.datetime.now(dt.UTC) - done.until).total_seconds()
    metrics.ROLLUP_STEPS.observe(done.seconds)
    metrics.ROLLUP_LAG.set(lag)
    for kind, rows in (
        ("bookings", done.bookings),
        ("cancellations", done.cancellations),
        ("holds", done.holds),
    ):
        metrics.ROLLUP_ROWS.labels(kind).inc(rows)
    _log("rollup_step", done, lag)
    return done


async def rebuild(db: Database) -> RollupStep:
    """Count the rollups again from scratch (after history was written with stamps of its
    own, or to check the incremental ones); readers wait for the one transaction."""
    async with db.connection() as con:
        done = await rollups_db.rebuild(con)
    _log("rollups_rebuilt", done, (dt.datetime.now(dt.UTC) - done.until).total_seconds())
    return done


async def rollup_loop(hub: Hub) -> None:
    """Leader loop: a step now (a new leader catches up at once), then one every
    ``rollup_interval_seconds``."""
    interval = hub.settings.rollup_interval_seconds
    fence = current_fence()  # the token of the lease this loop was started under
    while True:
        try:
            await roll_up(hub, fence)
        except asyncio.CancelledError:
            raise
        except StaleLeader as exc:
            log.warning("rollup_step_fenced", token=exc.token, current=exc.current)
        except Exception:
            log.exception("rollup_step_failed")
        await asyncio.sleep(interval)


def _log(name: str, step: RollupStep, lag: float) -> None:
    log.info(
        name,
        since=step.since.isoformat() if step.since else None,
        until=step.until.isoformat(),
        bookings=step.bookings,
        cancellations=step.cancellations,
        holds=step.holds,
        moved_events=step.moved_events,
        blind_sessions=step.blind_sessions,
        advanced=step.advanced,
        seconds=round(step.seconds, 4),
        lag_seconds=round(lag, 3),
    )
    if step.blind_sessions:
        # Sessions of another role hide their start: the horizon stays BLIND_LAG back.
        log.warning("rollup_horizon_held_back", blind_sessions=step.blind_sessions)
