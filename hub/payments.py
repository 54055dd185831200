"""Payments through a small provider interface.

A provider charges an amount for a booking reference and refunds it later. The default is
a simulator whose latency and failure rate are settings, so load tests and the race test
can widen the window between "hold confirmed" and "booking written" on purpose.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Protocol

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
