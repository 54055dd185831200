"""The buyers' choices: when each starts, which seats a chosen-seat hold names, the mix."""

from __future__ import annotations

import argparse
import random

import pytest

from loadtest.buyers import activation_delay, pick_free
from loadtest.phases import parse_mix
from loadtest.records import FREE, HELD, SOLD


@pytest.mark.parametrize(
    ("profile", "number", "expected"),
    [
        ("flat", 0, 0.0),
        ("flat", 50, 0.5),  # everyone within the first second
        ("ramp", 50, 25.0),  # evenly over the first half of a 100 s run
        ("ramp", 99, 49.5),
        ("peak", 10, 0.1),  # the first fifth trickles in
        ("peak", 20, 30.0),  # the rest all at once at 30 % of the run
        ("peak", 99, 30.0),
    ],
)
def test_activation_delay(profile: str, number: int, expected: float) -> None:
    assert activation_delay(profile, number, 100, 100.0) == pytest.approx(expected)


def test_pick_free_names_only_free_seats_next_to_each_other() -> None:
    rng = random.Random(7)
    seats = bytearray([SOLD, FREE, FREE, HELD, FREE, FREE, FREE, SOLD])
    for _ in range(200):
        picked = pick_free(seats, 3, rng)
        assert 1 <= len(picked) <= 3
        assert all(seats[i] == FREE for i in picked)
        assert picked == list(range(picked[0], picked[0] + len(picked)))


def test_pick_free_finds_the_last_free_seat_and_none_when_sold_out() -> None:
    rng = random.Random(1)
    seats = bytearray([SOLD] * 999 + [FREE])
    assert pick_free(seats, 2, rng) == [999]
    assert pick_free(bytearray([SOLD, HELD]), 1, rng) == []
    assert pick_free(bytearray(), 1, rng) == []


def test_parse_mix_normalises_and_refuses_nonsense() -> None:
    assert parse_mix("chosen=2,best=1,group=1") == (0.5, 0.25, 0.25)
    assert parse_mix("best=1") == (0.0, 1.0, 0.0)
    with pytest.raises(argparse.ArgumentTypeError):
        parse_mix("chosen=1,vip=1")
    with pytest.raises(argparse.ArgumentTypeError):
        parse_mix("chosen=0,best=0")
