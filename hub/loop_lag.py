"""How late this process's event loop runs: a timer set every ``PROBE_SECONDS`` notes how
much later than asked it woke (``evently_event_loop_lag_seconds``).

A request that arrives while the loop is busy — a long synchronous stretch, a garbage
collection, the operating system giving the core to another process — waits at least that
long, whatever its route: a lag histogram shows stalls that no route's latency can be blamed
for. (Tried as a second signal for the waiting room's controller and not kept: its p99 went
over 100 ms only in real stalls, not while the hub was merely saturated; see BENCHMARKS.md.)
"""

from __future__ import annotations

import asyncio

from hub import metrics

PROBE_SECONDS = 0.05


async def probe_loop() -> None:
    """Observe the loop's lag every ``PROBE_SECONDS``, until cancelled."""
    loop = asyncio.get_running_loop()
    while True:
        asked = loop.time() + PROBE_SECONDS
        await asyncio.sleep(PROBE_SECONDS)
        metrics.LOOP_LAG.observe(max(loop.time() - asked, 0.0))
