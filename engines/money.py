"""Money as integer cents, rates as integer basis points; Decimal only at the edges.

Arithmetic inside the hub is done on ints (cents, basis points) so it is exact and cheap.
These helpers convert to and from `Decimal` for JSON and SQL `numeric` columns, and refuse
any value that would lose a fraction of a cent rather than rounding it silently.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

_CENT = Decimal("0.01")
_BP_PER_UNIT = 10_000


def cents_to_decimal(cents: int) -> Decimal:
    """Convert integer cents to an exact Decimal with two places.

    Args:
        cents: an amount in cents (may be negative, e.g. a refund).

    Returns:
        The amount in currency units, always with exactly two places (``1999 -> 19.99``).

    Raises:
        TypeError: if ``cents`` is not an int (a bool is refused too).
    """
    if isinstance(cents, bool) or not isinstance(cents, int):
        raise TypeError(f"cents must be an int, got {type(cents).__name__}")
    return Decimal(cents).scaleb(-2).quantize(_CENT)


def decimal_to_cents(value: Decimal | float | int | str) -> int:
    """Convert a non-negative currency amount to integer cents, exactly.

    Floats are read through their shortest repr, so ``19.99`` means 19.99, not the binary
    approximation. Trailing zeros are fine (``"1.500"``); a real third decimal is not.

    Args:
        value: the amount in currency units.

    Returns:
        The amount in cents.

    Raises:
        ValueError: if the value is not a number, not finite, negative, or has a non-zero
            digit past the second decimal place.
    """
    if isinstance(value, bool):
        raise ValueError("a bool is not an amount")
    try:
        amount = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise ValueError(f"not a decimal amount: {value!r}") from exc
    if not amount.is_finite():
        raise ValueError(f"amount must be finite, got {value!r}")
    if amount < 0:
        raise ValueError(f"amount must not be negative, got {value!r}")
    if amount != amount.quantize(_CENT):
        raise ValueError(f"amount has more than 2 decimal places: {value!r}")
    return int(amount.scaleb(2))


def bp_to_fraction(bp: int) -> Decimal:
    """Convert basis points to a fraction with 2 to 4 places.

    Args:
        bp: a rate in basis points, 0..10000 (``500`` is 5%).

    Returns:
        The fraction with the fewest places from 2 to 4 that keep it exact:
        ``500 -> 0.05``, ``1000 -> 0.10``, ``125 -> 0.0125``, ``150 -> 0.015``.

    Raises:
        ValueError: if ``bp`` is not an int in 0..10000.
    """
    if isinstance(bp, bool) or not isinstance(bp, int) or not 0 <= bp <= _BP_PER_UNIT:
        raise ValueError(f"basis points must be an int in 0..{_BP_PER_UNIT}, got {bp!r}")
    exact = Decimal(bp).scaleb(-4)
    for places in (2, 3):
        rounded = exact.quantize(Decimal(1).scaleb(-places))
        if rounded == exact:
            return rounded
    return exact.quantize(Decimal("0.0001"))
