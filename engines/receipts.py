"""A booking's discount split into its parts — the group rate and the code — in cents.

`engines.discounts.price_group` takes one discount off the subtotal at the combined, capped
rate. A receipt names the parts, and they must add up to that discount exactly. The rule:
the group rate comes first — its share is the discount at ``min(group_bp, rate_bp)``,
rounded as `discount_cents` rounds — and the code gets the rest of the rate and the rest
of the amount. Rounding is monotone in the rate, so both shares are >= 0, and when the cap
already swallows the group rate the code's share is 0 (it was still applied and counted).
Invariants: shares add up to the discount; rates add up to the applied rate.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal

from engines.discounts import discount_cents


class DiscountKind(enum.StrEnum):
    GROUP = "group"
    CODE = "code"


@dataclass(frozen=True, slots=True)
class DiscountShare:
    """One line of a receipt's discounts."""

    kind: DiscountKind
    name: str
    rate_bp: int
    cents: int


def percent_label(rate_bp: int) -> str:
    """``1000 -> "10%"``, ``1250 -> "12.5%"``."""
    return f"{(Decimal(rate_bp) / 100).normalize():f}%"


def split_discount(
    *,
    subtotal_cents: int,
    discount_cents_total: int,
    rate_bp: int,
    group_bp: int,
    group_size: int,
    code: str | None,
) -> list[DiscountShare]:
    """The discount's parts, group first (see the module docstring).

    Args:
        subtotal_cents: the order's subtotal.
        discount_cents_total: the discount taken (``price_group``'s, at ``rate_bp``).
        rate_bp: the applied, capped rate.
        group_bp: the group's own rate before the cap (0 for no group).
        group_size: the number of seats, for the group line's name.
        code: the discount code applied, if any.

    Returns:
        A group share when ``group_bp`` > 0, then a code share when ``code`` is given.

    Raises:
        ValueError: when the discount is not the one ``rate_bp`` gives on the subtotal.
    """
    if discount_cents(subtotal_cents, rate_bp) != discount_cents_total:
        raise ValueError(
            f"a discount of {discount_cents_total} is not {rate_bp} bp of {subtotal_cents}"
        )
    shares = []
    group_rate = min(group_bp, rate_bp)
    group_cents = discount_cents(subtotal_cents, group_rate)
    if group_bp > 0:
        name = f"Group of {group_size} ({percent_label(group_rate)})"
        shares.append(DiscountShare(DiscountKind.GROUP, name, group_rate, group_cents))
    if code is not None:
        shares.append(
            DiscountShare(
                DiscountKind.CODE, code, rate_bp - group_rate, discount_cents_total - group_cents
            )
        )
    return shares
