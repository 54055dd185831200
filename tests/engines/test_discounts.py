from __future__ import annotations

import pytest

from engines.discounts import (
    GROUP_TIERS,
    PriceBreakdown,
    combined_rate_bp,
    discount_cents,
    group_rate_bp,
    price_group,
)


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        (0, 0),
        (1, 0),
        (9, 0),
        (10, 500),
        (19, 500),
        (20, 1000),
        (49, 1000),
        (50, 1500),
        (500, 1500),
    ],
)
def test_group_rate_tiers(quantity: int, expected: int) -> None:
    assert group_rate_bp(quantity) == expected


def test_group_tiers_are_largest_first() -> None:
    minimums = [minimum for minimum, _ in GROUP_TIERS]
    assert minimums == sorted(minimums, reverse=True)


@pytest.mark.parametrize("bad", [-1, True, 2.0])
def test_group_rate_refuses_bad_quantity(bad: object) -> None:
    with pytest.raises(ValueError):
        group_rate_bp(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("group_bp", "code_bp", "cap_bp", "expected"),
    [
        (0, 0, 2500, 0),
        (500, 0, 2500, 500),
        (500, 1000, 2500, 1500),
        (1500, 1500, 2500, 2500),
        (1500, 1500, 10_000, 3000),
        (1000, 0, 500, 500),
        (0, 0, 0, 0),
    ],
)
def test_combined_rate_is_sum_capped(
    group_bp: int, code_bp: int, cap_bp: int, expected: int
) -> None:
    assert combined_rate_bp(group_bp, code_bp, cap_bp) == expected


@pytest.mark.parametrize(
    ("args"),
    [(-1, 0, 100), (0, -5, 100), (0, 0, 10_001), (10_001, 0, 10_000)],
)
def test_combined_rate_refuses_out_of_range(args: tuple[int, int, int]) -> None:
    with pytest.raises(ValueError):
        combined_rate_bp(*args)


@pytest.mark.parametrize(
    ("subtotal", "rate_bp", "expected"),
    [
        (10_000, 500, 500),
        (1999, 500, 100),  # 99.95 -> 100, half up
        (1990, 500, 100),  # 99.5 -> 100, half up
        (1989, 500, 99),  # 99.45 -> 99
        (1, 5000, 1),  # 0.5 -> 1
        (1, 4999, 0),
        (0, 1500, 0),
        (12_345, 0, 0),
        (12_345, 10_000, 12_345),
    ],
)
def test_discount_rounds_half_up(subtotal: int, rate_bp: int, expected: int) -> None:
    assert discount_cents(subtotal, rate_bp) == expected


@pytest.mark.parametrize(("subtotal", "rate_bp"), [(-1, 500), (100, -1), (100, 10_001)])
def test_discount_refuses_bad_input(subtotal: int, rate_bp: int) -> None:
    with pytest.raises(ValueError):
        discount_cents(subtotal, rate_bp)


@pytest.mark.parametrize(
    ("lines", "group_bp", "code_bp", "cap_bp", "expected"),
    [
        ([], 0, 0, 2500, PriceBreakdown(0, 0, 0, 0)),
        ([5000] * 3, 0, 0, 2500, PriceBreakdown(15_000, 0, 0, 15_000)),
        ([4999] * 10, 500, 0, 2500, PriceBreakdown(49_990, 500, 2500, 47_490)),
        ([3333] * 20, 1000, 1000, 2500, PriceBreakdown(66_660, 2000, 13_332, 53_328)),
        ([2000] * 50, 1500, 2000, 2500, PriceBreakdown(100_000, 2500, 25_000, 75_000)),
        ([1999, 2999, 1], 0, 1000, 2500, PriceBreakdown(4999, 1000, 500, 4499)),
        ([100], 5000, 5000, 10_000, PriceBreakdown(100, 10_000, 100, 0)),
    ],
)
def test_price_group(
    lines: list[int], group_bp: int, code_bp: int, cap_bp: int, expected: PriceBreakdown
) -> None:
    result = price_group(lines, group_bp=group_bp, code_bp=code_bp, cap_bp=cap_bp)
    assert result == expected
    assert result.subtotal_cents - result.discount_cents == result.total_cents


def test_price_group_refuses_negative_line() -> None:
    with pytest.raises(ValueError, match=r"line_cents\[1\]"):
        price_group([100, -1], group_bp=0, code_bp=0, cap_bp=0)
