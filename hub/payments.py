"""Payments through a small provider interface.

A provider charges an amount for a booking reference and refunds it later. The default is
a simulator whose latency and failure rate are settings, so load tests and the race test
can widen the window between "hold confirmed" and "booking written" on purpose.

Services call the provider through ``charge`` and ``refund`` here, which put the payment
circuit breaker (``hub.breakers``) and the provider timeout around it: a decline is the
provider's answer (402, not a breaker failure); a timeout or any other provider error is a
failure, and an open breaker refuses at once; both become 503 ``service_unavailable``
with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Protocol

from hub.breakers import Breaker, BreakerOpen
from hub.errors import ServiceUnavailable
from hub.settings import Settings


class PaymentDeclined(Exception):
    """The provider refused the charge; nothing was taken."""


class PaymentProvider(Protocol):
    name: str

    async def charge(self, amount_cents: int, user_id: uuid.UUID, reference: str) -> str:
        """Take ``amount_cents`` from the user for ``reference``.

        Returns:
            The provider's reference for the charge.

        Raises:
            PaymentDeclined: the charge was refused; nothing was taken.
        """
        ...

    async def refund(
        self, amount_cents: int, user_id: uuid.UUID, reference: str, charge_ref: str
    ) -> str:
        """Give back ``amount_cents`` of an earlier charge; returns the refund's reference."""
        ...


class SimulatedPayments:
    """Pretends to be a card processor: waits ``latency_ms``, declines at ``failure_rate``."""

    name = "simulated"

    def __init__(self, latency_ms: int, failure_rate: float, rng: random.Random) -> None:
        self.latency_ms = latency_ms
        self.failure_rate = failure_rate
        self.rng = rng

    async def charge(self, amount_cents: int, user_id: uuid.UUID, reference: str) -> str:
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        if self.failure_rate and self.rng.random() < self.failure_rate:
            raise PaymentDeclined(f"simulated decline of {reference}")
        return f"sim_ch_{uuid.uuid4().hex[:16]}"

    async def refund(
        self, amount_cents: int, user_id: uuid.UUID, reference: str, charge_ref: str
    ) -> str:
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        return f"sim_re_{uuid.uuid4().hex[:16]}"


def default_provider(settings: Settings) -> PaymentProvider:
    """The provider a hub starts with (``hub.payments``; tests may put their own there)."""
    return SimulatedPayments(
        settings.payment_latency_ms, settings.payment_failure_rate, random.Random()
    )


def ensure_available(breaker: Breaker) -> None:
    """Raise ``ServiceUnavailable`` (with ``Retry-After``) if the payment breaker is open."""
    try:
        breaker.check()
    except BreakerOpen as exc:
        raise _unavailable(exc) from exc


async def charge(
    provider: PaymentProvider,
    breaker: Breaker,
    limit_s: float,
    amount_cents: int,
    user_id: uuid.UUID,
    reference: str,
) -> str:
    """``provider.charge`` behind the payment breaker, abandoned after ``limit_s`` seconds.

    Returns:
        The provider's reference for the charge.

    Raises:
        PaymentDeclined: the charge was refused (the breaker counts it as an answer).
        ServiceUnavailable: the breaker is open (nothing was tried), or the provider failed
            or did not answer in time (counted as a failure). A charge the provider
            completes after we gave up is not recorded here; the booking's reference,
            sent with it, is how it is found and voided on the provider's side.
    """
    try:
        return await breaker.call(
            lambda: provider.charge(amount_cents, user_id, reference),
            limit_s=limit_s,
            answers=(PaymentDeclined,),
        )
    except (PaymentDeclined, asyncio.CancelledError):
        raise
    except BreakerOpen as exc:
        raise _unavailable(exc) from exc
    except Exception as exc:
        raise ServiceUnavailable(
            "The payment provider failed or did not answer in time; try again shortly",
            retry_after=breaker.retry_after() if breaker.state == "open" else 2,
        ) from exc


async def refund(
    provider: PaymentProvider,
    breaker: Breaker,
    limit_s: float,
    amount_cents: int,
    user_id: uuid.UUID,
    reference: str,
    charge_ref: str,
) -> str:
    """``provider.refund`` behind the payment breaker, abandoned after ``limit_s`` seconds.

    Raises:
        BreakerOpen: the breaker is open; nothing was tried.
        TimeoutError: the provider did not answer in time (counted as a failure).
        Exception: the provider's error (counted as a failure).
    """
    return await breaker.call(
        lambda: provider.refund(amount_cents, user_id, reference, charge_ref), limit_s=limit_s
    )


def _unavailable(exc: BreakerOpen) -> ServiceUnavailable:
    return ServiceUnavailable(
        "Payments are unavailable for the moment; try again shortly",
        retry_after=exc.retry_after,
    )
