"""The offload child: its own process and hub, niced, errors carried back, replaced when it dies."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from concurrent.futures.process import BrokenProcessPool

import pytest

from hub.context import Hub, open_hub
from hub.errors import NotFound, ServiceUnavailable
from hub.offload import Offload
from hub.settings import Settings
from tests.waiting import eventually


async def _whoami(hub: Hub, tag: str) -> tuple[int, int, str, int]:
    async with hub.db.connection() as con:
        one = await con.fetchval("SELECT 1")
    return os.getpid(), os.nice(0), tag, one


async def _refuse(hub: Hub) -> None:
    raise NotFound("No such thing: 42")


async def test_a_job_runs_in_a_niced_child_with_its_own_hub(settings: Settings) -> None:
    offload = Offload(settings.replace(offload_nice=7), open_hub)
    try:
        pid, nice, tag, one = await offload.run(_whoami, "first")
        again, _, _, _ = await offload.run(_whoami, "second")
    finally:
        await offload.stop()
    assert pid != os.getpid()
    assert again == pid  # the child is kept for the next run
    assert nice >= 7 + os.nice(0)
    assert (tag, one) == ("first", 1)


async def test_a_jobs_typed_error_reaches_the_caller(settings: Settings) -> None:
    offload = Offload(settings, open_hub)
    try:
        with pytest.raises(NotFound, match="No such thing: 42"):
            await offload.run(_refuse)
        assert (await offload.run(_whoami, "after"))[2] == "after"
    finally:
        await offload.stop()


async def test_a_dead_child_fails_one_call_and_is_replaced(settings: Settings) -> None:
    offload = Offload(settings, open_hub)
    try:
        pid = (await offload.run(_whoami, "x"))[0]
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(ServiceUnavailable):
            await offload.run(_whoami, "y")
        replaced = (await offload.run(_whoami, "z"))[0]
    finally:
        await offload.stop()
    assert replaced != pid


async def test_stop_ends_the_child(settings: Settings) -> None:
    offload = Offload(settings, open_hub)
    pid = (await offload.run(_whoami, "x"))[0]
    await offload.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def _linger(hub: Hub, seconds: float) -> None:
    await asyncio.sleep(seconds)


async def test_stop_kills_a_child_whose_run_outlasts_the_grace(settings: Settings) -> None:
    offload = Offload(settings, open_hub)
    pid = (await offload.run(_whoami, "x"))[0]
    running = asyncio.create_task(offload.run(_linger, 60.0))
    await asyncio.sleep(0.3)  # the run has reached the child
    started = time.monotonic()
    await offload.stop(grace=0.5)
    assert time.monotonic() - started < 10  # not the run's 60 s
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises((ServiceUnavailable, BrokenProcessPool, asyncio.CancelledError)):
        await running


async def test_an_idle_child_is_stopped_and_started_again_by_the_next_run(
    settings: Settings,
) -> None:
    """A worker that ran one job (or a leader that lost its lease) does not keep a child."""
    offload = Offload(settings, open_hub, idle_seconds=0.4)
    try:
        pid = (await offload.run(_linger_then_whoami, 0.8))[0]  # a run longer than idle
        assert offload.child_running
        assert await eventually(lambda: _gone(pid), within=15)
        assert not offload.child_running
        assert (await offload.run(_whoami, "again"))[0] != pid
    finally:
        await offload.stop()


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def _linger_then_whoami(hub: Hub, seconds: float) -> tuple[int, int, str, int]:
    await asyncio.sleep(seconds)
    return await _whoami(hub, "lingered")
