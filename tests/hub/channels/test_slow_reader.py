"""One client that never reads does not slow the others: their delivery p99 with it
connected (and flooding the hub with resync requests) stays within 2x of their p99
without it, measured in interleaved rounds of a bounded number of seat changes."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Iterator

from hub.settings import Settings
from loadtest.client import WatchClient
from tests.hub.channels.conftest import WsServer, hold, loaded_event, serve
from tests.waiting import eventually

N_SEATS = 20_000  # a 20 KB msgpack / ~40 KB JSON snapshot: resyncs fill a buffer fast
READERS = 20
CHANGES_PER_ROUND = 50
ROUNDS = 2
GAP_SECONDS = 0.06  # above the 50 ms tick: each change goes out on its own, at once
# Below this a p99 is scheduler noise on a shared 2-core box, not a cost of the stalled
# client: the 2x bound is taken against at least this much. (The readers' p99 without the
# stalled client ranged 5-13 ms over runs of this test on one machine; a fresh-clone run
# failed a 5 ms floor at 4.95 ms alone against 10.49 ms beside. A stalled client that cost
# the others, e.g. snapshots written in the loop for its resync flood, shows in tens of ms.)
NOISE_FLOOR_SECONDS = 0.010


def _p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[98]


async def _latency(client: WatchClient, seq: int, started: float) -> float:
    await client.until_seq(seq)
    return time.monotonic() - started


async def _round(
    server: WsServer, event_id: uuid.UUID, readers: list[WatchClient], seats: Iterator[int]
) -> list[float]:
    """Latencies (seconds) of every reader for ``CHANGES_PER_ROUND`` single-seat changes."""
    samples: list[float] = []
    for _ in range(CHANGES_PER_ROUND):
        started = time.monotonic()
        _, seq = await hold(server.hub, event_id, next(seats))
        samples += await asyncio.wait_for(
            asyncio.gather(*(_latency(c, seq, started) for c in readers)), 10
        )
        await asyncio.sleep(GAP_SECONDS)
    return samples


@contextlib.asynccontextmanager
async def _stalled(server: WsServer, event_id: uuid.UUID) -> AsyncIterator[None]:
    """A client that never reads and keeps asking for snapshots, while the block runs."""
    stalled = await WatchClient.open(server.event_url(event_id), subprotocol="json", max_queue=1)

    async def flood() -> None:
        while True:
            await stalled.send({"t": "resync"})
            await asyncio.sleep(0.005)

    flooding = asyncio.get_running_loop().create_task(flood())
    try:
        # the hub has written all it will and holds the rest back: the client is behind
        assert await eventually(lambda: len(server.hub.channels.behind) == 1, within=15)
        yield
        assert len(server.hub.channels.behind) == 1, "the stalled client was let go early"
    finally:
        flooding.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flooding
        stalled.ws.transport.abort()
        await eventually(lambda: not server.hub.channels.behind, within=5)


async def test_a_client_that_never_reads_does_not_raise_the_others_p99(
    settings: Settings,
) -> None:
    patient = settings.replace(
        ws_tick_ms=50,
        ws_backlog_bytes=64 * 1024,
        ws_behind_seconds=120.0,  # the stalled client stays for the whole measurement
        ws_max_per_ip=10_000,
    )
    async with serve(patient) as server:
        event_id = await loaded_event(server.hub, N_SEATS)
        readers = [await WatchClient.open(server.event_url(event_id)) for _ in range(READERS)]
        for reader in readers:
            await reader.next_seat_message()
        seats = itertools.count()
        await _round(server, event_id, readers, seats)  # warm-up, not counted
        alone: list[float] = []
        beside: list[float] = []
        for _ in range(ROUNDS):
            alone += await _round(server, event_id, readers, seats)
            async with _stalled(server, event_id):
                beside += await _round(server, event_id, readers, seats)
        for reader in readers:
            await reader.close()
    p99_alone, p99_beside = _p99(alone), _p99(beside)
    print(
        f"\n{READERS} readers x {CHANGES_PER_ROUND * ROUNDS} changes each way: "
        f"p99 alone {p99_alone * 1000:.2f} ms, beside a stalled client "
        f"{p99_beside * 1000:.2f} ms ({p99_beside / p99_alone:.2f}x); "
        f"median {statistics.median(alone) * 1000:.2f} / {statistics.median(beside) * 1000:.2f} ms"
    )
    assert all(r.mirror.gaps == 0 for r in readers)
    assert p99_beside <= 2 * max(p99_alone, NOISE_FLOOR_SECONDS), (p99_alone, p99_beside)
