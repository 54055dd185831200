"""Group rates and discount arithmetic, in integer cents and basis points.

A group earns a rate from the size tiers below; a discount code adds its own rate on top;
the sum is capped (by the event's limit and never past 100%). The discount is taken once
on the order subtotal and rounded half up to the cent, so the total is never negative and
the three numbers in a `PriceBreakdown` always satisfy ``subtotal - discount == total``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

BP_PER_UNIT = 10_000

#: (minimum quantity, basis points), largest tier first.
GROUP_TIERS: tuple[tuple[int, int], ...] = ((50, 1500), (20, 1000), (10, 500))


def _require_int(name: str, value: int, *, low: int = 0, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {bound}, got {value}")


def group_rate_bp(quantity: int) -> int:
    """Return the group rate earned by booking ``quantity`` seats together.

    Args:
        quantity: number of seats in the group, >= 0.

    Returns:
        Basis points: 1500 for 50+, 1000 for 20+, 500 for 10+, else 0.

    Raises:
        ValueError: if ``quantity`` is negative or not an int.
    """
    _require_int("quantity", quantity)
    for minimum, bp in GROUP_TIERS:
        if quantity >= minimum:
            return bp
    return 0


def combined_rate_bp(group_bp: int, code_bp: int, cap_bp: int) -> int:
    """Stack a discount code on top of the group rate, within the cap.

    Args:
        group_bp: the group rate, 0..10000.
        code_bp: the discount code's rate, 0..10000.
        cap_bp: the most the two may add up to, 0..10000.

    Returns:
        ``min(group_bp + code_bp, cap_bp)``.

    Raises:
        ValueError: if any rate is outside 0..10000.
    """
    for name, value in (("group_bp", group_bp), ("code_bp", code_bp), ("cap_bp", cap_bp)):
        _require_int(name, value, high=BP_PER_UNIT)
    return min(group_bp + code_bp, cap_bp)


def discount_cents(subtotal_cents: int, rate_bp: int) -> int:
    """Return the discount on a subtotal, rounded half up to the cent.

    Args:
        subtotal_cents: the amount discounted, >= 0.
        rate_bp: the rate, 0..10000.

    Returns:
        ``round_half_up(subtotal_cents * rate_bp / 10000)``, never more than the subtotal.

    Raises:
        ValueError: if the subtotal is negative or the rate outside 0..10000.
    """
    _require_int("subtotal_cents", subtotal_cents)
    _require_int("rate_bp", rate_bp, high=BP_PER_UNIT)
    return min((subtotal_cents * rate_bp + BP_PER_UNIT // 2) // BP_PER_UNIT, subtotal_cents)


@dataclass(frozen=True, slots=True)
class PriceBreakdown:
    """An order's price: ``subtotal_cents - discount_cents == total_cents``."""

    subtotal_cents: int
    rate_bp: int
    discount_cents: int
    total_cents: int


def price_group(
    line_cents: Sequence[int], *, group_bp: int, code_bp: int, cap_bp: int
) -> PriceBreakdown:
    """Price a group of tickets: sum the lines, then apply the combined rate once.

    Args:
        line_cents: the price of each ticket in cents, each >= 0.
        group_bp: the group rate (see `group_rate_bp`).
        code_bp: the discount code's rate, 0 if none.
        cap_bp: the most the two rates may add up to.

    Returns:
        The breakdown of subtotal, applied rate, discount and total.

    Raises:
        ValueError: on a negative line or a rate outside 0..10000.
    """
    for index, cents in enumerate(line_cents):
        _require_int(f"line_cents[{index}]", cents)
    subtotal = sum(line_cents)
    rate = combined_rate_bp(group_bp, code_bp, cap_bp)
    discount = discount_cents(subtotal, rate)
    return PriceBreakdown(
        subtotal_cents=subtotal,
        rate_bp=rate,
        discount_cents=discount,
        total_cents=subtotal - discount,
    )
