"""The event-loop lag probe: a loop held busy shows in the lag histogram, an idle one not."""

from __future__ import annotations

import asyncio
import time

from hub import loop_lag, metrics
from hub.tasks import background


def _counts() -> tuple[tuple[float, ...], tuple[float, ...]]:
    return metrics.histogram_buckets(metrics.LOOP_LAG, None)


def _over(
    before: tuple[float, ...], after: tuple[float, ...], bounds: tuple[float, ...], s: float
) -> float:
    """Observations above ``s`` seconds between two readings of the cumulative buckets."""
    at = bounds.index(s)
    return (after[-1] - after[at]) - (before[-1] - before[at])


async def test_a_busy_loop_shows_as_lag_and_an_idle_one_does_not() -> None:
    async with background(loop_lag.probe_loop(), "probe"):
        await asyncio.sleep(2 * loop_lag.PROBE_SECONDS)
        bounds, before = _counts()
        await asyncio.sleep(0.3)  # idle: the probe wakes on time
        _, idle = _counts()
        assert idle[-1] - before[-1] >= 3  # it kept sampling
        assert _over(before, idle, bounds, 0.25) == 0
        time.sleep(0.4)  # noqa: ASYNC251 - the stall under test
        await asyncio.sleep(2 * loop_lag.PROBE_SECONDS)
        _, busy = _counts()
        # The wake-up that came 0.35 s+ late (one per probe running: the suite's app has its own).
        assert _over(idle, busy, bounds, 0.25) >= 1
