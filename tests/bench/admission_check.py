"""``python -m tests.bench.admission_check``: what the waiting room's check costs one hold.

Times ``waiting_room.require_admission`` itself, in process, as the hold path calls it:
with no room on the event (a set lookup in the live registry), and with a room on and a
valid token (the lookup plus the cached token check), the first call of a token (its
signature verified) apart. Beside the hold path's own server time (a few milliseconds of
CPU a hold, BENCHMARKS.md) these microseconds are the check's whole cost: it makes no
round trip while the registry is live. Prints microseconds per call (median of 5 rounds).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid
from types import SimpleNamespace
from typing import Any

from hub.services.waiting_room import require_admission
from hub.waiting_rooms import AdmissionTokens, RoomRegistry

CALLS = 100_000


async def _round(hub: Any, user: uuid.UUID, event: uuid.UUID, token: str | None) -> float:
    started = time.perf_counter()
    for _ in range(CALLS):
        await require_admission(hub, user, event, token)
    return (time.perf_counter() - started) / CALLS * 1e6


async def main() -> int:
    registry = RoomRegistry()
    registry.replace(set())
    tokens = AdmissionTokens("bench-secret-key-that-is-long-enough")
    hub: Any = SimpleNamespace(rooms=registry, admission_tokens=tokens, store=None)
    user, off_event, on_event = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    registry.mark(on_event, True)
    token = tokens.issue(user, on_event, int(time.time()) + 3600)
    off = [await _round(hub, user, off_event, None) for _ in range(5)]
    on = [await _round(hub, user, on_event, token) for _ in range(5)]
    fresh: list[float] = []
    for _ in range(2000):
        new = tokens.issue(user, on_event, int(time.time()) + 3600 + len(fresh))
        started = time.perf_counter()
        await require_admission(hub, user, on_event, new)
        fresh.append((time.perf_counter() - started) * 1e6)
    print(
        f"require_admission: no room {statistics.median(off):.2f} us/call; room on, "
        f"known token {statistics.median(on):.2f} us/call; room on, a token's first call "
        f"{statistics.median(fresh):.1f} us (signature checked)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
