from __future__ import annotations

from decimal import Decimal

import pytest

from engines.money import bp_to_fraction, cents_to_decimal, decimal_to_cents


@pytest.mark.parametrize(
    ("cents", "expected"),
    [
        (0, "0.00"),
        (1, "0.01"),
        (1999, "19.99"),
        (100, "1.00"),
        (-250, "-2.50"),
        (123456789012, "1234567890.12"),
    ],
)
def test_cents_to_decimal_is_exact_with_two_places(cents: int, expected: str) -> None:
    result = cents_to_decimal(cents)
    assert result == Decimal(expected)
    assert str(result) == expected


@pytest.mark.parametrize("bad", [1.5, "100", True, None])
def test_cents_to_decimal_refuses_non_ints(bad: object) -> None:
    with pytest.raises(TypeError):
        cents_to_decimal(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("19.99"), 1999),
        (Decimal("1.500"), 150),
        ("0.01", 1),
        ("12", 1200),
        (0, 0),
        (7, 700),
        (19.99, 1999),
        (0.1, 10),
        (1234567.89, 123456789),
    ],
)
def test_decimal_to_cents(value: Decimal | float | int | str, expected: int) -> None:
    assert decimal_to_cents(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (Decimal("0.001"), "decimal places"),
        ("19.995", "decimal places"),
        (0.125, "decimal places"),
        (-1, "negative"),
        (Decimal("-0.01"), "negative"),
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        (Decimal("Infinity"), "finite"),
        ("ten", "not a decimal"),
        (True, "bool"),
    ],
)
def test_decimal_to_cents_refuses_lossy_or_invalid(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decimal_to_cents(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("cents", [0, 1, 99, 1999, 10_000_00])
def test_cents_round_trip(cents: int) -> None:
    assert decimal_to_cents(cents_to_decimal(cents)) == cents


@pytest.mark.parametrize(
    ("bp", "expected"),
    [
        (0, "0.00"),
        (500, "0.05"),
        (1000, "0.10"),
        (1500, "0.15"),
        (150, "0.015"),
        (125, "0.0125"),
        (1, "0.0001"),
        (10_000, "1.00"),
    ],
)
def test_bp_to_fraction(bp: int, expected: str) -> None:
    assert str(bp_to_fraction(bp)) == expected


@pytest.mark.parametrize("bad", [-1, 10_001, True, 5.0])
def test_bp_to_fraction_refuses_out_of_range(bad: object) -> None:
    with pytest.raises(ValueError):
        bp_to_fraction(bad)  # type: ignore[arg-type]
