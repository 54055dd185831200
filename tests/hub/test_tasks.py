"""A failed request's clean-up (``hub.cleanups.settle``): it runs to its end whatever
becomes of the request, but the request waits for it only briefly, its errors never replace
the request's own, one request's clean-ups run in the order asked for, and shutdown waits
for them a while, then cancels the rest."""

from __future__ import annotations

import asyncio
import time

import pytest
import structlog
from structlog.testing import capture_logs

from hub import tasks


@pytest.fixture(autouse=True)
def fresh_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """A logger not used yet: the hub's loggers cache their processors on first use, and
    one that an earlier test used no longer reaches ``capture_logs``."""
    monkeypatch.setattr(tasks, "log", structlog.get_logger(tasks.__name__))


@pytest.fixture
def cleanups() -> tasks.CleanUps:
    return tasks.CleanUps()


async def test_a_clean_up_that_hangs_keeps_the_caller_only_briefly_and_still_finishes(
    cleanups: tasks.CleanUps,
) -> None:
    release = asyncio.Event()
    done: list[str] = []

    async def cleanup() -> None:
        await release.wait()  # a server that stopped answering
        done.append("cleaned")

    started = time.monotonic()
    with capture_logs() as logs:
        await cleanups.settle(cleanup(), "hanging")
    waited = time.monotonic() - started
    assert tasks.SETTLE_WAIT_SECONDS <= waited < tasks.SETTLE_WAIT_SECONDS + 0.5
    assert done == [] and [e["event"] for e in logs] == ["cleanup_in_background"]
    release.set()
    await cleanups.drain(within=2)
    assert done == ["cleaned"]


async def test_a_quick_clean_up_is_done_when_the_caller_goes_on(cleanups: tasks.CleanUps) -> None:
    done: list[str] = []

    async def cleanup() -> None:
        await asyncio.sleep(0)
        done.append("cleaned")

    started = time.monotonic()
    await cleanups.settle(cleanup(), "quick")
    assert done == ["cleaned"] and time.monotonic() - started < tasks.SETTLE_WAIT_SECONDS


async def test_a_failing_clean_up_is_logged_and_not_raised(cleanups: tasks.CleanUps) -> None:
    async def cleanup() -> None:
        raise ConnectionError("Redis went away")

    with capture_logs() as logs:
        await cleanups.settle(cleanup(), "failing")
    failed = [e for e in logs if e["event"] == "cleanup_failed"]
    assert failed and failed[0]["task"] == "failing" and "Redis went away" in failed[0]["error"]


async def test_a_cancelled_caller_leaves_its_clean_up_running(cleanups: tasks.CleanUps) -> None:
    release = asyncio.Event()
    done: list[str] = []

    async def cleanup() -> None:
        await release.wait()
        done.append("cleaned")

    caller = asyncio.create_task(cleanups.settle(cleanup(), "orphaned"))
    await asyncio.sleep(0.05)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    release.set()
    await cleanups.drain(within=2)
    assert done == ["cleaned"]


async def test_one_callers_clean_ups_run_in_the_order_asked_for(cleanups: tasks.CleanUps) -> None:
    """The second starts only when the first has ended, even if the caller stopped waiting
    for the first (a booking's undo puts the hold back before the release frees it)."""
    release = asyncio.Event()
    order: list[str] = []

    async def first() -> None:
        await release.wait()
        order.append("undo")

    async def second() -> None:
        order.append("release")

    async def caller() -> None:
        await cleanups.settle(first(), "undo")
        await cleanups.settle(second(), "release")

    await caller()
    assert order == []  # both past the wait, the second queued behind the first
    release.set()
    await cleanups.drain(within=2)
    assert order == ["undo", "release"]


async def test_shutdown_waits_for_clean_ups_a_while_then_cancels_the_rest(
    cleanups: tasks.CleanUps,
) -> None:
    done: list[str] = []

    async def quick() -> None:
        await asyncio.sleep(0.5)
        done.append("quick")

    async def stuck() -> None:
        await asyncio.Event().wait()

    await cleanups.settle(quick(), "quick")
    await cleanups.settle(stuck(), "stuck")
    ended = asyncio.create_task(cleanups.drain(within=1.0))
    with capture_logs() as logs:
        await asyncio.wait_for(ended, 3)
    assert done == ["quick"]
    assert [e["count"] for e in logs if e["event"] == "cleanups_cancelled"] == [1]
