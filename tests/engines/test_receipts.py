from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engines.discounts import price_group
from engines.receipts import DiscountKind, DiscountShare, percent_label, split_discount


@pytest.mark.parametrize(
    ("lines", "group_bp", "code_bp", "cap_bp", "expected"),
    [
        # 25 x 12.34: subtotal 308.50; group 10% = 30.85, code 5% = 15.43 (46.28 at 15%)
        (
            [1234] * 25,
            1000,
            500,
            2500,
            [
                DiscountShare(DiscountKind.GROUP, "Group of 25 (10%)", 1000, 3085),
                DiscountShare(DiscountKind.CODE, "BULK10", 500, 1543),
            ],
        ),
        # capped at 20%: the group keeps its 15%, the code gets the 5% left
        (
            [999] * 50,
            1500,
            1000,
            2000,
            [
                DiscountShare(DiscountKind.GROUP, "Group of 50 (15%)", 1500, 7493),
                DiscountShare(DiscountKind.CODE, "BULK10", 500, 2497),
            ],
        ),
        # the cap swallows the whole group rate: the code is shown, at 0
        (
            [1000] * 20,
            1000,
            1000,
            800,
            [
                DiscountShare(DiscountKind.GROUP, "Group of 20 (8%)", 800, 1600),
                DiscountShare(DiscountKind.CODE, "BULK10", 0, 0),
            ],
        ),
        # no group rate (an ordinary booking), a code
        ([3333, 3333], 0, 1250, 2500, [DiscountShare(DiscountKind.CODE, "BULK10", 1250, 833)]),
        # a small group: no group rate, no code, nothing to show
        ([1000] * 3, 0, 0, 2500, []),
    ],
)
def test_split(
    lines: list[int], group_bp: int, code_bp: int, cap_bp: int, expected: list[DiscountShare]
) -> None:
    price = price_group(lines, group_bp=group_bp, code_bp=code_bp, cap_bp=cap_bp)
    shares = split_discount(
        subtotal_cents=price.subtotal_cents,
        discount_cents_total=price.discount_cents,
        rate_bp=price.rate_bp,
        group_bp=group_bp,
        group_size=len(lines),
        code="BULK10" if code_bp else None,
    )
    assert shares == expected
    assert price.subtotal_cents - sum(s.cents for s in shares) == price.total_cents


def test_a_discount_that_the_rate_does_not_give_is_refused() -> None:
    with pytest.raises(ValueError):
        split_discount(
            subtotal_cents=1000,
            discount_cents_total=99,
            rate_bp=1000,
            group_bp=1000,
            group_size=10,
            code=None,
        )


@pytest.mark.parametrize(
    ("bp", "label"), [(500, "5%"), (1000, "10%"), (1250, "12.5%"), (1, "0.01%")]
)
def test_percent_label(bp: int, label: str) -> None:
    assert percent_label(bp) == label


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(0, 10_000_000), min_size=1, max_size=60),
    st.sampled_from([0, 500, 1000, 1500]),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
    st.booleans(),
)
def test_shares_add_up_to_the_discount_exactly(
    lines: list[int], group_bp: int, code_bp: int, cap_bp: int, with_code: bool
) -> None:
    code_bp = code_bp if with_code else 0
    price = price_group(lines, group_bp=group_bp, code_bp=code_bp, cap_bp=cap_bp)
    shares = split_discount(
        subtotal_cents=price.subtotal_cents,
        discount_cents_total=price.discount_cents,
        rate_bp=price.rate_bp,
        group_bp=group_bp,
        group_size=len(lines),
        code="X" if with_code else None,
    )
    assert sum(s.cents for s in shares) == price.discount_cents
    assert all(s.cents >= 0 and s.rate_bp >= 0 for s in shares)
    if shares:
        assert sum(s.rate_bp for s in shares) == price.rate_bp
    assert [s.kind for s in shares] == [
        k for k, on in ((DiscountKind.GROUP, group_bp > 0), (DiscountKind.CODE, with_code)) if on
    ]
