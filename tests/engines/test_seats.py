"""The seat definitions every layer shares: status codes and the counts buyers are shown."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engines.seats import SeatCode, count_seats

FREE, HELD, SOLD = SeatCode.FREE, SeatCode.HELD, SeatCode.SOLD


def test_codes_are_the_wire_values() -> None:
    # The WebSocket contract and the Redis scripts send and store these exact bytes.
    assert (FREE, HELD, SOLD) == (0, 1, 2)
    assert bytes([FREE, HELD, SOLD]) == b"\x00\x01\x02"


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        (b"", {"total": 0, "available": 0, "held": 0, "sold": 0}),
        (bytes([FREE] * 4), {"total": 4, "available": 4, "held": 0, "sold": 0}),
        (
            bytes([FREE, HELD, SOLD, SOLD, FREE]),
            {"total": 5, "available": 2, "held": 1, "sold": 2},
        ),
        (bytearray([SOLD, HELD, HELD]), {"total": 3, "available": 0, "held": 2, "sold": 1}),
    ],
)
def test_count_seats(states: bytes | bytearray, expected: dict[str, int]) -> None:
    assert count_seats(states) == expected


@given(st.lists(st.sampled_from(list(SeatCode)), max_size=200))
def test_counts_add_up_and_match_each_code(codes: list[SeatCode]) -> None:
    found = count_seats(bytes(codes))
    assert found["available"] + found["held"] + found["sold"] == found["total"] == len(codes)
    assert (found["available"], found["held"], found["sold"]) == tuple(
        codes.count(code) for code in (FREE, HELD, SOLD)
    )
