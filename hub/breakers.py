"""Circuit breakers around the hub's external services: the payment provider and email.

Each breaker is closed (calls go through), open (calls are refused at once with
``BreakerOpen``, which carries how long until the next try) or half-open (one trial call
goes through; its success closes the breaker, its failure opens it again). The state
machine is purgatory's (``purgatory.domain.model.Context``: closed → open after
``threshold`` consecutive failures, open → half-open after ``reset_seconds``); this module
adds what the hub needs around it:

- which outcomes count: a call that raises an exception the caller names as an *answer*
  (a declined payment) is a success for the breaker; a timeout (``limit_s`` seconds) or any
  other exception is a failure; a cancelled call (the request went away) is neither;
- at most one trial call in flight while half-open (purgatory lets every caller through);
- prometheus metrics (state gauge, failures, transitions, refused calls) and one structlog
  line per state change;
- the shared view: a breaker that opens writes ``{prefix}breaker:{name}`` to Redis with
  the reset timeout as its TTL; every process reads that key at most once a second on its
  call path (and on ``Breakers.refresh``) and opens its own breaker until the same moment.
  So an outage seen by one worker turns the others away within a second instead of after
  ``threshold`` failures of their own. Each process still keeps its own state machine, and
  a Redis outage only loses the sharing (logged, never raised).

purgatory's own Redis storage is not used: its ``redis`` extra pins ``redis<6`` (the hub
pins redis 8), and it would read Redis on every call.

``Breakers.states()`` is the public view read by the health report and the admin stream::

    {"payments": {"state": "closed" | "open" | "half_open", "last_error": str | None,
                  "changed_at": ISO 8601 str | None, "failures": int},
     "email": {...}}
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog
from purgatory.domain.messages.events import ContextChanged
from purgatory.domain.model import HALF_OPENED, OPENED, Context, OpenedState

from hub.metrics import BREAKER_FAILURES, BREAKER_REJECTIONS, BREAKER_STATE, BREAKER_TRANSITIONS
from hub.settings import Settings
from hub.store import Store

log = structlog.get_logger(__name__)

T = TypeVar("T")

PAYMENTS = "payments"
EMAIL = "email"
# How often a process reads the shared state of a breaker on its call path.
SHARED_POLL_S = 1.0
# Our names for purgatory's states, as the public view and the metrics spell them.
_STATE_NAMES = {"closed": "closed", OPENED: "open", HALF_OPENED: "half_open"}
_GAUGE = {"closed": 0, "half_open": 1, "open": 2}


class BreakerOpen(Exception):
    """The breaker refused the call without trying it.

    Attributes:
        name: the breaker's name.
        retry_after: whole seconds (at least 1) until the breaker lets a trial call through.
    """

    def __init__(self, name: str, retry_after: int, last_error: str | None) -> None:
        super().__init__(f"the {name} circuit is open (last error: {last_error})")
        self.name = name
        self.retry_after = retry_after
        self.last_error = last_error


class Breaker:
    """One circuit breaker; ``call`` runs a coroutine function through it."""

    def __init__(
        self,
        name: str,
        *,
        threshold: int,
        reset_seconds: float,
        store: Store | None = None,
    ) -> None:
        self.name = name
        self.threshold = threshold
        self.reset_seconds = reset_seconds
        self._store = store
        self._key = store.keys.global_(f"breaker:{name}") if store else ""
        self._ctx = Context(name, threshold, reset_seconds)
        self._failures = 0
        self._last_error: str | None = None
        self._changed_at: float | None = None
        self._trial = False
        self._polled = 0.0
        self._gauge = BREAKER_STATE.labels(breaker=name)
        self._gauge.set(0)
        self._failed = BREAKER_FAILURES.labels(breaker=name)
        self._refused = BREAKER_REJECTIONS.labels(breaker=name)
        self._publishing: set[asyncio.Task[None]] = set()

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half_open``; an open breaker past its reset timeout is
        reported ``half_open``: its next call is the trial."""
        state = _STATE_NAMES[self._ctx.state]
        if state == "open" and self._retry_after_s() <= 0:
            return "half_open"
        return state

    def view(self) -> dict[str, Any]:
        """This breaker's entry of ``Breakers.states()``.

        ``failures`` is the number of consecutive failures counted since the last success
        (what opens the breaker at ``threshold``); ``last_error`` the latest failure's
        ``repr`` (kept after recovery); ``changed_at`` the last state change, or None.
        """
        return {
            "state": self.state,
            "last_error": self._last_error,
            "changed_at": _iso(self._changed_at),
            "failures": self._failures,
        }

    def check(self) -> None:
        """Raise ``BreakerOpen`` if a call now would be refused (changes nothing)."""
        state = self.state
        if state == "open" or (state == "half_open" and self._trial):
            self._refused.inc()
            raise BreakerOpen(self.name, self.retry_after(), self._last_error)

    def retry_after(self) -> int:
        """Whole seconds until a trial call may go through (at least 1)."""
        return max(1, math.ceil(self._retry_after_s()))

    async def call(
        self,
        fn: Callable[[], Awaitable[T]],
        *,
        limit_s: float | None = None,
        answers: tuple[type[BaseException], ...] = (),
    ) -> T:
        """Run ``fn()`` through the breaker.

        Args:
            limit_s: seconds the call may take; past it the call is cancelled, counted as a
                failure and ``TimeoutError`` raised.
            answers: exception types that are the service's answer, not its failure (a
                declined payment): re-raised, counted as a success.

        Raises:
            BreakerOpen: refused without calling ``fn`` (open, or half-open with its trial
                call in flight).
            TimeoutError: the call exceeded ``limit_s``.
            Exception: whatever ``fn`` raised.
        """
        await self._poll_shared()
        self.check()
        ctx = self._ctx
        try:
            ctx.handle_new_request()  # open past its timeout → half-open, else raises
        except OpenedState:
            self._refused.inc()
            raise BreakerOpen(self.name, self.retry_after(), self._last_error) from None
        self._apply_messages()
        trial = ctx.state == HALF_OPENED
        if trial:
            self._trial = True
        try:
            async with asyncio.timeout(limit_s):
                result = await fn()
        except answers:
            self._succeeded()
            raise
        except asyncio.CancelledError:
            # The caller went away: no verdict on the service. (Our own ``limit_s`` surfaces
            # as TimeoutError, a failure, below.)
            raise
        except Exception as exc:
            self._failed_with(exc)
            raise
        finally:
            if trial:
                self._trial = False
        self._succeeded()
        return result

    async def poll_shared(self, *, force: bool = False) -> None:
        """Adopt an opening published by another process (see the module docstring)."""
        if force:
            self._polled = 0.0
        await self._poll_shared()

    def _succeeded(self) -> None:
        self._failures = 0
        self._ctx.handle_end_request()
        self._apply_messages()

    def _failed_with(self, exc: BaseException) -> None:
        self._failures += 1
        self._last_error = _describe(exc)
        self._failed.inc()
        log.warning(
            "breaker_failure",
            breaker=self.name,
            failures=self._failures,
            threshold=self.threshold,
            error=self._last_error,
        )
        self._ctx.handle_exception(exc)
        self._apply_messages()

    def _retry_after_s(self) -> float:
        opened_at = self._ctx.opened_at
        if self._ctx.state != OPENED or opened_at is None:
            return 0.0
        return opened_at + self.reset_seconds - time.time()

    def _apply_messages(self, *, source: str = "local") -> None:
        """Turn purgatory's state-change events into a log line, metrics and a publication."""
        messages, self._ctx.messages = self._ctx.messages, []
        for message in messages:
            if not isinstance(message, ContextChanged):
                continue
            state = _STATE_NAMES[message.state]
            self._changed_at = time.time()
            if state == "closed":
                self._failures = 0
            self._gauge.set(_GAUGE[state])
            BREAKER_TRANSITIONS.labels(breaker=self.name, state=state).inc()
            log.warning(
                "breaker_state_changed",
                breaker=self.name,
                state=state,
                source=source,
                failures=self._failures,
                last_error=self._last_error,
                retry_after=self.retry_after() if state == "open" else None,
            )
            if state == "open" and source == "local" and message.opened_at is not None:
                self._publish(message.opened_at)

    def _publish(self, opened_at: float) -> None:
        if self._store is None:
            return
        task = asyncio.ensure_future(self._write_shared(opened_at, self._last_error))
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    async def _write_shared(self, opened_at: float, error: str | None) -> None:
        assert self._store is not None
        ttl_ms = max(1, int((opened_at + self.reset_seconds - time.time()) * 1000))
        value = json.dumps({"opened_at": opened_at, "error": error})
        try:
            await self._store.client.set(self._key, value, px=ttl_ms)
        except Exception as exc:
            log.warning("breaker_share_failed", breaker=self.name, error=repr(exc))

    async def _poll_shared(self) -> None:
        if self._store is None:
            return
        now = time.monotonic()
        if now - self._polled < SHARED_POLL_S:
            return
        self._polled = now
        try:
            raw = await self._store.client.get(self._key)
        except Exception as exc:
            log.warning("breaker_share_failed", breaker=self.name, error=repr(exc))
            return
        if raw is None:
            return
        try:
            shared = json.loads(raw)
            opened_at = float(shared["opened_at"])
        except (ValueError, KeyError, TypeError):
            return
        if opened_at + self.reset_seconds <= time.time():
            return
        local_open = self._ctx.opened_at
        if self._ctx.state == OPENED and local_open is not None and local_open >= opened_at:
            return
        if self._ctx.state == HALF_OPENED and self._trial:
            return  # our own trial decides
        opened = OpenedState(self.name)
        opened.opened_at = opened_at
        self._last_error = shared.get("error") or self._last_error
        self._ctx.set_state(opened)
        self._apply_messages(source="shared")


class Breakers:
    """The process's breakers (``Hub.breakers``): ``payments`` and ``email``."""

    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.payments = Breaker(
            PAYMENTS,
            threshold=settings.breaker_failure_threshold,
            reset_seconds=settings.breaker_reset_seconds,
            store=store,
        )
        self.email = Breaker(
            EMAIL,
            threshold=settings.breaker_failure_threshold,
            reset_seconds=settings.breaker_reset_seconds,
            store=store,
        )

    def all(self) -> tuple[Breaker, ...]:
        return (self.payments, self.email)

    def states(self) -> dict[str, dict[str, Any]]:
        """Every breaker's state in this process (see the module docstring for the shape).

        Synchronous and free; call ``refresh`` first to fold in openings published by other
        processes since this one last called the service.
        """
        return {breaker.name: breaker.view() for breaker in self.all()}

    async def refresh(self) -> None:
        """Read the shared state of every breaker now (one Redis GET each)."""
        for breaker in self.all():
            await breaker.poll_shared(force=True)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "TimeoutError: no answer within the timeout"
    text = repr(exc)
    return text if len(text) <= 300 else text[:297] + "..."


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()
