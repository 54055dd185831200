"""Circuit breakers: closed → open after N failures, refused at once while open, one trial
when half-open, answers and cancellations are not failures, timeouts are, metrics and the
public view follow, and an opening is shared with the other processes through Redis."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest

from hub.breakers import Breaker, BreakerOpen, Breakers
from hub.context import Hub
from hub.metrics import BREAKER_FAILURES, BREAKER_REJECTIONS, BREAKER_TRANSITIONS, total
from hub.settings import Settings
from tests.hub.breaker_helpers import forget_shared
from tests.waiting import eventually


class Declined(Exception):
    pass


class Flaky:
    """A service that fails (``error``) while ``down``, and counts the calls it sees."""

    def __init__(self) -> None:
        self.down = True
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        await asyncio.sleep(0)
        if self.down:
            raise ConnectionError("service down")
        return "ok"


def make(threshold: int = 3, reset: float = 0.3, name: str = "payments") -> Breaker:
    return Breaker(name, threshold=threshold, reset_seconds=reset)


async def fail(breaker: Breaker, service: Flaky, times: int) -> None:
    for _ in range(times):
        with pytest.raises(ConnectionError):
            await breaker.call(service)


async def test_opens_after_threshold_and_refuses_at_once() -> None:
    breaker, service = make(threshold=3, reset=30), Flaky()
    failures_before = total(BREAKER_FAILURES, breaker="payments")
    await fail(breaker, service, 2)
    assert breaker.state == "closed" and breaker.view()["failures"] == 2
    await fail(breaker, service, 1)
    assert breaker.state == "open"
    assert total(BREAKER_FAILURES, breaker="payments") - failures_before == 3

    refused_before = total(BREAKER_REJECTIONS, breaker="payments")
    started = time.perf_counter()
    with pytest.raises(BreakerOpen) as refused:
        await breaker.call(service)
    assert time.perf_counter() - started < 0.05
    assert service.calls == 3  # not called while open
    assert 29 <= refused.value.retry_after <= 30
    assert "service down" in (refused.value.last_error or "")
    assert total(BREAKER_REJECTIONS, breaker="payments") - refused_before == 1
    with pytest.raises(BreakerOpen):
        breaker.check()

    view = breaker.view()
    assert view["state"] == "open" and view["failures"] == 3
    assert "ConnectionError" in view["last_error"]
    changed = dt.datetime.fromisoformat(view["changed_at"])
    assert abs((dt.datetime.now(dt.UTC) - changed).total_seconds()) < 5


async def test_a_success_resets_the_count() -> None:
    breaker, service = make(threshold=3), Flaky()
    await fail(breaker, service, 2)
    service.down = False
    assert await breaker.call(service) == "ok"
    service.down = True
    await fail(breaker, service, 2)
    assert breaker.state == "closed"


async def test_recovers_through_half_open() -> None:
    breaker, service = make(threshold=2, reset=0.3), Flaky()
    opened_before = total(BREAKER_TRANSITIONS, breaker="payments", state="open")
    await fail(breaker, service, 2)
    await asyncio.sleep(0.35)
    assert breaker.state == "half_open"
    # A failed trial opens it again, for a full reset period.
    await fail(breaker, service, 1)
    assert breaker.state == "open"
    assert total(BREAKER_TRANSITIONS, breaker="payments", state="open") - opened_before == 2
    with pytest.raises(BreakerOpen):
        await breaker.call(service)
    await asyncio.sleep(0.35)
    service.down = False
    assert await breaker.call(service) == "ok"
    assert breaker.view()["state"] == "closed" and breaker.view()["failures"] == 0
    assert await breaker.call(service) == "ok"


async def test_half_open_lets_one_trial_through() -> None:
    breaker = make(threshold=1, reset=0.2)
    release = asyncio.Event()
    calls = 0

    async def slow() -> str:
        nonlocal calls
        calls += 1
        await release.wait()
        return "ok"

    with pytest.raises(ConnectionError):
        await breaker.call(Flaky())
    await asyncio.sleep(0.25)
    trial = asyncio.ensure_future(breaker.call(slow))
    await asyncio.sleep(0.05)
    with pytest.raises(BreakerOpen) as refused:
        await breaker.call(slow)
    assert refused.value.retry_after == 1
    release.set()
    assert await trial == "ok"
    assert calls == 1 and breaker.state == "closed"


async def test_answers_are_not_failures() -> None:
    breaker = make(threshold=2)

    async def declines() -> None:
        raise Declined("card refused")

    for _ in range(5):
        with pytest.raises(Declined):
            await breaker.call(declines, answers=(Declined,))
    assert breaker.state == "closed" and breaker.view()["failures"] == 0


async def test_a_call_past_its_limit_is_a_failure() -> None:
    breaker = make(threshold=2)

    async def hangs() -> None:
        await asyncio.sleep(5)

    started = time.perf_counter()
    for _ in range(2):
        with pytest.raises(TimeoutError):
            await breaker.call(hangs, limit_s=0.05)
    assert time.perf_counter() - started < 1
    assert breaker.state == "open"
    assert "TimeoutError" in (breaker.view()["last_error"] or "")


async def test_a_cancelled_call_is_no_verdict() -> None:
    breaker = make(threshold=1)

    async def hangs() -> None:
        await asyncio.sleep(5)

    task = asyncio.ensure_future(breaker.call(hangs))
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert breaker.state == "closed" and breaker.view()["failures"] == 0


def test_states_shape() -> None:
    states = Breakers(Settings()).states()
    assert set(states) == {"payments", "email"}
    for view in states.values():
        assert view == {"state": "closed", "last_error": None, "changed_at": None, "failures": 0}


async def test_an_opening_is_shared_with_other_processes(hub: Hub) -> None:
    settings = hub.settings.replace(breaker_failure_threshold=2, breaker_reset_seconds=1.0)
    # Two processes' breakers: the same Redis, separate state machines.
    first, second = Breakers(settings, hub.store), Breakers(settings, hub.store)
    try:
        service = Flaky()
        await fail(first.email, service, 2)
        assert first.email.state == "open"

        async def shared() -> bool:
            await second.refresh()
            return second.email.state == "open"

        assert await eventually(shared, within=2)
        assert "service down" in (second.states()["email"]["last_error"] or "")
        calls = service.calls
        with pytest.raises(BreakerOpen):
            await second.email.call(service)
        assert service.calls == calls
        # It reopens for a trial when the first process's opening ends, not later.
        assert second.email.retry_after() <= 1
        await asyncio.sleep(1.05)
        service.down = False
        assert await second.email.call(service) == "ok"
        assert second.email.state == "closed"
        assert second.payments.state == "closed"
    finally:
        await forget_shared(hub)
